//! Chat persistence behind one trait: messages per room (ordered ids, bounded
//! length), each user's last read message, and `clientMsgId` de-duplication.
//! `memory` for a single node (lost at restart), `redis` (streams and hashes)
//! when `--redis-url` is set.

pub mod memory;
pub mod redis;

use std::cmp::Ordering;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// A stored chat message; serialized as the `chat:message` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: String,
    pub room_id: String,
    pub sender_id: String,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("chat store unavailable: {0}")]
    Unavailable(String),
    #[error("chat store data is corrupt: {0}")]
    Corrupt(String),
}

pub trait ChatStore: Send + Sync + 'static {
    /// Stores `message` unless the sender already stored one with the same
    /// `client_msg_id`; returns the stored message and whether it is new.
    fn append(&self, message: NewMessage) -> BoxFuture<'_, Result<(ChatMessage, bool), StoreError>>;

    /// The newest `limit` messages older than `before` (all when `None`), oldest first.
    fn history<'a>(
        &'a self,
        room_id: &'a str,
        before: Option<&'a MessageId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>>;

    fn last_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageId>, StoreError>>;

    /// Moves the user's last read forward to `id` (never backwards); returns the position in force.
    fn mark_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<MessageId, StoreError>>;

    /// Messages in the room newer than `after` (all when `None`).
    fn count_after<'a>(
        &'a self,
        room_id: &'a str,
        after: Option<&'a MessageId>,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
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
    use super::MessageId;

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
