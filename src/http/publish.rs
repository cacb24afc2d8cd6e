//! The publish API (CONTRACT §4): `POST /api/v1/prices`, `/trades`, `/emit`,
//! bearer publish key, object or array bodies, all or nothing. Answers 202
//! `{ accepted }`; every request is counted by endpoint and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, JsonBody};
use super::extract::Publisher;
use crate::market::publish::{parse_emits, parse_prices, parse_trades};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/prices", post(publish_prices))
        .route("/api/v1/trades", post(publish_trades))
        .route("/api/v1/emit", post(publish_emits))
        .route_layer(middleware::from_fn_with_state(state, count_requests))
}

/// The 202 answer. On a quiet node the sockets' writers get their turn first,
/// so the deliveries go out before the publisher's answer is written (p50
/// publish→client 1.0 → 0.75 ms at 500 clients); on a busy node it answers at
/// once, so the deliveries of several publishes coalesce into fewer writes
/// (yielding there cost a third of the fanout throughput). See BENCHMARKS.md.
async fn accepted(state: &AppState, kind: &'static str, count: usize) -> Response {
    state.metrics.published(kind, count as u64);
    if !state.runtime_load.is_busy() {
        tokio::task::yield_now().await;
    }
    (StatusCode::ACCEPTED, Json(json!({ "accepted": count }))).into_response()
}

async fn publish_prices(
    State(state): State<AppState>,
    _: Publisher,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let prices = parse_prices(body, crate::clock::unix_millis())?;
    state.feed.prices(&prices, received).await;
    Ok(accepted(&state, "price", prices.len()).await)
}

async fn publish_trades(
    State(state): State<AppState>,
    _: Publisher,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let trades = parse_trades(body)?;
    state.feed.trades(&trades).await;
    Ok(accepted(&state, "trade", trades.len()).await)
}

async fn publish_emits(
    State(state): State<AppState>,
    _: Publisher,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let emits = parse_emits(body)?;
    state.feed.emits(&emits).await;
    Ok(accepted(&state, "emit", emits.len()).await)
}

/// Counts every publish request (401s and 400s included) by endpoint and status.
async fn count_requests(
    State(state): State<AppState>,
    path: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = match path.as_str() {
        "/api/v1/prices" => "prices",
        "/api/v1/trades" => "trades",
        "/api/v1/emit" => "emit",
        _ => "other",
    };
    let response = next.run(request).await;
    state
        .metrics
        .publish_request(endpoint, response.status().as_u16());
    response
}
