//! Socket.IO event names and payload shapes (CONTRACT §3), in one place.

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
/// Addition: acks `{ ok: true, ts }` at once, for round-trip measurements.
pub const PING: &str = "ping";

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
    PING,
];

// Server → client.
pub const AUTHENTICATED: &str = "authenticated";
pub const UNAUTHORIZED: &str = "unauthorized";
pub const PRICE_UPDATE: &str = "price:update";
pub const PRICE_BATCH: &str = "price:batch";
pub const TRADE_NEW: &str = "trade:new";
pub const METRICS: &str = "metrics";
pub const ERROR: &str = "error";
pub const CHAT_MESSAGE: &str = "chat:message";

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

/// Message of the `error` event and ack for a refused (rate-limited) event.
pub const RATE_LIMIT_EXCEEDED: &str = "Rate limit exceeded";

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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatedAck<'a> {
    pub ok: bool,
    pub user_id: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Unauthorized<'a> {
    pub message: &'a str,
}

/// `{ ok: true, rooms }`: ack of the subscribe and unsubscribe events.
#[derive(Debug, Serialize)]
pub struct RoomsAck<'a> {
    pub ok: bool,
    pub rooms: &'a [String],
}

/// `metrics`: one node's figures, to the `admin` room.
#[derive(Debug, Clone, Serialize)]
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
