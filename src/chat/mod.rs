//! Chat (CONTRACT §3, §4, §6): validated inputs, and one service that every
//! entry point (Socket.IO events, REST, plain WebSocket) goes through:
//! persist first, then deliver.

pub mod backlog;
pub mod bus;
pub mod outbox;
pub mod plain_hub;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::{ChatMessage, ChatStore, MessageId, NewMessage, StoreError};

pub const MAX_MESSAGE_CHARS: usize = 4000;
pub const MAX_ROOM_ID_LEN: usize = 64;
pub const MAX_CLIENT_MSG_ID_LEN: usize = 128;
pub const DEFAULT_HISTORY: usize = 50;
pub const MAX_HISTORY: usize = 200;
/// Chat rooms one socket may be in at once.
pub const MAX_CHAT_ROOMS: usize = 100;
pub const MESSAGE_TYPES: &[&str] = &["TEXT", "IMAGE"];

pub fn chat_room(room_id: &str) -> String {
    format!("chat:{room_id}")
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("authentication required")]
    AuthRequired,
    #[error("join the room first (chat:join)")]
    NotJoined,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A message as a sender gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub message: String,
    pub kind: String,
    pub client_msg_id: Option<String>,
}

/// `chat:read` payload: `{ roomId, userId, messageId }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    pub room_id: String,
    pub user_id: String,
    pub message_id: String,
}

/// What goes out to a chat room's members.
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

/// Delivers chat output to the room's members on every node.
pub trait ChatDelivery: Send + Sync + 'static {
    fn deliver(&self, out: ChatOut) -> BoxFuture<'_, ()>;
}

/// What `chat:join` answers besides `ok`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinState {
    pub history: Vec<ChatMessage>,
    pub unread: u64,
    pub last_read: Option<String>,
}

pub struct Chat {
    store: Arc<dyn ChatStore>,
    delivery: std::sync::OnceLock<Arc<dyn ChatDelivery>>,
}

impl Chat {
    pub fn new(store: Arc<dyn ChatStore>) -> Self {
        Self {
            store,
            delivery: std::sync::OnceLock::new(),
        }
    }

    /// Sets where chat output goes (once, while wiring).
    pub fn set_delivery(&self, delivery: Arc<dyn ChatDelivery>) {
        let _ = self.delivery.set(delivery);
    }

    async fn deliver(&self, out: ChatOut) {
        if let Some(delivery) = self.delivery.get() {
            delivery.deliver(out).await;
        }
    }

    /// Persists, then broadcasts (unless it is a retry of a stored `clientMsgId`),
    /// then moves the sender's last read to it. Returns the message and whether it is new.
    pub async fn send(
        &self,
        user_id: &str,
        room_id: &str,
        draft: Draft,
    ) -> Result<(ChatMessage, bool), ChatError> {
        let new = NewMessage {
            room_id: room_id.to_owned(),
            sender_id: user_id.to_owned(),
            message: draft.message,
            kind: draft.kind,
            client_msg_id: draft.client_msg_id,
        };
        let (message, is_new) = self.store.append(new).await?;
        if is_new {
            self.deliver(ChatOut::Message(message.clone())).await;
            if let Some(id) = MessageId::parse(&message.id)
                && let Err(e) = self.store.mark_read(room_id, user_id, &id).await
            {
                tracing::warn!(room = room_id, user = user_id, error = ?e.to_string(), "could not move the sender's last read");
            }
        }
        Ok((message, is_new))
    }

    pub async fn join_state(&self, user_id: &str, room_id: &str) -> Result<JoinState, ChatError> {
        let history = self.store.history(room_id, None, DEFAULT_HISTORY).await?;
        let last_read = self.store.last_read(room_id, user_id).await?;
        let unread = self.store.count_after(room_id, last_read.as_ref()).await?;
        Ok(JoinState {
            history,
            unread,
            last_read: last_read.map(|id| id.to_string()),
        })
    }

    /// Stores the user's last read (forward only) and tells the room.
    pub async fn read(
        &self,
        user_id: &str,
        room_id: &str,
        message_id: &MessageId,
    ) -> Result<String, ChatError> {
        let in_force = self
            .store
            .mark_read(room_id, user_id, message_id)
            .await?
            .to_string();
        let receipt = ReadReceipt {
            room_id: room_id.to_owned(),
            user_id: user_id.to_owned(),
            message_id: in_force.clone(),
        };
        self.deliver(ChatOut::Read(receipt)).await;
        Ok(in_force)
    }

    pub async fn history(
        &self,
        room_id: &str,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, ChatError> {
        Ok(self.store.history(room_id, before, limit).await?)
    }
}

// ---- input parsing (pure) ----

fn object(payload: &Value) -> Result<&Map<String, Value>, ChatError> {
    payload
        .as_object()
        .ok_or_else(|| ChatError::Invalid("expected an object".into()))
}

pub fn valid_room_id(room_id: &str) -> bool {
    (1..=MAX_ROOM_ID_LEN).contains(&room_id.len())
        && room_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// `roomId` of a payload.
pub fn room_id_of(payload: &Value) -> Result<String, ChatError> {
    match object(payload)?.get("roomId") {
        Some(Value::String(id)) if valid_room_id(id) => Ok(id.clone()),
        Some(_) => Err(ChatError::Invalid(format!(
            "roomId must be 1-{MAX_ROOM_ID_LEN} characters of A-Z a-z 0-9 . _ - :"
        ))),
        None => Err(ChatError::Invalid("missing roomId".into())),
    }
}

/// `{ message, type?, clientMsgId? }` (the message field is named by `text_field`).
pub fn draft_of(payload: &Value, text_field: &str, type_field: &str) -> Result<Draft, ChatError> {
    let map = object(payload)?;
    let message = match map.get(text_field) {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        Some(Value::String(_)) => return Err(ChatError::Invalid(format!("{text_field} must not be empty"))),
        Some(_) => return Err(ChatError::Invalid(format!("{text_field} must be a string"))),
        None => return Err(ChatError::Invalid(format!("missing {text_field}"))),
    };
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ChatError::Invalid(format!(
            "{text_field} is longer than {MAX_MESSAGE_CHARS} characters"
        )));
    }
    let kind = match map.get(type_field) {
        None | Some(Value::Null) => "TEXT".to_owned(),
        Some(Value::String(t)) if MESSAGE_TYPES.contains(&t.as_str()) => t.clone(),
        Some(_) => {
            return Err(ChatError::Invalid(format!(
                "{type_field} must be one of {}",
                MESSAGE_TYPES.join(", ")
            )));
        }
    };
    if kind == "IMAGE" && !(message.starts_with("https://") || message.starts_with("http://")) {
        return Err(ChatError::Invalid(
            "an IMAGE message is the image's http(s) URL".into(),
        ));
    }
    let client_msg_id = match map.get("clientMsgId") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if (1..=MAX_CLIENT_MSG_ID_LEN).contains(&c.len()) => Some(c.clone()),
        Some(_) => {
            return Err(ChatError::Invalid(format!(
                "clientMsgId must be a string of 1-{MAX_CLIENT_MSG_ID_LEN} bytes"
            )));
        }
    };
    Ok(Draft {
        message,
        kind,
        client_msg_id,
    })
}

/// A message id field (`messageId`, `before`); `None` when absent and optional.
pub fn message_id_of(payload: &Value, field: &str) -> Result<Option<MessageId>, ChatError> {
    match object(payload)?.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => MessageId::parse(s)
            .map(Some)
            .ok_or_else(|| ChatError::Invalid(format!("{field} is not a message id"))),
        Some(_) => Err(ChatError::Invalid(format!("{field} must be a message id string"))),
    }
}

pub fn limit_of(payload: &Value) -> Result<usize, ChatError> {
    match object(payload)?.get("limit") {
        None | Some(Value::Null) => Ok(DEFAULT_HISTORY),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if (1..=MAX_HISTORY as u64).contains(&n) => Ok(n as usize),
            _ => Err(ChatError::Invalid(format!("limit must be 1-{MAX_HISTORY}"))),
        },
        Some(_) => Err(ChatError::Invalid("limit must be a number".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drafts_are_validated() {
        let d = draft_of(&json!({"message": "hi", "clientMsgId": "c1"}), "message", "type").unwrap();
        assert_eq!(
            d,
            Draft {
                message: "hi".into(),
                kind: "TEXT".into(),
                client_msg_id: Some("c1".into())
            }
        );
        let img = draft_of(
            &json!({"message": "https://x/y.png", "type": "IMAGE"}),
            "message",
            "type",
        )
        .unwrap();
        assert_eq!(img.kind, "IMAGE");
        for (payload, needle) in [
            (json!({}), "missing message"),
            (json!({"message": "  "}), "must not be empty"),
            (json!({"message": 5}), "must be a string"),
            (json!({"message": "x".repeat(4001)}), "longer than"),
            (json!({"message": "hi", "type": "VIDEO"}), "one of TEXT, IMAGE"),
            (json!({"message": "not a url", "type": "IMAGE"}), "http(s) URL"),
            (json!({"message": "hi", "clientMsgId": 3}), "clientMsgId"),
            (json!("hi"), "expected an object"),
        ] {
            let err = draft_of(&payload, "message", "type").unwrap_err().to_string();
            assert!(err.contains(needle), "{payload}: {err}");
        }
    }

    #[test]
    fn room_ids_ids_and_limits() {
        assert_eq!(room_id_of(&json!({"roomId": "desk-1"})).unwrap(), "desk-1");
        assert!(room_id_of(&json!({"roomId": "a b"})).is_err());
        assert!(room_id_of(&json!({"roomId": ""})).is_err());
        assert!(room_id_of(&json!({})).is_err());
        assert_eq!(
            message_id_of(&json!({"before": "5-1"}), "before").unwrap(),
            MessageId::parse("5-1")
        );
        assert!(message_id_of(&json!({"before": "x"}), "before").is_err());
        assert_eq!(limit_of(&json!({})).unwrap(), DEFAULT_HISTORY);
        assert!(limit_of(&json!({"limit": 0})).is_err());
        assert!(limit_of(&json!({"limit": 201})).is_err());
    }

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
