//! What goes out to a chat room's members, on this node and across nodes.

use serde::{Deserialize, Serialize};

use crate::store::ChatMessage;

/// `chat:read` payload: `{ roomId, userId, messageId }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    pub room_id: String,
    pub user_id: String,
    pub message_id: String,
}

/// `chat:typing` to the other members: `{ roomId, userId, typing }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub room_id: String,
    pub user_id: String,
    pub typing: bool,
}

/// `chat:edited`: `{ roomId, id, message, editedAt }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edited {
    pub room_id: String,
    pub id: String,
    pub message: String,
    pub edited_at: u64,
}

/// `chat:deleted`: `{ roomId, id }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub room_id: String,
    pub id: String,
}

/// `chat:presence`: `{ roomId, userId, online }`, once per change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChange {
    pub room_id: String,
    pub user_id: String,
    pub online: bool,
}

/// One delivery to a room; serialized as `{ event, data }` in fanout envelopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data")]
pub enum ChatOut {
    #[serde(rename = "chat:message")]
    Message(ChatMessage),
    #[serde(rename = "chat:read")]
    Read(ReadReceipt),
    /// To every member but the typing user's own connections.
    #[serde(rename = "chat:typing")]
    Typing(Typing),
    #[serde(rename = "chat:edited")]
    Edited(Edited),
    #[serde(rename = "chat:deleted")]
    Deleted(Deleted),
    #[serde(rename = "chat:presence")]
    Presence(PresenceChange),
}

impl ChatOut {
    pub fn room_id(&self) -> &str {
        match self {
            ChatOut::Message(m) => &m.room_id,
            ChatOut::Read(r) => &r.room_id,
            ChatOut::Typing(t) => &t.room_id,
            ChatOut::Edited(e) => &e.room_id,
            ChatOut::Deleted(d) => &d.room_id,
            ChatOut::Presence(p) => &p.room_id,
        }
    }

    /// The Socket.IO event, the plain WebSocket frame type, and the payload.
    pub fn wire(&self) -> (&'static str, &'static str, serde_json::Value) {
        use crate::protocol::{
            CHAT_DELETED, CHAT_EDITED, CHAT_MESSAGE, CHAT_PRESENCE, CHAT_READ, CHAT_TYPING,
        };
        use serde_json::json;
        match self {
            ChatOut::Message(m) => (CHAT_MESSAGE, "message", json!(m)),
            ChatOut::Read(r) => (CHAT_READ, "read", json!(r)),
            ChatOut::Typing(t) => (CHAT_TYPING, "typing", json!(t)),
            ChatOut::Edited(e) => (CHAT_EDITED, "edited", json!(e)),
            ChatOut::Deleted(d) => (CHAT_DELETED, "deleted", json!(d)),
            ChatOut::Presence(p) => (CHAT_PRESENCE, "presence", json!(p)),
        }
    }

    /// The user whose own connections do not get it (typing).
    pub fn except_user(&self) -> Option<&str> {
        match self {
            ChatOut::Typing(t) => Some(&t.user_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_out_serializes_as_event_and_data() {
        let out = ChatOut::Read(ReadReceipt {
            room_id: "r".into(),
            user_id: "u".into(),
            message_id: "1-0".into(),
        });
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(
            json,
            json!({"event": "chat:read", "data": {"roomId": "r", "userId": "u", "messageId": "1-0"}})
        );
        assert_eq!(serde_json::from_value::<ChatOut>(json).unwrap(), out);
    }
}
