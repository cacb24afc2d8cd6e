//! Delivery of published items to clients: `price:update` to `price:<symbol>`
//! at once (and into the batcher and the latest prices), `trade:new` to
//! `trades:<symbol>`, and emits to any room. `deliver_*` reach this node's
//! sockets only; the publishing entry points (`prices`, `trades`, `emits`)
//! also fan out to the other nodes when there are any (see `cluster::fanout`).
//! Trades, and emits to `user:<id>` rooms, are recoverable: they go through
//! `recovery`, which gives them offsets and delivers them on every node.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use socketioxide::SocketIo;

use super::batcher::PendingPrices;
use super::latest::LatestPrices;
use super::publish::{Emit, Price, Trade};
use crate::cluster::fanout::{Fanout, Kind};
use crate::metrics::Metrics;
use crate::protocol::{PRICE_UPDATE, TRADE_NEW, USER_ROOM_PREFIX, price_room, trades_room};
use crate::recovery::{Pending, Recovery, Stored};

#[derive(Clone)]
pub struct Feed {
    io: SocketIo,
    pending: Arc<PendingPrices>,
    metrics: Arc<Metrics>,
    fanout: Option<Fanout>,
    latest: Arc<LatestPrices>,
    recovery: Arc<Recovery>,
}

impl Feed {
    pub fn new(
        io: SocketIo,
        pending: Arc<PendingPrices>,
        metrics: Arc<Metrics>,
        fanout: Option<Fanout>,
        latest: Arc<LatestPrices>,
        recovery: Arc<Recovery>,
    ) -> Self {
        Self {
            io,
            pending,
            metrics,
            fanout,
            latest,
            recovery,
        }
    }

    /// Publishes prices to every node; `received` is when the publish arrived.
    pub async fn prices(&self, prices: &[Price], received: Instant) {
        self.deliver_prices(prices, received).await;
        self.latest.persist(prices);
        self.fan_out(Kind::Prices, prices);
    }

    /// Publishes trades to every node, recorded.
    pub async fn trades(&self, trades: &[Trade]) {
        self.recovery.publish(recorded_trades(trades)).await;
    }

    /// Publishes emits to every node; those to `user:<id>` rooms recorded.
    pub async fn emits(&self, emits: &[Emit]) {
        let (recorded, plain) = split_emits(emits);
        if !recorded.is_empty() {
            self.recovery.publish(recorded).await;
        }
        if !plain.is_empty() {
            self.deliver_emit_refs(&plain).await;
            self.fan_out(Kind::Emits, &plain);
        }
    }

    /// Trades a service published on `roomcast:trades` (every node received them).
    pub async fn service_trades(&self, trades: &[Trade], payload: &[u8]) {
        self.recovery
            .publish_claimed(recorded_trades(trades), payload)
            .await;
    }

    /// Emits a service published on `roomcast:emit` (every node received them).
    pub async fn service_emits(&self, emits: &[Emit], payload: &[u8]) {
        let (recorded, plain) = split_emits(emits);
        if !recorded.is_empty() {
            self.recovery.publish_claimed(recorded, payload).await;
        }
        self.deliver_emit_refs(&plain).await;
    }

    /// Prices a service published on `roomcast:prices` (every node received them).
    pub async fn service_prices(&self, prices: &[Price], received: Instant) {
        self.deliver_prices(prices, received).await;
        self.latest.persist(prices);
    }

    fn fan_out<T: Serialize + ?Sized>(&self, kind: Kind, items: &T) {
        if let Some(fanout) = &self.fanout {
            fanout.send(kind, items);
        }
    }

    /// `price:update` to this node's subscribers, and into this node's batcher.
    pub async fn deliver_prices(&self, prices: &[Price], received: Instant) {
        self.latest.note(prices);
        for price in prices {
            let room = price_room(&price.symbol);
            let sent = self.io.local().to(room).emit(PRICE_UPDATE, price).await;
            self.metrics.record_broadcast(PRICE_UPDATE, sent);
            self.pending.put(&price.symbol, price.price);
            self.metrics
                .publish_to_emit
                .record(received.elapsed().as_secs_f64());
        }
    }

    pub async fn deliver_trades(&self, trades: &[Trade]) {
        for trade in trades {
            let room = trades_room(&trade.symbol);
            let sent = self.io.local().to(room).emit(TRADE_NEW, &trade.body).await;
            self.metrics.record_broadcast(TRADE_NEW, sent);
        }
    }

    pub async fn deliver_emits(&self, emits: &[Emit]) {
        let emits: Vec<&Emit> = emits.iter().collect();
        self.deliver_emit_refs(&emits).await;
    }

    async fn deliver_emit_refs(&self, emits: &[&Emit]) {
        for emit in emits {
            let sent = self
                .io
                .local()
                .to(emit.rooms.clone())
                .emit(&emit.event, &emit.data)
                .await;
            self.metrics.record_broadcast(&emit.event, sent);
        }
    }
}

fn stored(event: &str, data: &impl Serialize) -> Option<Arc<Stored>> {
    match serde_json::value::to_raw_value(data) {
        Ok(data) => Some(Arc::new(Stored {
            event: event.to_owned(),
            data,
        })),
        Err(e) => {
            tracing::error!(error = %e, "could not encode a published item");
            None
        }
    }
}

fn recorded_trades(trades: &[Trade]) -> Vec<Pending> {
    trades
        .iter()
        .filter_map(|trade| {
            let room = trades_room(&trade.symbol);
            Some(Pending {
                rooms: vec![room.clone()],
                recorded: vec![room],
                stored: stored(TRADE_NEW, &trade.body)?,
            })
        })
        .collect()
}

/// Emits to at least one `user:<id>` room (recorded there), and the others.
fn split_emits(emits: &[Emit]) -> (Vec<Pending>, Vec<&Emit>) {
    let mut recorded = Vec::new();
    let mut plain = Vec::new();
    for emit in emits {
        let users: Vec<String> = emit
            .rooms
            .iter()
            .filter(|r| r.starts_with(USER_ROOM_PREFIX))
            .cloned()
            .collect();
        if users.is_empty() {
            plain.push(emit);
            continue;
        }
        let mut rooms = emit.rooms.clone();
        rooms.dedup();
        if let Some(stored) = stored(&emit.event, &emit.data) {
            recorded.push(Pending {
                rooms,
                recorded: dedup(users),
                stored,
            });
        }
    }
    (recorded, plain)
}

fn dedup(mut rooms: Vec<String>) -> Vec<String> {
    rooms.sort();
    rooms.dedup();
    rooms
}
