//! `POST /api/v1/chat/{roomId}/messages` with a user JWT as bearer: the same
//! as `chat:send`. 201 with the stored message; a retry with the same
//! `clientMsgId` answers 200 with the message first stored.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use socketioxide::adapter::Adapter;

use super::AppState;
use super::error::{ApiError, JsonBody};
use crate::auth::bearer::User;
use crate::chat::{ChatError, draft_of, valid_room_id};

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new().route("/api/v1/chat/{room_id}/messages", post(send::<A>))
}

async fn send<A: Adapter>(
    State(state): State<AppState<A>>,
    Path(room_id): Path<String>,
    User(user): User,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    if !valid_room_id(&room_id) {
        return Err(ApiError::BadRequest(
            "roomId must be 1-64 characters of A-Z a-z 0-9 . _ - :".into(),
        ));
    }
    let draft = draft_of(&body, "message", "type").map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (message, is_new) = state
        .chat
        .send(&user.user_id, &room_id, draft)
        .await
        .map_err(|e| match e {
            ChatError::Store(e) => ApiError::Unavailable(e.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message)).into_response())
}
