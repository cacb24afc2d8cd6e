//! Chat events for authenticated sockets: `chat:join`, `chat:send`,
//! `chat:read`, `chat:history`, `chat:leave` (CONTRACT §3).

use serde::Serialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, TryData};

use super::inbound::Inbound;
use crate::chat::{
    ChatError, JoinState, MAX_CHAT_ROOMS, chat_room, draft_of, limit_of, message_id_of, room_id_of,
};
use crate::store::ChatMessage;

#[derive(Serialize)]
struct JoinAck {
    ok: bool,
    #[serde(flatten)]
    state: JoinState,
}

#[derive(Serialize)]
struct SendAck {
    ok: bool,
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadAck {
    ok: bool,
    last_read: String,
}

#[derive(Serialize)]
struct HistoryAck {
    ok: bool,
    messages: Vec<ChatMessage>,
}

#[derive(Serialize)]
struct OkAck {
    ok: bool,
}

/// The payload, the authenticated user, and the room the payload names.
fn context<A: Adapter>(
    inbound: &Inbound<A>,
    payload: &Result<Value, impl ToString>,
) -> Result<(String, String, Value), ChatError> {
    let user = inbound.session.identity().ok_or(ChatError::AuthRequired)?.user_id;
    let payload = payload
        .as_ref()
        .map_err(|e| ChatError::Invalid(e.to_string()))?
        .clone();
    let room_id = room_id_of(&payload)?;
    Ok((user, room_id, payload))
}

fn joined<A: Adapter>(inbound: &Inbound<A>, room_id: &str) -> Result<(), ChatError> {
    if inbound.session.subscriptions().chat_rooms.contains(room_id) {
        Ok(())
    } else {
        Err(ChatError::NotJoined)
    }
}

pub async fn on_join<A: Adapter>(inbound: Inbound<A>, TryData(payload): TryData<Value>, ack: AckSender<A>) {
    inbound.turn().await;
    let result = async {
        let (user, room_id, _) = context(&inbound, &payload)?;
        {
            let subs = inbound.session.subscriptions();
            if !subs.chat_rooms.contains(&room_id) && subs.chat_rooms.len() >= MAX_CHAT_ROOMS {
                return Err(ChatError::Invalid(format!(
                    "a socket may be in at most {MAX_CHAT_ROOMS} chat rooms"
                )));
            }
        }
        let state = inbound.session.realtime.chat.join_state(&user, &room_id).await?;
        inbound.socket.join(chat_room(&room_id));
        inbound.session.subscriptions().chat_rooms.insert(room_id);
        Ok::<_, ChatError>(state)
    }
    .await;
    inbound.answer(ack, result.map(|state| JoinAck { ok: true, state }));
}

pub async fn on_send<A: Adapter>(inbound: Inbound<A>, TryData(payload): TryData<Value>, ack: AckSender<A>) {
    inbound.turn().await;
    let result = async {
        let (user, room_id, payload) = context(&inbound, &payload)?;
        joined(&inbound, &room_id)?;
        let draft = draft_of(&payload, "message", "type")?;
        let (message, _) = inbound.session.realtime.chat.send(&user, &room_id, draft).await?;
        Ok::<_, ChatError>(message)
    }
    .await;
    inbound.answer(
        ack,
        result.map(|message| SendAck {
            ok: true,
            id: message.id,
        }),
    );
}

pub async fn on_read<A: Adapter>(inbound: Inbound<A>, TryData(payload): TryData<Value>, ack: AckSender<A>) {
    inbound.turn().await;
    let result = async {
        let (user, room_id, payload) = context(&inbound, &payload)?;
        joined(&inbound, &room_id)?;
        let id = message_id_of(&payload, "messageId")?
            .ok_or_else(|| ChatError::Invalid("missing messageId".into()))?;
        inbound.session.realtime.chat.read(&user, &room_id, &id).await
    }
    .await;
    inbound.answer(ack, result.map(|last_read| ReadAck { ok: true, last_read }));
}

pub async fn on_history<A: Adapter>(
    inbound: Inbound<A>,
    TryData(payload): TryData<Value>,
    ack: AckSender<A>,
) {
    inbound.turn().await;
    let result = async {
        let (_, room_id, payload) = context(&inbound, &payload)?;
        joined(&inbound, &room_id)?;
        let before = message_id_of(&payload, "before")?;
        let limit = limit_of(&payload)?;
        inbound
            .session
            .realtime
            .chat
            .history(&room_id, before.as_ref(), limit)
            .await
    }
    .await;
    inbound.answer(ack, result.map(|messages| HistoryAck { ok: true, messages }));
}

pub async fn on_leave<A: Adapter>(inbound: Inbound<A>, TryData(payload): TryData<Value>, ack: AckSender<A>) {
    inbound.turn().await;
    let result = context(&inbound, &payload).map(|(_, room_id, _)| {
        inbound.socket.leave(chat_room(&room_id));
        inbound.session.subscriptions().chat_rooms.remove(&room_id);
    });
    inbound.answer(ack, result.map(|()| OkAck { ok: true }));
}
