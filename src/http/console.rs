//! `GET /`: the web console's page.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use socketioxide::adapter::Adapter;

use super::AppState;

const CONSOLE_HTML: &str = include_str!("../../web/index.html");

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new().route("/", get(|| async { Html(CONSOLE_HTML) }))
}
