//! The HTTP side: publish API, chat REST, health, metrics and console, one
//! `router()` per file, merged here with the plain WebSocket endpoint, the
//! Socket.IO layer, CORS and the body limit.

pub mod admin_ui;
mod chat;
mod console;
pub mod error;
pub mod extract;
pub mod health;
mod metrics;
mod origin;
mod publish;
mod trace;
mod users;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::{Extension, Router};
use socketioxide::layer::SocketIoLayer;
use tower_http::trace::TraceLayer;

use crate::chat::Chat;
use crate::chat::plain_ws::{self, PlainWs};
use crate::config::CorsOrigins;
use crate::market::feed::Feed;
use crate::metrics::Metrics;
use crate::node::runtime_load::RuntimeLoad;
use crate::node::stats::NodeStats;
use crate::rate_limit::UserLimiters;
use crate::server::request_head;
use crate::sessions::UserSessions;
use error::BodyLimit;
use extract::{PublishKey, UserTokens};
use health::Readiness;

/// What HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    pub feed: Feed,
    pub publish_key: PublishKey,
    pub user_tokens: UserTokens,
    pub metrics: Arc<Metrics>,
    pub node_stats: Arc<NodeStats>,
    pub readiness: Arc<Readiness>,
    pub chat: Arc<Chat>,
    pub user_limits: Arc<UserLimiters>,
    pub runtime_load: Arc<RuntimeLoad>,
    pub plain_ws: PlainWs,
    pub sessions: UserSessions,
}

impl FromRef<AppState> for PublishKey {
    fn from_ref(state: &AppState) -> Self {
        state.publish_key.clone()
    }
}

impl FromRef<AppState> for UserTokens {
    fn from_ref(state: &AppState) -> Self {
        state.user_tokens.clone()
    }
}

impl FromRef<AppState> for PlainWs {
    fn from_ref(state: &AppState) -> Self {
        state.plain_ws.clone()
    }
}

/// How the HTTP application is put together.
pub struct HttpOptions<'a> {
    pub cors: &'a CorsOrigins,
    pub max_body: u64,
    /// Routes merged in front of the API (the demo's token endpoint, the Admin UI).
    pub extra_routes: Option<Router<AppState>>,
    /// `--demo`: the console subscribes on its own and offers demo tokens.
    pub demo: bool,
    /// The Socket.IO Admin UI is on: sockets keep their handshake headers (it shows them).
    pub admin_ui: bool,
}

/// The whole HTTP application: API routes, then Socket.IO at `/socket.io/`.
pub fn app(state: AppState, socket_io: SocketIoLayer, options: HttpOptions<'_>) -> Router {
    let api = options
        .extra_routes
        .unwrap_or_default()
        .merge(publish::router(state.clone()))
        .merge(health::router())
        .merge(metrics::router())
        .merge(console::router(options.demo))
        .merge(chat::router())
        .merge(plain_ws::router())
        .merge(users::router())
        .layer(DefaultBodyLimit::max(options.max_body as usize))
        .layer(Extension(BodyLimit(options.max_body)))
        .with_state(state);
    let origins = origin::Origins::from(options.cors);
    let cors = origins.cors();
    // Inside the origin guard, which reads `Origin` before the head is cut.
    let kept = if options.admin_ui {
        request_head::HeadKept::ForAdminUi
    } else {
        request_head::HeadKept::Least
    };
    let socket_io = api
        .layer(socket_io)
        .layer(axum::middleware::map_request(move |request| {
            request_head::own_upgrade_head(kept, request)
        }));
    origins
        .guard(socket_io)
        .layer(cors)
        .layer(TraceLayer::new_for_http().make_span_with(trace::make_span))
}
