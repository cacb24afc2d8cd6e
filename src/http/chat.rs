//! `POST /api/v1/chat/{roomId}/messages` with a user JWT as bearer: the same
//! as `chat:send`. 201 with the stored message; a retry with the same
//! `clientMsgId` answers 200 with the message first stored. Counted and rate
//! limited as `chat:send` of that user (429 `{ error, retryAfterMs }`).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::AppState;
use super::error::{ApiError, JsonBody};
use super::extract::User;
use crate::chat::input::{Draft, RoomId};
use crate::protocol::CHAT_SEND;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/chat/{room_id}/messages", post(send))
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
