//! The `metrics` event to the `admin` room every `--metrics-interval-ms`: this
//! node's figures go to its own admin sockets and, as one fanout envelope, to
//! every other node's (one event per node, see `dispatch`).

use std::sync::Arc;
use std::time::Duration;

use socketioxide::SocketIo;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::stats::NodeStats;
use crate::cluster::fanout::{Fanout, Kind};
use crate::metrics::Metrics;
use crate::protocol::{ADMIN_ROOM, METRICS, NodeMetrics};

/// Delivers one node's figures to this node's admin sockets.
pub async fn deliver_local(io: &SocketIo, metrics: &Metrics, figures: &NodeMetrics) {
    let sent = io.local().to(ADMIN_ROOM).emit(METRICS, figures).await;
    metrics.record_broadcast(METRICS, sent);
}

/// Spawns the periodic sample-and-send.
pub fn spawn(
    stats: Arc<NodeStats>,
    io: SocketIo,
    metrics: Arc<Metrics>,
    fanout: Option<Fanout>,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = crate::clock::ticker(interval);
        while crate::clock::next_tick(&mut ticker, &shutdown).await {
            let figures = stats.sample().await;
            deliver_local(&io, &metrics, &figures).await;
            if let Some(fanout) = &fanout {
                fanout.send(Kind::Metrics, &[&figures]);
            }
        }
    })
}
