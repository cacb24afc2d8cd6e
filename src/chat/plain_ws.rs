//! `GET /ws/chat?sessionId=<roomId>&token=<jwt>`: chat for clients without
//! Socket.IO (CONTRACT §6), members of the same rooms as Socket.IO clients. The token is checked before the upgrade (401).
//! JSON text frames in: `{type:"message", content, clientMsgId?, messageType?}`,
//! `{type:"read", messageId}`, `{type:"ping"}`; out: `{type:"message", data}`,
//! `{type:"read", data}`, `{type:"pong"}`, `{type:"error", message}`.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Chat;
use super::error::ChatError;
use super::input::{Draft, RoomId, required_message_id};
use super::plain_hub::PlainHub;
use crate::auth::token::{Identity, TokenVerifier};
use crate::metrics::Metrics;
use crate::protocol::{CHAT_READ, CHAT_SEND};
use crate::rate_limit::{RateLimitRules, SocketLimiter, UserLimiters};

/// What the plain WebSocket endpoint needs.
#[derive(Clone)]
pub struct PlainWs {
    pub tokens: TokenVerifier,
    pub chat: Arc<Chat>,
    pub hub: Arc<PlainHub>,
    pub metrics: Arc<Metrics>,
    pub rate_limits: Arc<RateLimitRules>,
    pub user_limits: Arc<UserLimiters>,
    /// Largest message, bytes.
    pub max_payload: usize,
    /// Fires at shutdown: connections close with 1001.
    pub shutdown: CancellationToken,
}

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    PlainWs: FromRef<S>,
{
    Router::new().route("/ws/chat", get(upgrade))
}

/// Why an upgrade was refused: `{ error }` with 401 or 400.
#[derive(Debug)]
enum Refused {
    Unauthorized(&'static str),
    BadRequest(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Refused::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_owned()),
            Refused::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    session_id: Option<String>,
    token: Option<String>,
}

async fn upgrade(
    State(state): State<PlainWs>,
    Query(params): Query<Params>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Refused> {
    let token = params.token.ok_or(Refused::Unauthorized("missing token"))?;
    let identity = state.tokens.verify_with_refresh(&token).await.map_err(|_| {
        state.metrics.auth_failures.increment(1);
        Refused::Unauthorized("invalid or expired token")
    })?;
    let room_id = params
        .session_id
        .and_then(|r| RoomId::parse(&r).ok())
        .ok_or_else(|| {
            Refused::BadRequest("sessionId must be 1-64 characters of A-Z a-z 0-9 . _ - :".into())
        })?;
    let ws = ws.map_err(|e| Refused::BadRequest(format!("not a WebSocket upgrade: {e}")))?;
    Ok(ws
        .max_message_size(state.max_payload)
        .max_frame_size(state.max_payload)
        .on_upgrade(move |socket| serve(socket, state, identity, room_id))
        .into_response())
}

async fn serve(mut socket: WebSocket, state: PlainWs, user: Identity, room_id: RoomId) {
    let (member, mut outbox) = state.hub.join(room_id.as_str());
    let limiter = SocketLimiter::new(state.rate_limits.clone());
    tracing::debug!(room = %room_id, user = ?user.user_id, "plain chat client joined");
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = handle(&state, &limiter, &user, &room_id, text.as_str()).await
                        && socket.send(Message::text(reply.to_string())).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let reply = error_frame("expected JSON text frames");
                    if socket.send(Message::text(reply.to_string())).await.is_err() { break; }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            frame = outbox.recv() => match frame {
                Some(frame) => if socket.send(Message::text(frame.as_ref())).await.is_err() { break; },
                None => {
                    let close = CloseFrame { code: 1008, reason: "too slow: messages dropped, reconnect".into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    break;
                }
            },
            _ = state.shutdown.cancelled() => {
                let close = CloseFrame { code: 1001, reason: "server shutting down".into() };
                let _ = socket.send(Message::Close(Some(close))).await;
                break;
            }
        }
    }
    state.hub.leave(room_id.as_str(), member);
}

fn error_frame(message: &str) -> Value {
    json!({ "type": "error", "message": message })
}

/// Handles one text frame; returns the direct reply, if any.
async fn handle(
    state: &PlainWs,
    limiter: &SocketLimiter,
    user: &Identity,
    room_id: &RoomId,
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
    let admitted = limiter
        .check(event)
        .and_then(|()| state.user_limits.check(&user.user_id, event));
    if let Err(retry) = admitted {
        state.metrics.rate_limited(event);
        return Some(
            json!({ "type": "error", "message": "Rate limit exceeded", "retryAfterMs": retry.as_millis().max(1) as u64 }),
        );
    }
    let result: Result<(), ChatError> = async {
        if kind == "message" {
            let draft = Draft::from_plain_frame(&frame)?;
            state.chat.send(&user.user_id, room_id, draft).await?;
        } else {
            let id = required_message_id(&frame, "messageId")?;
            state.chat.read(&user.user_id, room_id, &id).await?;
        }
        Ok(())
    }
    .await;
    result.err().map(|e| error_frame(&e.to_string()))
}
