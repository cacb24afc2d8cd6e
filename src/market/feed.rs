//! Delivery of published items to clients: `price:update` to `price:<symbol>`
//! at once (and into the batcher), `trade:new` to `trades:<symbol>`, and emits
//! to any room. `deliver_*` reach this node's sockets only; the publishing
//! entry points (`prices`, `trades`, `emits`) also fan out to the other nodes
//! when there are any (see `cluster::fanout`).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};
use socketioxide::SocketIo;

use super::batcher::PendingPrices;
use super::publish::{Emit, Price, Trade};
use crate::cluster::fanout::{Fanout, Kind};
use crate::metrics::Metrics;
use crate::protocol::{PRICE_UPDATE, TRADE_NEW, price_room, trades_room};

#[derive(Clone)]
pub struct Feed {
    io: SocketIo,
    pending: Arc<PendingPrices>,
    metrics: Arc<Metrics>,
    fanout: Option<Fanout>,
}

impl Feed {
    pub fn new(
        io: SocketIo,
        pending: Arc<PendingPrices>,
        metrics: Arc<Metrics>,
        fanout: Option<Fanout>,
    ) -> Self {
        Self {
            io,
            pending,
            metrics,
            fanout,
        }
    }

    /// Publishes prices to every node; `received` is when the publish arrived.
    pub async fn prices(&self, prices: &[Price], received: Instant) {
        self.deliver_prices(prices, received).await;
        self.fan_out(Kind::Prices, prices);
    }

    pub async fn trades(&self, trades: &[Trade]) {
        self.deliver_trades(trades).await;
        let bodies: Vec<&Map<String, Value>> = trades.iter().map(|t| &t.body).collect();
        self.fan_out(Kind::Trades, &bodies);
    }

    pub async fn emits(&self, emits: &[Emit]) {
        self.deliver_emits(emits).await;
        self.fan_out(Kind::Emits, emits);
    }

    fn fan_out<T: Serialize + ?Sized>(&self, kind: Kind, items: &T) {
        if let Some(fanout) = &self.fanout {
            fanout.send(kind, items);
        }
    }

    /// `price:update` to this node's subscribers, and into this node's batcher.
    pub async fn deliver_prices(&self, prices: &[Price], received: Instant) {
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
