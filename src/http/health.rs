//! `GET /healthz` (200 while the process serves) and `GET /readyz` (200 when
//! ready to take traffic, 503 while starting, draining, or cut off from Redis).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::cluster::health::RedisHealth;

/// Whether this node should receive traffic.
#[derive(Default)]
pub struct Readiness {
    draining: AtomicBool,
    redis: Option<Arc<RedisHealth>>,
}

impl Readiness {
    /// `redis`: the Redis health to require, in multi-node mode.
    pub fn new(redis: Option<Arc<RedisHealth>>) -> Self {
        Self {
            draining: AtomicBool::new(false),
            redis,
        }
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Why the node is not ready, if it is not.
    pub fn problem(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::Acquire) {
            return Some("shutting down");
        }
        match &self.redis {
            Some(redis) if !redis.is_up() => Some("redis unreachable"),
            _ => None,
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    readiness_response(&state.readiness)
}

fn readiness_response(readiness: &Arc<Readiness>) -> (StatusCode, Json<serde_json::Value>) {
    match readiness.problem() {
        None => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": problem })),
        ),
    }
}
