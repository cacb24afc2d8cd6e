//! Sends the batcher's output to sockets: one `price:batch` broadcast per
//! subscription group, to this node's sockets only (every node batches for
//! its own sockets).

use std::sync::Arc;
use std::time::Duration;

use socketioxide::SocketIo;

use super::batcher::BatchSink;
use super::groups::GroupId;
use crate::metrics::Metrics;
use crate::protocol::{PRICE_BATCH, batch_room};

pub struct SocketBatchSink {
    pub io: SocketIo,
    pub metrics: Arc<Metrics>,
}

impl BatchSink for SocketBatchSink {
    async fn send(&self, group: GroupId, items: &[(&str, f64)]) {
        let sent = self
            .io
            .local()
            .to(batch_room(group))
            .emit(PRICE_BATCH, items)
            .await;
        self.metrics.record_broadcast(PRICE_BATCH, sent);
    }

    fn window(&self, changed_symbols: usize, took: Duration) {
        self.metrics.batch_symbols.record(changed_symbols as f64);
        self.metrics.batch_flush.record(took.as_secs_f64());
    }
}
