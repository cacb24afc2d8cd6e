//! `GET /metrics`: Prometheus text format, gauges sampled at scrape time.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use socketioxide::adapter::Adapter;

use super::AppState;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new().route("/metrics", get(scrape::<A>))
}

async fn scrape<A: Adapter>(State(state): State<AppState<A>>) -> impl IntoResponse {
    state.node_stats.sample().await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
