//! Chat inputs, parsed once at the edge into typed values: room ids, drafts
//! (from a Socket.IO event or a plain WebSocket frame), message ids, limits.
//! Pure functions, no I/O.

use serde_json::{Map, Value};

use super::error::ChatError;
use crate::store::MessageId;

pub const MAX_MESSAGE_CHARS: usize = 4000;
pub const MAX_ROOM_ID_LEN: usize = 64;
pub const MAX_CLIENT_MSG_ID_LEN: usize = 128;
pub const DEFAULT_HISTORY: usize = 50;
pub const MAX_HISTORY: usize = 200;
/// Longest message `type` (the app's own kind).
pub const MAX_TYPE_LEN: usize = 32;
/// What a message type may be, for error messages.
pub const TYPE_RULE: &str = "must be 1-32 characters of A-Z a-z 0-9 _ . -";
/// What a room id may be, for error messages.
pub const ROOM_ID_RULE: &str = "roomId must be 1-64 characters of A-Z a-z 0-9 . _ - :";

/// A valid chat room id (without the `chat:` prefix of its Socket.IO room).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(String);

impl RoomId {
    pub fn parse(room_id: &str) -> Result<Self, ChatError> {
        let valid = (1..=MAX_ROOM_ID_LEN).contains(&room_id.len())
            && room_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
        if valid {
            Ok(Self(room_id.to_owned()))
        } else {
            Err(ChatError::Invalid(ROOM_ID_RULE.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message as a sender gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub message: String,
    pub kind: String,
    pub client_msg_id: Option<String>,
}

impl Draft {
    /// `{ message, type?, clientMsgId? }`: `chat:send` and the REST body.
    pub fn from_event(payload: &Value) -> Result<Self, ChatError> {
        Self::parse(payload, "message", "type")
    }

    /// `{ content, messageType?, clientMsgId? }`: a plain WebSocket `message` frame.
    pub fn from_plain_frame(frame: &Value) -> Result<Self, ChatError> {
        Self::parse(frame, "content", "messageType")
    }

    fn parse(payload: &Value, text_field: &str, type_field: &str) -> Result<Self, ChatError> {
        let map = object(payload)?;
        let message = text_of(payload, text_field)?;
        let kind = match map.get(type_field) {
            None | Some(Value::Null) => "TEXT".to_owned(),
            Some(Value::String(t)) if is_message_type(t) => t.clone(),
            Some(_) => return Err(invalid(format!("{type_field} {TYPE_RULE}"))),
        };
        check_kind(&kind, &message)?;
        let client_msg_id = match map.get("clientMsgId") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if (1..=MAX_CLIENT_MSG_ID_LEN).contains(&c.len()) => Some(c.clone()),
            Some(_) => {
                return Err(invalid(format!(
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
}

/// Whether `kind` is a valid message type: 1-32 of `A-Z a-z 0-9 _ . -`.
pub fn is_message_type(kind: &str) -> bool {
    (1..=MAX_TYPE_LEN).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// What a kind asks of the text: an `IMAGE` is an http(s) URL.
pub fn check_kind(kind: &str, message: &str) -> Result<(), ChatError> {
    if kind == "IMAGE" && !(message.starts_with("https://") || message.starts_with("http://")) {
        return Err(invalid("an IMAGE message is the image's http(s) URL".into()));
    }
    Ok(())
}

/// A message text field: a non-blank string of at most [`MAX_MESSAGE_CHARS`].
pub fn text_of(payload: &Value, field: &str) -> Result<String, ChatError> {
    let message = match object(payload)?.get(field) {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        Some(Value::String(_)) => return Err(invalid(format!("{field} must not be empty"))),
        Some(_) => return Err(invalid(format!("{field} must be a string"))),
        None => return Err(invalid(format!("missing {field}"))),
    };
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(invalid(format!(
            "{field} is longer than {MAX_MESSAGE_CHARS} characters"
        )));
    }
    Ok(message)
}

/// `typing` of a `chat:typing` payload or plain `typing` frame: a boolean.
pub fn typing_of(payload: &Value) -> Result<bool, ChatError> {
    match object(payload)?.get("typing") {
        Some(Value::Bool(typing)) => Ok(*typing),
        Some(_) => Err(invalid("typing must be true or false".into())),
        None => Err(invalid("missing typing".into())),
    }
}

/// `limit` of `chat:rooms`: 1-[`MAX_HISTORY`], default [`DEFAULT_HISTORY`].
pub fn rooms_limit_of(payload: Option<&Value>) -> Result<usize, ChatError> {
    match payload {
        None | Some(Value::Null) => Ok(DEFAULT_HISTORY),
        Some(payload) => limit_of(payload),
    }
}

fn invalid(message: String) -> ChatError {
    ChatError::Invalid(message)
}

fn object(payload: &Value) -> Result<&Map<String, Value>, ChatError> {
    payload
        .as_object()
        .ok_or_else(|| invalid("expected an object".into()))
}

/// `roomId` of a payload.
pub fn room_id_of(payload: &Value) -> Result<RoomId, ChatError> {
    match object(payload)?.get("roomId") {
        Some(Value::String(id)) => RoomId::parse(id),
        Some(_) => Err(invalid(ROOM_ID_RULE.into())),
        None => Err(invalid("missing roomId".into())),
    }
}

/// A message id field (`messageId`, `before`); `None` when absent.
pub fn message_id_of(payload: &Value, field: &str) -> Result<Option<MessageId>, ChatError> {
    match object(payload)?.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => MessageId::parse(s)
            .map(Some)
            .ok_or_else(|| invalid(format!("{field} is not a message id"))),
        Some(_) => Err(invalid(format!("{field} must be a message id string"))),
    }
}

/// A required message id field.
pub fn required_message_id(payload: &Value, field: &str) -> Result<MessageId, ChatError> {
    message_id_of(payload, field)?.ok_or_else(|| invalid(format!("missing {field}")))
}

pub fn limit_of(payload: &Value) -> Result<usize, ChatError> {
    match object(payload)?.get("limit") {
        None | Some(Value::Null) => Ok(DEFAULT_HISTORY),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if (1..=MAX_HISTORY as u64).contains(&n) => Ok(n as usize),
            _ => Err(invalid(format!("limit must be 1-{MAX_HISTORY}"))),
        },
        Some(_) => Err(invalid("limit must be a number".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drafts_are_validated() {
        let d = Draft::from_event(&json!({"message": "hi", "clientMsgId": "c1"})).unwrap();
        assert_eq!(
            d,
            Draft {
                message: "hi".into(),
                kind: "TEXT".into(),
                client_msg_id: Some("c1".into())
            }
        );
        let img = Draft::from_event(&json!({"message": "https://x/y.png", "type": "IMAGE"})).unwrap();
        assert_eq!(img.kind, "IMAGE");
        for kind in ["text", "VIDEO", "poll.v2", "a-b_c", &"x".repeat(32)] {
            let d = Draft::from_event(&json!({"message": "hi", "type": kind})).unwrap();
            assert_eq!(d.kind, kind, "kept exactly");
        }
        let plain_kind =
            Draft::from_plain_frame(&json!({"content": "yo", "messageType": "sticker"})).unwrap();
        assert_eq!(plain_kind.kind, "sticker");
        let plain = Draft::from_plain_frame(&json!({"content": "yo", "messageType": "TEXT"})).unwrap();
        assert_eq!(plain.message, "yo");
        for (payload, needle) in [
            (json!({}), "missing message"),
            (json!({"message": "  "}), "must not be empty"),
            (json!({"message": 5}), "must be a string"),
            (json!({"message": "x".repeat(4001)}), "longer than"),
            (json!({"message": "hi", "type": ""}), "1-32 characters"),
            (json!({"message": "hi", "type": "a b"}), "1-32 characters"),
            (
                json!({"message": "hi", "type": "x".repeat(33)}),
                "1-32 characters",
            ),
            (json!({"message": "hi", "type": 7}), "1-32 characters"),
            (json!({"message": "not a url", "type": "IMAGE"}), "http(s) URL"),
            (json!({"message": "hi", "clientMsgId": 3}), "clientMsgId"),
            (json!("hi"), "expected an object"),
        ] {
            let err = Draft::from_event(&payload).unwrap_err().to_string();
            assert!(err.contains(needle), "{payload}: {err}");
        }
    }

    #[test]
    fn room_ids_ids_and_limits() {
        assert_eq!(
            room_id_of(&json!({"roomId": "desk-1"})).unwrap().as_str(),
            "desk-1"
        );
        assert!(room_id_of(&json!({"roomId": "a b"})).is_err());
        assert!(room_id_of(&json!({"roomId": ""})).is_err());
        assert!(room_id_of(&json!({})).is_err());
        assert_eq!(
            message_id_of(&json!({"before": "5-1"}), "before").unwrap(),
            MessageId::parse("5-1")
        );
        assert!(message_id_of(&json!({"before": "x"}), "before").is_err());
        assert!(required_message_id(&json!({}), "messageId").is_err());
        assert_eq!(limit_of(&json!({})).unwrap(), DEFAULT_HISTORY);
        assert!(limit_of(&json!({"limit": 0})).is_err());
        assert!(limit_of(&json!({"limit": 201})).is_err());
    }
}
