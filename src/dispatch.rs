//! Local delivery of what arrives from other nodes and from services over
//! Redis: each envelope kind goes to the one feature that delivers it to this
//! node's clients. The cluster layer sees only the [`Dispatcher`] trait.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{BoxFuture, FutureExt};
use serde_json::Value;
use socketioxide::SocketIo;

use crate::admin::AdminUi;
use crate::chat::delivery::ChatBus;
use crate::chat::out::ChatOut;
use crate::clock;
use crate::cluster::consumers::{Arrival, Dispatcher};
use crate::cluster::emitter::{Args, Broadcast, Request, Selection};
use crate::cluster::fanout::Kind;
use crate::market::feed::Feed;
use crate::market::publish::{parse_emits, parse_prices, parse_trades};
use crate::metrics::Metrics;
use crate::node::admin_feed;
use crate::protocol::{ADMIN_ROOM, Bridged, NodeMetrics};
use crate::recovery::Recovery;
use crate::sessions::{SendAway, UserSessions};

/// Delivers arrivals to this node's sockets and plain WebSocket clients.
pub struct LocalDelivery {
    pub io: SocketIo,
    pub feed: Feed,
    pub chat: Arc<ChatBus>,
    pub recovery: Arc<Recovery>,
    pub metrics: Arc<Metrics>,
    pub sessions: UserSessions,
    /// The Socket.IO Admin UI side, when `--admin-ui-password` is set.
    pub admin: Option<Arc<AdminUi>>,
}

impl Dispatcher for LocalDelivery {
    fn dispatch<'a>(&'a self, arrival: Arrival<'a>) -> BoxFuture<'a, Result<(), String>> {
        async move {
            match arrival {
                Arrival::Items { kind, items } => self.items(kind, items).await,
                Arrival::Published { kind, body } => self.published(kind, body).await,
                Arrival::Bridged { bridge, payload } => {
                    let data = serde_json::from_slice(payload)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
                    let message = Bridged {
                        kind: &bridge.channel,
                        data,
                        timestamp: clock::unix_millis(),
                    };
                    let local = self.io.local();
                    let sent = match &bridge.room {
                        Some(room) => local.to(room.clone()).emit(&bridge.channel, &message).await,
                        None => local.emit(&bridge.channel, &message).await,
                    };
                    self.metrics.record_broadcast(&bridge.channel, sent);
                    Ok(())
                }
                Arrival::Emitter(broadcast) => {
                    self.emitter_broadcast(&broadcast).await;
                    Ok(())
                }
                Arrival::EmitterRequest(request) => self.emitter_request(request).await,
            }
        }
        .boxed()
    }
}

impl LocalDelivery {
    async fn items(&self, kind: Kind, items: &[u8]) -> Result<(), String> {
        match kind {
            Kind::Prices => {
                let received = Instant::now();
                let prices = parse_prices(json(items)?, clock::unix_millis()).map_err(|e| e.0)?;
                self.feed.deliver_prices(&prices, received).await;
            }
            Kind::Trades => {
                let trades = parse_trades(json(items)?).map_err(|e| e.0)?;
                self.feed.deliver_trades(&trades).await
            }
            Kind::Emits => {
                let emits = parse_emits(json(items)?).map_err(|e| e.0)?;
                self.feed.deliver_emits(&emits).await
            }
            Kind::Chat => {
                let out: ChatOut = serde_json::from_slice(items).map_err(|e| e.to_string())?;
                self.chat.deliver_local(&out).await;
            }
            Kind::Disconnect => {
                let requests: Vec<SendAway> = serde_json::from_slice(items).map_err(|e| e.to_string())?;
                for request in &requests {
                    self.sessions.send_away_here(request);
                }
            }
            Kind::Recorded => self.recovery.deliver_envelope(items).await?,
            Kind::Metrics => {
                let figures: Vec<NodeMetrics> = serde_json::from_slice(items).map_err(|e| e.to_string())?;
                for figures in &figures {
                    admin_feed::deliver_local(&self.io, &self.metrics, figures).await;
                }
            }
            Kind::AdminEvents | Kind::AdminRequest | Kind::AdminReply => {
                if let Some(admin) = &self.admin {
                    admin.deliver(kind, items).await?;
                }
            }
        }
        Ok(())
    }
}

impl LocalDelivery {
    /// A service's publish body that every node received: prices go to this
    /// node's sockets (and the latest prices); trades and emits to `user:<id>`
    /// are recorded by the one node that claims them, then delivered on every node.
    async fn published(&self, kind: Kind, body: &[u8]) -> Result<(), String> {
        match kind {
            Kind::Prices => {
                let received = Instant::now();
                let prices = parse_prices(json(body)?, clock::unix_millis()).map_err(|e| e.0)?;
                self.feed.service_prices(&prices, received).await;
            }
            Kind::Trades => {
                let trades = parse_trades(json(body)?).map_err(|e| e.0)?;
                self.feed.service_trades(&trades, body).await;
            }
            Kind::Emits => {
                let emits = parse_emits(json(body)?).map_err(|e| e.0)?;
                self.feed.service_emits(&emits, body).await;
            }
            other => return self.items(other, body).await,
        }
        Ok(())
    }
}

impl LocalDelivery {
    /// Like an emit-API call: to the sockets in any of `rooms` (everyone when
    /// there are none) minus those in `except`, on this node only.
    async fn emitter_broadcast(&self, b: &Broadcast) {
        let sent = self
            .selection(&b.rooms, &b.except)
            .emit(&b.event, &Args(&b.args))
            .await;
        self.metrics.record_broadcast(&b.event, sent);
    }

    async fn emitter_request(&self, request: Request) -> Result<(), String> {
        match request {
            Request::Join { on, rooms } => {
                managed(&rooms)?;
                let _ = self.selection(&on.rooms, &on.except).join(rooms).await;
            }
            Request::Leave { on, rooms } => {
                managed(&rooms)?;
                let _ = self.selection(&on.rooms, &on.except).leave(rooms).await;
            }
            Request::Disconnect {
                on: Selection { rooms, except },
            } => {
                let _ = self.selection(&rooms, &except).disconnect().await;
            }
            Request::Ignored => {}
        }
        Ok(())
    }

    fn selection(&self, rooms: &[String], except: &[String]) -> socketioxide::operators::BroadcastOperators {
        let local = self.io.local().except(except.to_vec());
        if rooms.is_empty() {
            local
        } else {
            local.to(rooms.to_vec())
        }
    }
}

/// Rooms roomcast keeps itself (subscriptions, users, chat, admin) are not
/// joined or left from outside.
fn managed(rooms: &[String]) -> Result<(), String> {
    const PREFIXES: [&str; 5] = ["price:", "trades:", "chat:", "user:", "$"];
    match rooms
        .iter()
        .find(|r| r.as_str() == ADMIN_ROOM || PREFIXES.iter().any(|p| r.starts_with(p)))
    {
        Some(room) => Err(format!("room {room:?} is managed by roomcast")),
        None => Ok(()),
    }
}

fn json(payload: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(payload).map_err(|e| format!("malformed JSON: {e}"))
}
