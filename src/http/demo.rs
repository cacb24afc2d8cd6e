//! `GET /api/v1/demo/token?sub=&role=`: a short-lived user token, for the
//! console in `--demo` mode only. Not routed at all otherwise.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use socketioxide::adapter::Adapter;

use super::AppState;
use super::error::ApiError;

/// Lifetime of a demo token.
pub const DEMO_TOKEN_TTL_SECS: u64 = 15 * 60;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new().route("/api/v1/demo/token", get(token::<A>))
}

#[derive(Deserialize)]
struct Params {
    sub: Option<String>,
    role: Option<String>,
}

async fn token<A: Adapter>(
    State(state): State<AppState<A>>,
    Query(params): Query<Params>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sub = params.sub.unwrap_or_else(|| "demo-user".to_owned());
    if sub.is_empty() || sub.len() > 64 {
        return Err(ApiError::BadRequest("sub must be 1-64 characters".into()));
    }
    let role = match params.role.as_deref() {
        None | Some("") => None,
        Some("admin") => Some("admin"),
        Some(_) => return Err(ApiError::BadRequest("role must be admin or absent".into())),
    };
    tracing::warn!(user = ?sub, ?role, "DEMO MODE: issued a dev token to whoever asked");
    let token = state.tokens.mint(&sub, role, DEMO_TOKEN_TTL_SECS);
    Ok(Json(
        json!({ "token": token, "userId": sub, "expiresIn": DEMO_TOKEN_TTL_SECS }),
    ))
}
