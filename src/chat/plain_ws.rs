//! `GET /ws/chat?sessionId=<roomId>&token=<jwt>`: chat for clients without
//! Socket.IO (CONTRACT §6), members of the same rooms as Socket.IO clients. The token is checked before the upgrade (401).
//! JSON text frames in: `{type:"message", content, clientMsgId?, messageType?}`,
//! `{type:"read", messageId}`, `{type:"typing", typing}`, `{type:"ping"}`;
//! out: `{type:"message"|"read"|"typing"|"edited"|"deleted"|"presence", data}`,
//! `{type:"pong"}`, `{type:"error", message}`. A connection is a member of
//! the room (for the inbox and the offline hook) and counts for presence
//! while it is open.

use std::sync::Arc;

use axum::extract::{FromRef, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Chat;
use super::error::ChatError;
use super::input::{Draft, RoomId, required_message_id, typing_of};
use super::outbox::Outbox;
use super::plain_hub::PlainHub;
use super::ws_socket::{self, End, Incoming, Keepalive, PlainSocket};
use std::time::Duration;

use crate::auth::token::{Identity, TokenVerifier};
use crate::clock;
use crate::metrics::Metrics;
use crate::protocol::{CHAT_READ, CHAT_SEND, CHAT_TYPING};
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
    /// Ping interval and timeout of silent clients.
    pub keepalive: Keepalive,
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
    Forbidden(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Refused::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_owned()),
            Refused::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Refused::Forbidden(m) => (StatusCode::FORBIDDEN, m),
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
    mut request: Request,
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
    state
        .chat
        .authorize(&identity, &room_id)
        .await
        .map_err(|e| match e {
            e @ (ChatError::NotAllowed | ChatError::AuthorizationUnavailable) => {
                Refused::Forbidden(e.to_string())
            }
            other => Refused::BadRequest(other.to_string()),
        })?;
    let (response, on_upgrade) =
        ws_socket::accept(&mut request).map_err(|e| Refused::BadRequest(e.to_string()))?;
    tokio::spawn(async move {
        if let Some(socket) = PlainSocket::upgrade(on_upgrade, state.max_payload, state.keepalive).await {
            serve(socket, state, identity, room_id).await;
        }
    });
    Ok(response)
}

async fn serve(mut socket: PlainSocket, state: PlainWs, mut user: Identity, room_id: RoomId) {
    let (member, outbox, kicked) = state.hub.join(room_id.as_str(), &user.user_id);
    if let Err(e) = state.chat.join(&user.user_id, &room_id).await {
        tracing::warn!(room = %room_id, error = %e, "plain chat client: membership not recorded");
    }
    // The user id stays the same for the whole connection (see `reauthenticate`).
    let user_id = user.user_id.clone();
    if state.chat.presence().arrive(room_id.as_str(), &user_id) {
        state.chat.announce_arrival(room_id.as_str(), &user_id).await;
    }
    let limiter = SocketLimiter::new(state.rate_limits.clone());
    tracing::debug!(room = %room_id, user = ?user.user_id, "plain chat client joined");
    let mut expiry = Expiry::of(&user);
    let end = loop {
        let reply = tokio::select! {
            incoming = socket.next(&outbox) => match incoming {
                Incoming::Text(text) if is_auth_frame(text.as_str()) => {
                    match reauthenticate(&state, &user, text.as_str()).await {
                        Ok(fresh) => {
                            expiry = Expiry::of(&fresh);
                            user = fresh;
                            Some(json!({ "type": "authenticated", "userId": user.user_id, "expiresAt": expiry.expires_at_ms }))
                        }
                        Err(message) => Some(error_frame(message)),
                    }
                }
                Incoming::Text(text) => handle(&state, &limiter, &user, &room_id, text.as_str()).await,
                Incoming::Binary => Some(error_frame("expected JSON text frames")),
                Incoming::End(end) => break end,
            },
            _ = state.shutdown.cancelled() => break End::Close(ws_socket::code::GOING_AWAY, "server shutting down"),
            _ = kicked.cancelled() => break End::Close(ws_socket::code::SENT_AWAY, "disconnected by the server"),
            _ = tokio::time::sleep_until(expiry.warn_at), if !expiry.warned => {
                expiry.warned = true;
                Some(json!({ "type": "expiring", "expiresAt": expiry.expires_at_ms }))
            }
            _ = tokio::time::sleep_until(expiry.expires_at) => {
                break End::Close(ws_socket::code::TOKEN_EXPIRED, "token expired");
            }
        };
        if let Some(reply) = reply
            && let Err(end) = queue(&outbox, reply)
        {
            break end;
        }
    };
    state.hub.leave(room_id.as_str(), &user.user_id, member);
    if state.chat.presence().depart(room_id.as_str(), &user_id) {
        state.chat.announce_departure(room_id.as_str(), &user_id).await;
    }
    socket.finish(end).await;
}

/// When the connection's token warns and expires.
struct Expiry {
    expires_at_ms: u64,
    warn_at: tokio::time::Instant,
    expires_at: tokio::time::Instant,
    warned: bool,
}

impl Expiry {
    fn of(user: &Identity) -> Self {
        let now_ms = clock::unix_millis();
        let expires_at_ms = user.expires_at.saturating_mul(1000);
        let left = expires_at_ms.saturating_sub(now_ms);
        let warn_before = (left / 10).min(60_000);
        let now = tokio::time::Instant::now();
        Self {
            expires_at_ms,
            warn_at: now + Duration::from_millis(left - warn_before),
            expires_at: now + Duration::from_millis(left),
            warned: false,
        }
    }
}

fn is_auth_frame(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .is_ok_and(|frame| frame.get("type").and_then(Value::as_str) == Some("auth"))
}

/// `{ "type": "auth", "token" }`: a fresh token for the same user extends the
/// connection; a token for another user is refused (reconnect as that user).
async fn reauthenticate(state: &PlainWs, user: &Identity, text: &str) -> Result<Identity, &'static str> {
    let frame: Value = serde_json::from_str(text).map_err(|_| "malformed JSON")?;
    let token = frame
        .get("token")
        .and_then(Value::as_str)
        .ok_or("missing token")?;
    let fresh = state.tokens.verify_with_refresh(token).await.map_err(|_| {
        state.metrics.auth_failures.increment(1);
        "invalid or expired token"
    })?;
    if fresh.user_id != user.user_id {
        return Err("the token is for another user: reconnect as that user");
    }
    Ok(fresh)
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
        "typing" => CHAT_TYPING,
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
        match event {
            CHAT_SEND => {
                let draft = Draft::from_plain_frame(&frame)?;
                state.chat.send(&user.user_id, room_id, draft).await?;
            }
            CHAT_TYPING => {
                let typing = typing_of(&frame)?;
                state.chat.typing(&user.user_id, room_id, typing).await;
            }
            _ => {
                let id = required_message_id(&frame, "messageId")?;
                state.chat.read(&user.user_id, room_id, &id).await?;
            }
        }
        Ok(())
    }
    .await;
    result.err().map(|e| error_frame(&e.to_string()))
}
