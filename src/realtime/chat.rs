//! Chat events for authenticated sockets: `chat:join`, `chat:send`,
//! `chat:read`, `chat:history`, `chat:leave` (CONTRACT §3). Each reads its
//! payload, checks the socket may act, and makes one call to the chat service.

use serde::Serialize;
use serde_json::Value;

use super::ordered::{Call, Turn};
use crate::auth::token::Identity;
use crate::chat::input::{Draft, RoomId, limit_of, message_id_of, required_message_id, room_id_of};
use crate::chat::{ChatError, JoinState, MAX_CHAT_ROOMS};
use crate::protocol::chat_room;
use crate::recovery::Hold;
use crate::store::ChatMessage;

#[derive(Serialize)]
pub struct JoinAck {
    ok: bool,
    #[serde(flatten)]
    state: JoinState,
}

#[derive(Serialize)]
pub struct SendAck {
    ok: bool,
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadAck {
    ok: bool,
    last_read: String,
}

#[derive(Serialize)]
pub struct HistoryAck {
    ok: bool,
    messages: Vec<ChatMessage>,
}

#[derive(Serialize)]
pub struct OkAck {
    ok: bool,
}

/// The authenticated user, the payload, and the room it names.
fn context(call: &Call) -> Result<(Identity, &Value, RoomId), ChatError> {
    let user = call.session.identity().ok_or(ChatError::AuthRequired)?;
    let payload = call.payload.as_ref().map_err(|e| ChatError::Invalid(e.clone()))?;
    let room_id = room_id_of(payload)?;
    Ok((user, payload, room_id))
}

/// Like [`context`], for a room the socket has joined.
fn joined_context(call: &Call) -> Result<(Identity, &Value, RoomId), ChatError> {
    let context = context(call)?;
    if call
        .session
        .subscriptions()
        .chat_rooms
        .contains(context.2.as_str())
    {
        Ok(context)
    } else {
        Err(ChatError::NotJoined)
    }
}

pub async fn join(call: &Call, _turn: &Turn) -> Result<JoinAck, ChatError> {
    let (user, _, room_id) = context(call)?;
    {
        let subs = call.session.subscriptions();
        if !subs.chat_rooms.contains(room_id.as_str()) && subs.chat_rooms.len() >= MAX_CHAT_ROOMS {
            return Err(ChatError::Invalid(format!(
                "a socket may be in at most {MAX_CHAT_ROOMS} chat rooms"
            )));
        }
    }
    let chat = &call.services.chat;
    chat.authorize(&user, &room_id).await?;
    let state = chat.join_state(&user.user_id, &room_id).await?;
    super::join(call, vec![chat_room(room_id.as_str())], Hold::No);
    call.session
        .subscriptions()
        .chat_rooms
        .insert(room_id.as_str().to_owned());
    Ok(JoinAck { ok: true, state })
}

pub async fn send(call: &Call, _turn: &Turn) -> Result<SendAck, ChatError> {
    let (user, payload, room_id) = joined_context(call)?;
    let draft = Draft::from_event(payload)?;
    let (message, _) = call.services.chat.send(&user.user_id, &room_id, draft).await?;
    Ok(SendAck {
        ok: true,
        id: message.id,
    })
}

pub async fn read(call: &Call, _turn: &Turn) -> Result<ReadAck, ChatError> {
    let (user, payload, room_id) = joined_context(call)?;
    let id = required_message_id(payload, "messageId")?;
    let last_read = call.services.chat.read(&user.user_id, &room_id, &id).await?;
    Ok(ReadAck { ok: true, last_read })
}

pub async fn history(call: &Call, _turn: &Turn) -> Result<HistoryAck, ChatError> {
    let (_, payload, room_id) = joined_context(call)?;
    let before = message_id_of(payload, "before")?;
    let limit = limit_of(payload)?;
    let messages = call
        .services
        .chat
        .history(&room_id, before.as_ref(), limit)
        .await?;
    Ok(HistoryAck { ok: true, messages })
}

pub fn leave(call: &Call, _turn: &Turn) -> Result<OkAck, ChatError> {
    let (_, _, room_id) = context(call)?;
    super::leave(call, vec![chat_room(room_id.as_str())]);
    call.session.subscriptions().chat_rooms.remove(room_id.as_str());
    Ok(OkAck { ok: true })
}
