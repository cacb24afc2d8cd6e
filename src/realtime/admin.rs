//! The node's figures: the `metrics` event to the `admin` room every
//! `--metrics-interval-ms`, and the gauges refreshed before each /metrics scrape.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::Label;
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, TransportType};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::{METRICS, NodeMetrics};
use crate::auth::socket::ADMIN_ROOM;
use crate::market::groups::GROUP_ROOM_PREFIX;
use crate::metrics::{self as names, Metrics};
use crate::process_stats::{self, CpuSampler};

/// Reads this node's figures; shared by the admin emitter and /metrics.
pub struct NodeStats<A: Adapter> {
    io: SocketIo<A>,
    metrics: Arc<Metrics>,
    node: String,
    started: Instant,
    cpu: Mutex<CpuSampler>,
}

impl<A: Adapter> NodeStats<A> {
    pub fn new(io: SocketIo<A>, metrics: Arc<Metrics>, node: String) -> Self {
        Self {
            io,
            metrics,
            node,
            started: Instant::now(),
            cpu: Mutex::new(CpuSampler::new()),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Samples the node and sets the gauges. CPU is the use since the previous sample.
    pub async fn sample(&self) -> NodeMetrics {
        let sockets = self.io.sockets();
        let websocket = sockets
            .iter()
            .filter(|s| s.transport_type() == TransportType::Websocket)
            .count();
        let polling = sockets.len() - websocket;
        let rooms = match self.io.local().rooms().await {
            Ok(rooms) => rooms.iter().filter(|r| !r.starts_with(GROUP_ROOM_PREFIX)).count(),
            Err(_) => 0,
        };
        let memory = process_stats::resident_memory_bytes();
        let cpu = self.cpu.lock().unwrap_or_else(|e| e.into_inner()).sample();
        let uptime = self.started.elapsed().as_secs();

        let m = &self.metrics;
        m.gauge(names::CONNECTIONS, vec![Label::new("transport", "websocket")])
            .set(websocket as f64);
        m.gauge(names::CONNECTIONS, vec![Label::new("transport", "polling")])
            .set(polling as f64);
        m.gauge(names::ROOMS, vec![]).set(rooms as f64);
        m.gauge(names::RESIDENT_MEMORY, vec![]).set(memory as f64);
        m.gauge(names::CPU_SECONDS, vec![])
            .set(process_stats::cpu_seconds());
        m.gauge(names::UPTIME, vec![]).set(uptime as f64);

        NodeMetrics {
            node: self.node.clone(),
            connections: sockets.len(),
            rooms,
            events: m.events_total(),
            memory,
            cpu,
            uptime,
            ts: crate::clock::unix_millis(),
        }
    }
}

/// Spawns the emitter of `metrics` to the `admin` room (of every node, through the adapter).
pub fn spawn_emitter<A: Adapter>(
    stats: Arc<NodeStats<A>>,
    io: SocketIo<A>,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = crate::clock::ticker(interval);
        while crate::clock::next_tick(&mut ticker, &shutdown).await {
            let figures = stats.sample().await;
            let sent = io.to(ADMIN_ROOM).emit(METRICS, &figures).await;
            stats.metrics.record_broadcast(METRICS, sent);
        }
    })
}
