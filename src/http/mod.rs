//! The HTTP side: publish API, health, metrics and console, one `router()`
//! per file, merged here with the Socket.IO layer, CORS and the body limit.

pub mod chat;
pub mod conn;
pub mod console;
pub mod demo;
pub mod error;
pub mod health;
pub mod metrics;
pub mod origin;
pub mod publish;
pub mod request_head;
pub mod serve;
pub mod service;
pub mod ws_chat;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use socketioxide::adapter::Adapter;
use socketioxide::layer::SocketIoLayer;
use tower_http::trace::TraceLayer;

use tokio_util::sync::CancellationToken;

use crate::auth::token::TokenVerifier;
use crate::chat::Chat;
use crate::chat::plain_hub::PlainHub;
use crate::config::Secret;
use crate::market::feed::Feed;
use crate::metrics::Metrics;
use crate::realtime::admin::NodeStats;
use crate::realtime::rate_limit::RateLimitRules;
use crate::runtime_load::RuntimeLoad;
use error::BodyLimit;
use health::Readiness;

/// What HTTP handlers share.
pub struct AppState<A: Adapter> {
    pub feed: Feed<A>,
    pub publish_key: Arc<Secret>,
    pub tokens: TokenVerifier,
    pub metrics: Arc<Metrics>,
    pub node_stats: Arc<NodeStats<A>>,
    pub readiness: Arc<Readiness>,
    pub chat: Arc<Chat>,
    pub plain: Arc<PlainHub>,
    pub rate_limits: Arc<RateLimitRules>,
    pub runtime_load: Arc<RuntimeLoad>,
    /// Largest plain WebSocket message, bytes.
    pub max_payload: usize,
    /// Fires at shutdown: plain WebSocket connections close.
    pub shutdown: CancellationToken,
}

impl<A: Adapter> Clone for AppState<A> {
    fn clone(&self) -> Self {
        Self {
            feed: self.feed.clone(),
            publish_key: self.publish_key.clone(),
            tokens: self.tokens.clone(),
            metrics: self.metrics.clone(),
            node_stats: self.node_stats.clone(),
            readiness: self.readiness.clone(),
            chat: self.chat.clone(),
            plain: self.plain.clone(),
            rate_limits: self.rate_limits.clone(),
            runtime_load: self.runtime_load.clone(),
            max_payload: self.max_payload,
            shutdown: self.shutdown.clone(),
        }
    }
}

/// The whole HTTP application: API routes, then Socket.IO at `/socket.io/`.
pub fn app<A: Adapter>(
    state: AppState<A>,
    socket_io: SocketIoLayer<A>,
    cors_origins: &[String],
    max_body: u64,
    demo: bool,
) -> Result<Router, String> {
    let routes = if demo { demo::router() } else { Router::new() };
    let api = routes
        .merge(publish::router(state.clone()))
        .merge(health::router())
        .merge(metrics::router())
        .merge(console::router())
        .merge(chat::router())
        .merge(ws_chat::router())
        .layer(DefaultBodyLimit::max(max_body as usize))
        .layer(Extension(BodyLimit(max_body)))
        .with_state(state);
    let origins = origin::Origins::parse(cors_origins)?;
    let cors = origins.cors();
    Ok(origins
        .guard(api.layer(socket_io))
        .layer(axum::middleware::map_request(request_head::own_upgrade_head))
        .layer(cors)
        .layer(TraceLayer::new_for_http()))
}
