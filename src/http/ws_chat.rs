//! `GET /ws/chat?sessionId=<roomId>&token=<jwt>`: chat for clients without
//! Socket.IO (CONTRACT §6). The token is checked before the upgrade (401).
//! JSON text frames in: `{type:"message", content, clientMsgId?, messageType?}`,
//! `{type:"read", messageId}`, `{type:"ping"}`; out: `{type:"message", data}`,
//! `{type:"read", data}`, `{type:"pong"}`, `{type:"error", message}`.

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::AppState;
use super::error::ApiError;
use super::ws_socket::{self, End, Incoming, PlainSocket};
use crate::auth::token::Identity;
use crate::chat::outbox::Outbox;
use crate::chat::{ChatError, draft_of, message_id_of, valid_room_id};
use crate::realtime::events::{CHAT_READ, CHAT_SEND};
use crate::realtime::rate_limit::SocketLimiter;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new().route("/ws/chat", get(upgrade::<A>))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    session_id: Option<String>,
    token: Option<String>,
}

async fn upgrade<A: Adapter>(
    State(state): State<AppState<A>>,
    Query(params): Query<Params>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let token = params.token.ok_or(ApiError::Unauthorized("missing token"))?;
    let identity = state.tokens.verify(&token).map_err(|_| {
        state.metrics.auth_failures.increment(1);
        ApiError::Unauthorized("invalid or expired token")
    })?;
    let room_id = params.session_id.filter(|r| valid_room_id(r)).ok_or_else(|| {
        ApiError::BadRequest("sessionId must be 1-64 characters of A-Z a-z 0-9 . _ - :".into())
    })?;
    let (response, on_upgrade) = ws_socket::accept(&mut request)?;
    tokio::spawn(async move {
        if let Some(socket) = PlainSocket::upgrade(on_upgrade, state.max_payload, state.ws_keepalive).await {
            serve(socket, state, identity, room_id).await;
        }
    });
    Ok(response)
}

async fn serve<A: Adapter>(mut socket: PlainSocket, state: AppState<A>, user: Identity, room_id: String) {
    let (member, outbox) = state.plain.join(&room_id);
    let limiter = SocketLimiter::new(state.rate_limits.clone());
    tracing::debug!(room = %room_id, user = ?user.user_id, "plain chat client joined");
    let end = loop {
        let reply = tokio::select! {
            incoming = socket.next(&outbox) => match incoming {
                Incoming::Text(text) => handle(&state, &limiter, &user, &room_id, text.as_str()).await,
                Incoming::Binary => Some(error_frame("expected JSON text frames")),
                Incoming::End(end) => break end,
            },
            _ = state.shutdown.cancelled() => break End::Close(ws_socket::code::GOING_AWAY, "server shutting down"),
        };
        if let Some(reply) = reply
            && let Err(end) = queue(&outbox, reply)
        {
            break end;
        }
    };
    state.plain.leave(&room_id, member);
    socket.finish(end).await;
}

/// Queues a direct reply behind the room's frames (it counts against the same bound).
fn queue(outbox: &Outbox, reply: Value) -> Result<(), End> {
    outbox
        .push(reply.to_string().into())
        .map_err(|_| End::Close(ws_socket::code::POLICY, "too slow: messages dropped, reconnect"))
}

fn error_frame(message: &str) -> Value {
    json!({ "type": "error", "message": message })
}

/// Handles one text frame; returns the direct reply, if any.
async fn handle<A: Adapter>(
    state: &AppState<A>,
    limiter: &SocketLimiter,
    user: &Identity,
    room_id: &str,
    text: &str,
) -> Option<Value> {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Some(error_frame("malformed JSON"));
    };
    let kind = frame.get("type").and_then(Value::as_str).unwrap_or_default();
    let event = match kind {
        "message" => CHAT_SEND,
        "read" => CHAT_READ,
        "ping" => return Some(json!({ "type": "pong" })),
        "" => return Some(error_frame("missing type")),
        other => return Some(error_frame(&format!("unknown type {other:?}"))),
    };
    state.metrics.event_received(event);
    if let Err(retry) = limiter.check(event) {
        state.metrics.rate_limited(event);
        return Some(
            json!({ "type": "error", "message": "Rate limit exceeded", "retryAfterMs": retry.as_millis().max(1) as u64 }),
        );
    }
    let result: Result<(), ChatError> = async {
        if kind == "message" {
            let draft = draft_of(&frame, "content", "messageType")?;
            state.chat.send(&user.user_id, room_id, draft).await?;
        } else {
            let id = message_id_of(&frame, "messageId")?
                .ok_or_else(|| ChatError::Invalid("missing messageId".into()))?;
            state.chat.read(&user.user_id, room_id, &id).await?;
        }
        Ok(())
    }
    .await;
    result.err().map(|e| error_frame(&e.to_string()))
}
