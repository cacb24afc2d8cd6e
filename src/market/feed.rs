//! Delivery of published items to clients: `price:update` to `price:<symbol>`
//! at once (and into the batcher), `trade:new` to `trades:<symbol>`, and emits
//! to any room. The HTTP API and the Redis channels both publish through here.

use std::sync::Arc;
use std::time::Instant;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::publish::{Emit, Price, Trade};
use super::symbol::{price_room, trades_room};
use crate::batcher::PendingPrices;
use crate::metrics::Metrics;
use crate::realtime::events::{PRICE_UPDATE, TRADE_NEW};

pub struct Feed<A: Adapter> {
    io: SocketIo<A>,
    pending: Arc<PendingPrices>,
    metrics: Arc<Metrics>,
}

impl<A: Adapter> Clone for Feed<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
            pending: self.pending.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<A: Adapter> Feed<A> {
    pub fn new(io: SocketIo<A>, pending: Arc<PendingPrices>, metrics: Arc<Metrics>) -> Self {
        Self { io, pending, metrics }
    }

    /// `received` is when the publish arrived; publish→emit latency is measured from it.
    pub async fn prices(&self, prices: &[Price], received: Instant) {
        for price in prices {
            if let Err(e) = self
                .io
                .to(price_room(&price.symbol))
                .emit(PRICE_UPDATE, price)
                .await
            {
                tracing::warn!(symbol = %price.symbol, error = %e, "price:update broadcast failed");
            }
            self.pending.put(&price.symbol, price.price);
            self.metrics.emitted(PRICE_UPDATE);
            self.metrics
                .publish_to_emit
                .record(received.elapsed().as_secs_f64());
        }
    }

    pub async fn trades(&self, trades: &[Trade]) {
        for trade in trades {
            if let Err(e) = self
                .io
                .to(trades_room(&trade.symbol))
                .emit(TRADE_NEW, &trade.body)
                .await
            {
                tracing::warn!(symbol = %trade.symbol, error = %e, "trade:new broadcast failed");
            }
            self.metrics.emitted(TRADE_NEW);
        }
    }

    pub async fn emits(&self, emits: &[Emit]) {
        for emit in emits {
            if let Err(e) = self.io.to(emit.rooms.clone()).emit(&emit.event, &emit.data).await {
                tracing::warn!(event = %emit.event, error = %e, "emit broadcast failed");
            }
            self.metrics.emitted(&emit.event);
        }
    }
}
