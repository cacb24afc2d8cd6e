//! `GET /`: the web console, built from web/ by build.rs and embedded. With
//! `--demo` the page's `<body>` carries `data-demo`, so the console knows to
//! show the demo token buttons and subscribe on its own without probing.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use super::AppState;

const INDEX: &str = include_str!(concat!(env!("OUT_DIR"), "/index.html"));
const SCRIPT: &str = include_str!(concat!(env!("OUT_DIR"), "/console.js"));
const STYLE: &str = include_str!(concat!(env!("OUT_DIR"), "/console.css"));

pub fn router(demo: bool) -> Router<AppState> {
    let page = if demo {
        INDEX.replacen("<body>", "<body data-demo>", 1)
    } else {
        INDEX.to_owned()
    };
    let page = axum::body::Bytes::from(page);
    Router::new()
        .route("/", get(move || async move { Html(page) }))
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
