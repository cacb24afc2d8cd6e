//! `POST /api/v1/chat/{roomId}/messages` with a user JWT as bearer: the same
//! as `chat:send`. 201 with the stored message; a retry with the same
//! `clientMsgId` answers 200 with the message first stored. Counted and rate
//! limited as `chat:send` of that user (429 `{ error, retryAfterMs }`).
//!
//! `PATCH /api/v1/chat/{roomId}/messages/{id}` `{ message }` (the author) and
//! `DELETE` the same path (the author or an admin): what `chat:edit` and
//! `chat:delete` do; 200 with the message as history now shows it, 403 for
//! another user's message, 404 for an unknown id, 409 to edit a deleted one.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};

use super::AppState;
use super::error::{ApiError, JsonBody};
use super::extract::User;
use crate::auth::token::Identity;
use crate::chat::input::{Draft, RoomId, text_of};
use crate::protocol::{CHAT_DELETE, CHAT_EDIT, CHAT_SEND};
use crate::store::{ChatMessage, MessageId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/chat/{room_id}/messages", post(send))
        .route("/api/v1/chat/{room_id}/messages/{id}", patch(edit).delete(delete))
}

/// Counts and rate-limits `event` of `user`, then checks the room and the id.
async fn message_of(
    state: &AppState,
    event: &'static str,
    user: &Identity,
    room_id: &str,
    id: &str,
) -> Result<(RoomId, MessageId), ApiError> {
    state.metrics.event_received(event);
    if let Err(retry_after) = state.user_limits.check(&user.user_id, event) {
        state.metrics.rate_limited(event);
        return Err(ApiError::RateLimited(retry_after));
    }
    let room_id = RoomId::parse(room_id)?;
    state.chat.authorize(user, &room_id).await?;
    let id = MessageId::parse(id).ok_or_else(|| ApiError::NotFound("unknown messageId".into()))?;
    Ok((room_id, id))
}

async fn edit(
    State(state): State<AppState>,
    Path((room_id, id)): Path<(String, String)>,
    User(user): User,
    JsonBody(body): JsonBody,
) -> Result<Json<ChatMessage>, ApiError> {
    let (room_id, id) = message_of(&state, CHAT_EDIT, &user, &room_id, &id).await?;
    let text = text_of(&body, "message")?;
    Ok(Json(state.chat.edit(&user.user_id, &room_id, &id, &text).await?))
}

async fn delete(
    State(state): State<AppState>,
    Path((room_id, id)): Path<(String, String)>,
    User(user): User,
) -> Result<Json<ChatMessage>, ApiError> {
    let (room_id, id) = message_of(&state, CHAT_DELETE, &user, &room_id, &id).await?;
    Ok(Json(state.chat.delete(&user, &room_id, &id).await?))
}

async fn send(
    State(state): State<AppState>,
    Path(room_id): Path<String>,
    User(user): User,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    state.metrics.event_received(CHAT_SEND);
    if let Err(retry_after) = state.user_limits.check(&user.user_id, CHAT_SEND) {
        state.metrics.rate_limited(CHAT_SEND);
        return Err(ApiError::RateLimited(retry_after));
    }
    let room_id = RoomId::parse(&room_id)?;
    state.chat.authorize(&user, &room_id).await?;
    let draft = Draft::from_event(&body)?;
    let (message, is_new) = state.chat.send(&user.user_id, &room_id, draft).await?;
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message)).into_response())
}
