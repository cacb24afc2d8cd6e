//! `POST /api/v1/users/{userId}/disconnect` (publish key; body optional
//! `{ reason }`): sends the user away on every node; 202 `{ disconnected }`
//! counts the connections closed on the node that took the request.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::Publisher;
use crate::sessions::SendAway;

/// Longest user id accepted.
const MAX_USER_ID: usize = 256;
/// Longest reason kept.
const MAX_REASON: usize = 256;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/users/{user_id}/disconnect", post(disconnect))
}

async fn disconnect(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    _: Publisher,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID {
        return Err(ApiError::BadRequest(format!(
            "userId must be 1-{MAX_USER_ID} bytes"
        )));
    }
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let body: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
        match body.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if r.len() <= MAX_REASON => Some(r.clone()),
            Some(_) => {
                return Err(ApiError::BadRequest(format!(
                    "reason must be a string of at most {MAX_REASON} bytes"
                )));
            }
        }
    };
    let disconnected = state.sessions.send_away(&SendAway { user_id, reason });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "disconnected": disconnected })),
    ))
}
