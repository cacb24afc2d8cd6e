//! Chat persistence behind one trait: messages per room (ordered ids, a
//! per-room sequence number, bounded length), edits and deletions
//! (tombstones), each user's last read message, unread counts, the rooms a
//! user has joined (the inbox), and `clientMsgId` de-duplication.
//! `memory` for a single node (lost at restart, bounded in rooms and bytes),
//! `redis` when `--redis-url` is set.
//!
//! Unread counts the *live* messages (not deleted) still kept in the room
//! that come after the user's last read message; both stores agree on it and
//! compute it without scanning the room.

pub(crate) mod keys;
pub mod memory;
pub mod redis;

use std::cmp::Ordering;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize, Serializer};

/// Rooms remembered per user for the inbox; joining one more forgets the
/// room joined longest ago.
pub const MAX_ROOMS_PER_USER: usize = 1000;

/// A stored chat message; serialized as the `chat:message` payload
/// (`editedAt` only once edited), or as `{ id, roomId, deleted: true }`
/// once deleted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: String,
    pub room_id: String,
    #[serde(default)]
    pub sender_id: String,
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub ts: u64,
    #[serde(default)]
    pub client_msg_id: Option<String>,
    #[serde(default)]
    pub edited_at: Option<u64>,
    #[serde(default)]
    pub deleted: bool,
}

impl ChatMessage {
    /// What stays of a deleted message: its place.
    pub fn tombstone(id: &str, room_id: &str) -> Self {
        Self {
            id: id.to_owned(),
            room_id: room_id.to_owned(),
            sender_id: String::new(),
            message: String::new(),
            kind: String::new(),
            ts: MessageId::parse(id).map_or(0, |i| i.ms),
            client_msg_id: None,
            edited_at: None,
            deleted: true,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveWire<'a> {
    id: &'a str,
    room_id: &'a str,
    sender_id: &'a str,
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_msg_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edited_at: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TombstoneWire<'a> {
    id: &'a str,
    room_id: &'a str,
    deleted: bool,
}

impl Serialize for ChatMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.deleted {
            TombstoneWire {
                id: &self.id,
                room_id: &self.room_id,
                deleted: true,
            }
            .serialize(serializer)
        } else {
            LiveWire {
                id: &self.id,
                room_id: &self.room_id,
                sender_id: &self.sender_id,
                message: &self.message,
                kind: &self.kind,
                ts: self.ts,
                client_msg_id: self.client_msg_id.as_deref(),
                edited_at: self.edited_at,
            }
            .serialize(serializer)
        }
    }
}

/// What a sender hands over; the store gives it an id and a time.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: String,
    pub sender_id: String,
    pub message: String,
    pub kind: String,
    pub client_msg_id: Option<String>,
}

/// A user's position in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub last_read: Option<MessageId>,
    /// Live messages kept in the room after `last_read` (all when `None`).
    pub unread: u64,
}

/// One room of a user's inbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    pub room_id: String,
    pub unread: u64,
    pub last_read: Option<String>,
    pub last_message: Option<ChatMessage>,
}

/// Errors say what a client may know; details of a backend failure are
/// logged where they happen, never carried to a client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("chat store unavailable")]
    Unavailable,
    #[error("chat store error")]
    Corrupt,
    #[error("unknown messageId")]
    UnknownMessage,
    #[error("message was deleted")]
    Deleted,
}

pub trait ChatStore: Send + Sync + 'static {
    /// Stores `message` unless the sender already stored one with the same
    /// `client_msg_id`; returns the stored message and whether it is new.
    fn append(&self, message: NewMessage) -> BoxFuture<'_, Result<(ChatMessage, bool), StoreError>>;

    /// The newest `limit` messages older than `before` (all when `None`),
    /// oldest first, deleted ones as tombstones. `before` must be a message
    /// of the room, or older than every message kept (a page past the oldest
    /// is empty); anything else is [`StoreError::UnknownMessage`].
    fn history<'a>(
        &'a self,
        room_id: &'a str,
        before: Option<&'a MessageId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>>;

    /// The message `id` of the room as history shows it (a tombstone once
    /// deleted); `None` when the room keeps no such message.
    fn message<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<Option<ChatMessage>, StoreError>>;

    fn last_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageId>, StoreError>>;

    /// Moves the user's last read forward to `id` (never backwards); returns
    /// the position in force. `id` must be a message kept in the room
    /// (deleted ones included), else [`StoreError::UnknownMessage`].
    fn mark_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<MessageId, StoreError>>;

    /// The user's last read and unread count, without scanning the room's
    /// messages (O(log n) in Redis).
    fn unread<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<ReadState, StoreError>>;

    /// Replaces the text of message `id` and records `editedAt`; returns the
    /// message as history now shows it. Who may edit is the caller's check.
    fn edit<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
        text: &'a str,
    ) -> BoxFuture<'a, Result<ChatMessage, StoreError>>;

    /// Replaces message `id` by a tombstone (its text is gone; its place,
    /// id and the read positions stay); returns the tombstone. Deleting a
    /// deleted message is not an error.
    fn delete<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<ChatMessage, StoreError>>;

    /// Records that the user joined the room (for the inbox and [`ChatStore::members`]).
    fn join<'a>(&'a self, room_id: &'a str, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The users who joined the room, sorted (the offline delivery hook's
    /// recipients are these, less the users online).
    fn members<'a>(&'a self, room_id: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;

    /// The user's rooms (at most [`MAX_ROOMS_PER_USER`] remembered), most
    /// recent activity (last message, else the user's join) first, at most
    /// `limit`; each with unread count, last read and last message.
    fn rooms<'a>(
        &'a self,
        user_id: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RoomSummary>, StoreError>>;
}

/// A message id, `<ms>-<seq>` as Redis stream ids: ordered by time, then sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId {
    pub ms: u64,
    pub seq: u64,
}

impl MessageId {
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl PartialOrd for MessageId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MessageId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ms, self.seq).cmp(&(other.ms, other.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::{ChatMessage, MessageId};
    use serde_json::json;

    #[test]
    fn messages_serialize_as_before_unless_edited_or_deleted() {
        let mut m = ChatMessage {
            id: "5-1".into(),
            room_id: "r".into(),
            sender_id: "u".into(),
            message: "hi".into(),
            kind: "TEXT".into(),
            ts: 5,
            client_msg_id: None,
            edited_at: None,
            deleted: false,
        };
        let live = r#"{"id":"5-1","roomId":"r","senderId":"u","message":"hi","type":"TEXT","ts":5}"#;
        assert_eq!(serde_json::to_string(&m).unwrap(), live);
        assert_eq!(serde_json::from_str::<ChatMessage>(live).unwrap(), m);
        m.client_msg_id = Some("c".into());
        m.edited_at = Some(9);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"id": "5-1", "roomId": "r", "senderId": "u", "message": "hi", "type": "TEXT", "ts": 5, "clientMsgId": "c", "editedAt": 9})
        );
        let gone = ChatMessage::tombstone("5-1", "r");
        let wire = serde_json::to_value(&gone).unwrap();
        assert_eq!(wire, json!({"id": "5-1", "roomId": "r", "deleted": true}));
        assert!(serde_json::from_value::<ChatMessage>(wire).unwrap().deleted);
    }

    #[test]
    fn ids_order_by_time_then_sequence() {
        let a = MessageId::parse("1700000000000-0").unwrap();
        let b = MessageId::parse("1700000000000-1").unwrap();
        let c = MessageId::parse("1700000000001-0").unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1700000000000-1");
        for bad in ["", "12", "a-1", "1-", "-1", "1-2-3"] {
            assert_eq!(MessageId::parse(bad), None, "{bad}");
        }
    }
}
