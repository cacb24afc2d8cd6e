//! `GET /`: the web console, built from web/ by build.rs and embedded.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use super::AppState;

const INDEX: &str = include_str!(concat!(env!("OUT_DIR"), "/index.html"));
const SCRIPT: &str = include_str!(concat!(env!("OUT_DIR"), "/console.js"));
const STYLE: &str = include_str!(concat!(env!("OUT_DIR"), "/console.css"));

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")], body)
}
