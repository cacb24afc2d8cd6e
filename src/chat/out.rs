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

/// One delivery to a room; serialized as `{ event, data }` in fanout envelopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data")]
pub enum ChatOut {
    #[serde(rename = "chat:message")]
    Message(ChatMessage),
    #[serde(rename = "chat:read")]
    Read(ReadReceipt),
}

impl ChatOut {
    pub fn room_id(&self) -> &str {
        match self {
            ChatOut::Message(m) => &m.room_id,
            ChatOut::Read(r) => &r.room_id,
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
