//! Socket.IO namespace `/`: the connect middleware, one session per socket,
//! and the event handlers by feature.

pub mod admin;
pub mod batch_sink;
pub mod chat;
pub mod events;
pub mod inbound;
pub mod markets;
pub mod rate_limit;
pub mod session;

use std::sync::Arc;

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use crate::auth;
use crate::auth::token::TokenVerifier;
use crate::market::groups::PriceGroups;
use crate::metrics::Metrics;
use inbound::Inbound;
use rate_limit::RateLimitRules;
use session::Session;

/// What every socket handler shares.
pub struct Realtime {
    pub tokens: TokenVerifier,
    pub rate_limits: Arc<RateLimitRules>,
    pub metrics: Arc<Metrics>,
    pub price_groups: Arc<PriceGroups>,
    pub max_subscriptions: usize,
    pub chat: Arc<crate::chat::Chat>,
}

/// Registers namespace `/` on `io`; the adapter's init result (a future to
/// await for remote adapters) is the caller's to handle.
///
/// Everything a socket needs is set up in the connect middleware, not in the
/// connect handler: socketioxide awaits middleware before it sends the CONNECT
/// packet but spawns the handler after, so handlers registered there could
/// miss a client's first events.
pub fn register<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, realtime: Arc<Realtime>) -> A::InitRes {
    let handshake = move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
        let realtime = realtime.clone();
        async move {
            auth::socket::check_handshake(&s, auth.ok(), realtime).await?;
            attach(&s);
            Ok::<(), auth::socket::AuthenticationFailed>(())
        }
    };
    io.ns("/", on_connect::<A>.with(handshake))
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    tracing::debug!(sid = %socket.id, "connected");
}

/// Joins the identity's rooms and registers every event handler.
fn attach<A: Adapter>(socket: &SocketRef<A>) {
    if let Some(identity) = socket.extensions.get::<Arc<Session>>().and_then(|s| s.identity()) {
        auth::socket::join_identity_rooms(socket, &identity);
    }
    socket.on(events::AUTHENTICATE, auth::socket::on_authenticate::<A>);
    socket.on(events::SUBSCRIBE_PRICE, markets::on_subscribe_price::<A>);
    socket.on(events::UNSUBSCRIBE_PRICE, markets::on_unsubscribe_price::<A>);
    socket.on(events::SUBSCRIBE_TRADES, markets::on_subscribe_trades::<A>);
    socket.on(events::UNSUBSCRIBE_TRADES, markets::on_unsubscribe_trades::<A>);
    socket.on(events::CHAT_JOIN, chat::on_join::<A>);
    socket.on(events::CHAT_SEND, chat::on_send::<A>);
    socket.on(events::CHAT_READ, chat::on_read::<A>);
    socket.on(events::CHAT_HISTORY, chat::on_history::<A>);
    socket.on(events::CHAT_LEAVE, chat::on_leave::<A>);
    socket.on(events::PING, on_ping::<A>);
    socket.on_fallback(on_unknown_event::<A>);
    socket.on_disconnect(on_disconnect::<A>);
}

async fn on_ping<A: Adapter>(inbound: Inbound<A>, ack: AckSender<A>) {
    inbound.turn().await;
    inbound.ok(
        ack,
        &serde_json::json!({ "ok": true, "ts": crate::clock::unix_millis() }),
    );
}

async fn on_unknown_event<A: Adapter>(inbound: Inbound<A>, ack: AckSender<A>) {
    inbound.turn().await;
    let message = format!("unknown event {:?}", inbound.event);
    inbound.fail(ack, &message);
}

async fn on_disconnect<A: Adapter>(socket: SocketRef<A>) {
    if let Some(session) = socket.extensions.get::<Arc<Session>>() {
        markets::forget_subscriptions(&session);
    }
    tracing::debug!(sid = %socket.id, "disconnected");
}
