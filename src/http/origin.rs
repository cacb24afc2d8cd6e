//! Browser origins: CORS headers for the allowed ones, and a refusal (403)
//! of Socket.IO requests and WebSocket upgrades from any other, since
//! browsers do not apply CORS to a WebSocket and a long-poll's answer would
//! be read anyway through the session it opens. Requests without an
//! `Origin` (non-browser clients) are let through.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::http::header::{ORIGIN, UPGRADE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::config::CorsOrigins;

/// The `--cors-origin` setting, as the HTTP side applies it.
#[derive(Debug, Clone)]
pub enum Origins {
    /// `*`: any origin, without credentials.
    Any,
    /// These origins, with credentials.
    List(Arc<Vec<HeaderValue>>),
}

impl From<&CorsOrigins> for Origins {
    fn from(origins: &CorsOrigins) -> Self {
        match origins {
            CorsOrigins::Any => Origins::Any,
            CorsOrigins::List(list) => Origins::List(Arc::new(list.clone())),
        }
    }
}

impl Origins {
    fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => list
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes())),
        }
    }

    /// CORS: `*` without credentials, or the listed origins with credentials.
    pub fn cors(&self) -> CorsLayer {
        let layer = CorsLayer::new()
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request());
        match self {
            Origins::Any => layer.allow_origin(AllowOrigin::any()),
            Origins::List(list) => layer
                .allow_origin(AllowOrigin::list(list.iter().cloned()))
                .allow_credentials(true),
        }
    }

    /// Wraps `router` so Socket.IO requests and WebSocket upgrades from an
    /// origin not on the list get 403.
    pub fn guard(self, router: Router) -> Router {
        if let Origins::Any = self {
            return router;
        }
        router.layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            let origins = self.clone();
            async move { origins.check(request, next).await }
        }))
    }

    async fn check(&self, request: Request, next: Next) -> Response {
        let guarded =
            request.uri().path().starts_with("/socket.io/") || request.headers().contains_key(UPGRADE);
        match request.headers().get(ORIGIN) {
            Some(origin) if guarded && !self.allows(origin) => (
                StatusCode::FORBIDDEN,
                Json(json!({ "error": "origin not allowed" })),
            )
                .into_response(),
            _ => next.run(request).await,
        }
    }
}
