//! `POST /api/v1/chat/{roomId}/messages` with a user JWT as bearer: the same
//! as `chat:send`. 201 with the stored message; a retry with the same
//! `clientMsgId` answers 200 with the message first stored.

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

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/chat/{room_id}/messages", post(send))
}

async fn send(
    State(state): State<AppState>,
    Path(room_id): Path<String>,
    User(user): User,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let room_id = RoomId::parse(&room_id)?;
    let draft = Draft::from_event(&body)?;
    let (message, is_new) = state.chat.send(&user.user_id, &room_id, draft).await?;
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message)).into_response())
}
