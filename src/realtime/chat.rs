//! Chat events for authenticated sockets: `chat:join`, `chat:send`,
//! `chat:read`, `chat:history`, `chat:leave` (CONTRACT §3), `chat:typing`,
//! `chat:edit`, `chat:delete`, `chat:rooms` (§9). Each reads its payload,
//! checks the socket may act, and makes one call to the chat service.
//!
//! Presence: a socket counts in a room from its `chat:join` until its
//! `chat:leave`, its disconnect, or a change of user ([`depart_all`]).

use serde::Serialize;
use serde_json::Value;

use super::ordered::{Call, Turn};
use super::session::Session;
use crate::auth::token::Identity;
use crate::chat::input::{
    Draft, RoomId, limit_of, message_id_of, required_message_id, room_id_of, rooms_limit_of, text_of,
    typing_of,
};
use crate::chat::{Chat, ChatError, JoinState, MAX_CHAT_ROOMS};
use crate::protocol::chat_room;
use crate::recovery::Hold;
use crate::store::{ChatMessage, RoomSummary};

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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EditAck {
    ok: bool,
    id: String,
    edited_at: Option<u64>,
}

#[derive(Serialize)]
pub struct DeleteAck {
    ok: bool,
    id: String,
}

#[derive(Serialize)]
pub struct RoomsAck {
    ok: bool,
    rooms: Vec<RoomSummary>,
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
    let mut state = chat.join_state(&user.user_id, &room_id).await?;
    super::join(call, vec![chat_room(room_id.as_str())], Hold::No);
    let room = room_id.as_str();
    let first = {
        let mut subs = call.session.subscriptions();
        subs.chat_rooms.insert(room.to_owned()) && chat.presence().arrive(room, &user.user_id)
    };
    if first {
        chat.announce_arrival(room, &user.user_id).await;
    }
    if !call.socket.connected() {
        // Gone meanwhile: its disconnect may have missed this room.
        depart(&call.session, chat, room, &user.user_id).await;
    }
    state.online = chat.online(&room_id).await;
    Ok(JoinAck { ok: true, state })
}

/// The socket leaves `room` of presence, if it was in (once).
async fn depart(session: &Session, chat: &Chat, room: &str, user_id: &str) {
    let last = {
        let mut subs = session.subscriptions();
        subs.chat_rooms.remove(room) && chat.presence().depart(room, user_id)
    };
    if last {
        chat.announce_departure(room, user_id).await;
    }
}

/// Every chat room of the socket is left (disconnect, or another user):
/// counted out at once, announced in the background.
pub fn depart_all(session: &Session, user_id: &str) -> std::collections::BTreeSet<String> {
    let chat = session.services().chat.clone();
    let rooms = std::mem::take(&mut session.subscriptions().chat_rooms);
    let last: Vec<String> = rooms
        .iter()
        .filter(|room| chat.presence().depart(room, user_id))
        .cloned()
        .collect();
    if !last.is_empty() {
        let user_id = user_id.to_owned();
        tokio::spawn(async move {
            for room in last {
                chat.announce_departure(&room, &user_id).await;
            }
        });
    }
    rooms
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

pub async fn leave(call: &Call, _turn: &Turn) -> Result<OkAck, ChatError> {
    let (user, _, room_id) = context(call)?;
    super::leave(call, vec![chat_room(room_id.as_str())]);
    depart(
        &call.session,
        &call.services.chat,
        room_id.as_str(),
        &user.user_id,
    )
    .await;
    Ok(OkAck { ok: true })
}

pub async fn typing(call: &Call, _turn: &Turn) -> Result<OkAck, ChatError> {
    let (user, payload, room_id) = joined_context(call)?;
    let typing = typing_of(payload)?;
    call.services.chat.typing(&user.user_id, &room_id, typing).await;
    Ok(OkAck { ok: true })
}

pub async fn edit(call: &Call, _turn: &Turn) -> Result<EditAck, ChatError> {
    let (user, payload, room_id) = joined_context(call)?;
    let id = required_message_id(payload, "messageId")?;
    let text = text_of(payload, "message")?;
    let edited = call
        .services
        .chat
        .edit(&user.user_id, &room_id, &id, &text)
        .await?;
    Ok(EditAck {
        ok: true,
        id: edited.id,
        edited_at: edited.edited_at,
    })
}

pub async fn delete(call: &Call, _turn: &Turn) -> Result<DeleteAck, ChatError> {
    let (user, payload, room_id) = joined_context(call)?;
    let id = required_message_id(payload, "messageId")?;
    let tombstone = call.services.chat.delete(&user, &room_id, &id).await?;
    Ok(DeleteAck {
        ok: true,
        id: tombstone.id,
    })
}

pub async fn rooms(call: &Call, _turn: &Turn) -> Result<RoomsAck, ChatError> {
    let user = call.session.identity().ok_or(ChatError::AuthRequired)?;
    let payload = call.payload.as_ref().ok();
    let limit = rooms_limit_of(payload)?;
    let rooms = call.services.chat.rooms(&user, limit).await?;
    Ok(RoomsAck { ok: true, rooms })
}
