//! This node's figures, sampled on demand: for the admin `metrics` event and
//! for the gauges refreshed before each /metrics scrape.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use metrics::{Gauge, Label};
use socketioxide::{SocketIo, TransportType};

use super::process_stats::{self, CpuSampler};
use crate::metrics::{self as names, Metrics};
use crate::protocol::{NodeMetrics, is_internal_room};

/// Reads this node's figures; shared by the admin emitter and /metrics.
pub struct NodeStats {
    io: SocketIo,
    metrics: Arc<Metrics>,
    gauges: Gauges,
    node: String,
    started: Instant,
    cpu: Mutex<CpuSampler>,
}

impl NodeStats {
    pub fn new(io: SocketIo, metrics: Arc<Metrics>, node: String) -> Self {
        Self {
            io,
            gauges: Gauges::new(&metrics),
            metrics,
            node,
            started: Instant::now(),
            cpu: Mutex::new(CpuSampler::new()),
        }
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
            Ok(rooms) => rooms.iter().filter(|r| !is_internal_room(r)).count(),
            Err(_) => 0,
        };
        let memory = process_stats::resident_memory_bytes();
        let cpu = self.cpu.lock().unwrap_or_else(|e| e.into_inner()).sample();
        let uptime = self.started.elapsed().as_secs();

        let g = &self.gauges;
        g.websocket.set(websocket as f64);
        g.polling.set(polling as f64);
        g.rooms.set(rooms as f64);
        g.memory.set(memory as f64);
        g.cpu_seconds.set(process_stats::cpu_seconds());
        g.uptime.set(uptime as f64);

        NodeMetrics {
            node: self.node.clone(),
            connections: sockets.len(),
            rooms,
            events: self.metrics.events_total(),
            memory,
            cpu,
            uptime,
            ts: crate::clock::unix_millis(),
        }
    }
}

/// The gauges a sample sets, registered once.
struct Gauges {
    websocket: Gauge,
    polling: Gauge,
    rooms: Gauge,
    memory: Gauge,
    cpu_seconds: Gauge,
    uptime: Gauge,
}

impl Gauges {
    fn new(m: &Metrics) -> Self {
        let transport = |t: &'static str| vec![Label::new("transport", t)];
        Self {
            websocket: m.gauge(names::CONNECTIONS, transport("websocket")),
            polling: m.gauge(names::CONNECTIONS, transport("polling")),
            rooms: m.gauge(names::ROOMS, vec![]),
            memory: m.gauge(names::RESIDENT_MEMORY, vec![]),
            cpu_seconds: m.gauge(names::CPU_SECONDS, vec![]),
            uptime: m.gauge(names::UPTIME, vec![]),
        }
    }
}
