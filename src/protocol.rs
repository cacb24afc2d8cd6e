//! The vocabulary every other module speaks: Socket.IO event names, reserved
//! names, room names, and the `{ error }` envelopes and payloads of the public
//! protocol. It imports nothing of the crate, so anything may import it.

use serde::Serialize;

// Client → server.
pub const AUTHENTICATE: &str = "authenticate";
pub const SUBSCRIBE_PRICE: &str = "subscribe:price";
pub const UNSUBSCRIBE_PRICE: &str = "unsubscribe:price";
pub const SUBSCRIBE_TRADES: &str = "subscribe:trades";
pub const UNSUBSCRIBE_TRADES: &str = "unsubscribe:trades";
pub const CHAT_JOIN: &str = "chat:join";
pub const CHAT_SEND: &str = "chat:send";
pub const CHAT_READ: &str = "chat:read";
pub const CHAT_HISTORY: &str = "chat:history";
pub const CHAT_LEAVE: &str = "chat:leave";
/// `{ roomId, typing }`: relayed to the room's other members (both directions).
pub const CHAT_TYPING: &str = "chat:typing";
pub const CHAT_EDIT: &str = "chat:edit";
pub const CHAT_DELETE: &str = "chat:delete";
/// `{ limit? }`: the user's inbox.
pub const CHAT_ROOMS: &str = "chat:rooms";
/// Addition: acks `{ ok: true, ts }` at once, for round-trip measurements.
pub const PING: &str = "ping";
/// `{ offsets: { "<room>": "<last offset seen>" } }`: join and replay (CONTRACT §8).
pub const RESUME: &str = "resume";

/// Every event a client may send; anything else is "unknown" in metrics.
pub const CLIENT_EVENTS: &[&str] = &[
    AUTHENTICATE,
    SUBSCRIBE_PRICE,
    UNSUBSCRIBE_PRICE,
    SUBSCRIBE_TRADES,
    UNSUBSCRIBE_TRADES,
    CHAT_JOIN,
    CHAT_SEND,
    CHAT_READ,
    CHAT_HISTORY,
    CHAT_LEAVE,
    CHAT_TYPING,
    CHAT_EDIT,
    CHAT_DELETE,
    CHAT_ROOMS,
    PING,
    RESUME,
];

/// The events a client may send, parsed once from the event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    Authenticate,
    SubscribePrice,
    UnsubscribePrice,
    SubscribeTrades,
    UnsubscribeTrades,
    ChatJoin,
    ChatSend,
    ChatRead,
    ChatHistory,
    ChatLeave,
    ChatTyping,
    ChatEdit,
    ChatDelete,
    ChatRooms,
    Ping,
    Resume,
}

impl ClientEvent {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            AUTHENTICATE => Self::Authenticate,
            SUBSCRIBE_PRICE => Self::SubscribePrice,
            UNSUBSCRIBE_PRICE => Self::UnsubscribePrice,
            SUBSCRIBE_TRADES => Self::SubscribeTrades,
            UNSUBSCRIBE_TRADES => Self::UnsubscribeTrades,
            CHAT_JOIN => Self::ChatJoin,
            CHAT_SEND => Self::ChatSend,
            CHAT_READ => Self::ChatRead,
            CHAT_HISTORY => Self::ChatHistory,
            CHAT_LEAVE => Self::ChatLeave,
            CHAT_TYPING => Self::ChatTyping,
            CHAT_EDIT => Self::ChatEdit,
            CHAT_DELETE => Self::ChatDelete,
            CHAT_ROOMS => Self::ChatRooms,
            PING => Self::Ping,
            RESUME => Self::Resume,
            _ => return None,
        })
    }
}

// Server → client.
pub const AUTHENTICATED: &str = "authenticated";
pub const UNAUTHORIZED: &str = "unauthorized";
pub const PRICE_UPDATE: &str = "price:update";
pub const PRICE_BATCH: &str = "price:batch";
pub const TRADE_NEW: &str = "trade:new";
pub const METRICS: &str = "metrics";
pub const ERROR: &str = "error";
pub const CHAT_MESSAGE: &str = "chat:message";
pub const CHAT_EDITED: &str = "chat:edited";
pub const CHAT_DELETED: &str = "chat:deleted";
pub const CHAT_PRESENCE: &str = "chat:presence";
/// Shortly before a socket's token expires.
pub const TOKEN_EXPIRING: &str = "token:expiring";

/// Server events counted by name in metrics (emit API events count as `custom`).
pub const SERVER_EVENTS: &[&str] = &[
    AUTHENTICATED,
    UNAUTHORIZED,
    PRICE_UPDATE,
    PRICE_BATCH,
    TRADE_NEW,
    METRICS,
    ERROR,
    CHAT_MESSAGE,
    CHAT_READ,
    CHAT_TYPING,
    CHAT_EDITED,
    CHAT_DELETED,
    CHAT_PRESENCE,
];

/// Events the Socket.IO protocol reserves; the emit API refuses them.
pub const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

// Rooms. Every room name is built here and nowhere else.

/// Room of every socket of an admin user.
pub const ADMIN_ROOM: &str = "admin";
/// Prefix of the internal rooms the batcher emits to; no symbol room can clash
/// with it (`$` is not a symbol character) and it is left out of room counts.
pub const BATCH_ROOM_PREFIX: &str = "$batch:";

/// Prefix of every user's room, `user:<sub>`.
pub const USER_ROOM_PREFIX: &str = "user:";

pub fn user_room(user_id: &str) -> String {
    format!("{USER_ROOM_PREFIX}{user_id}")
}

pub fn price_room(symbol: &str) -> String {
    format!("price:{symbol}")
}

pub fn trades_room(symbol: &str) -> String {
    format!("trades:{symbol}")
}

/// Prefix of the Socket.IO room of a chat room.
pub const CHAT_ROOM_PREFIX: &str = "chat:";

pub fn chat_room(room_id: &str) -> String {
    format!("{CHAT_ROOM_PREFIX}{room_id}")
}

/// Prefix of the internal room that marks this node's `recover` sockets of a
/// recoverable room: they get that room's recorded events with an offset, so
/// the plain broadcast leaves them out.
pub const RECOVER_ROOM_PREFIX: &str = "$rec:";

pub fn recover_room(room: &str) -> String {
    format!("{RECOVER_ROOM_PREFIX}{room}")
}

/// Whether events to `room` are recoverable (CONTRACT §8): `trades:<symbol>`
/// and `user:<id>`.
pub fn is_recoverable_room(room: &str) -> bool {
    room.starts_with("trades:") || room.starts_with(USER_ROOM_PREFIX)
}

/// The internal room of one price subscription group.
pub fn batch_room(group: u64) -> String {
    format!("{BATCH_ROOM_PREFIX}{group}")
}

/// Whether `room` is one of roomcast's internal rooms (`$batch:`, `$rec:`;
/// `$` is not a symbol character, so no symbol room can clash).
pub fn is_internal_room(room: &str) -> bool {
    room.starts_with('$')
}

/// Message of the `error` event and ack for a refused (rate-limited) event.
pub const RATE_LIMIT_EXCEEDED: &str = "Rate limit exceeded";

/// Message of `unauthorized` when a live socket's token expires.
pub const TOKEN_EXPIRED: &str = "Token expired";

/// Message of the handshake refusal (`err.message` in `socket.io-client`).
pub const AUTHENTICATION_FAILED: &str = "Authentication failed";

/// `{ error }`: the failure ack of every event.
#[derive(Debug, Serialize)]
pub struct ErrorAck<'a> {
    pub error: &'a str,
}

/// `error` event: sent when an event was refused and the client asked for no ack.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEvent<'a> {
    pub event: &'a str,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Authenticated<'a> {
    pub user_id: &'a str,
}

/// `token:expiring`: when the socket's token expires, ms since the epoch.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenExpiring {
    pub expires_at: u64,
}

/// The ack of `authenticate`: `{ ok, userId }` or `{ error }`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AuthenticateAck {
    #[serde(rename_all = "camelCase")]
    Ok {
        ok: bool,
        user_id: String,
    },
    Refused {
        error: String,
    },
}

#[derive(Debug, Serialize)]
pub struct Unauthorized<'a> {
    pub message: &'a str,
}

/// `{ ok: true, ts }`: ack of `ping`.
#[derive(Debug, Serialize)]
pub struct PingAck {
    pub ok: bool,
    pub ts: u64,
}

impl PingAck {
    pub fn now() -> Self {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self { ok: true, ts }
    }
}

/// `{ type, data, timestamp }`: what clients receive from a bridged Redis channel.
#[derive(Debug, Serialize)]
pub struct Bridged<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub data: serde_json::Value,
    pub timestamp: u64,
}

/// `{ ok: true, rooms }`: ack of the subscribe and unsubscribe events (room
/// names as socketioxide takes them: interned market rooms are borrowed).
#[derive(Debug, Serialize)]
pub struct RoomsAck {
    pub ok: bool,
    pub rooms: Vec<std::borrow::Cow<'static, str>>,
}

/// `{ ok: true, replayed, gaps, refused }`: ack of `resume`.
#[derive(Debug, Serialize)]
pub struct ResumeAck {
    pub ok: bool,
    /// Events sent again, all rooms together.
    pub replayed: usize,
    /// Rooms whose offset is older than what is kept: nothing replayed, reload them.
    pub gaps: Vec<String>,
    /// Rooms this socket may not be in: not joined.
    pub refused: Vec<String>,
}

/// `metrics`: one node's figures, to the `admin` room.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct NodeMetrics {
    pub node: String,
    /// Sockets connected to this node.
    pub connections: usize,
    /// Rooms with at least one socket on this node.
    pub rooms: usize,
    /// Client events received by this node since start.
    pub events: u64,
    /// Resident memory of the process, bytes.
    pub memory: u64,
    /// CPU use over the last period, percent of one core.
    pub cpu: f64,
    /// Seconds since the node started.
    pub uptime: u64,
    pub ts: u64,
}
