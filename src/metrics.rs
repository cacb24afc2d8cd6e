//! Prometheus metrics. Names are the constants below (the Grafana dashboard
//! queries exactly these). Each application owns its recorder, so several nodes
//! can run in one process (tests) without sharing counters; counters on hot
//! paths are registered once and kept as handles.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use socketioxide::{BroadcastError, SocketError};

use crate::protocol::{CLIENT_EVENTS, SERVER_EVENTS};

pub const CONNECTIONS: &str = "roomcast_connections";
pub const ROOMS: &str = "roomcast_rooms";
pub const EVENTS_RECEIVED: &str = "roomcast_events_received_total";
pub const EMITS: &str = "roomcast_emits_total";
pub const PUBLISH_REQUESTS: &str = "roomcast_publish_requests_total";
pub const PUBLISHED_ITEMS: &str = "roomcast_published_items_total";
pub const RATE_LIMITED: &str = "roomcast_rate_limited_total";
pub const AUTH_FAILURES: &str = "roomcast_auth_failures_total";
pub const BATCH_SYMBOLS: &str = "roomcast_batch_symbols";
pub const BATCH_FLUSH: &str = "roomcast_batch_flush_seconds";
pub const PUBLISH_TO_EMIT: &str = "roomcast_publish_to_emit_seconds";
pub const REDIS_UP: &str = "roomcast_redis_up";
pub const REDIS_RECONNECTS: &str = "roomcast_redis_reconnects_total";
pub const REDIS_PUBLISH_ERRORS: &str = "roomcast_redis_publish_errors_total";
pub const REDIS_MESSAGES: &str = "roomcast_redis_messages_total";
pub const REDIS_DROPPED: &str = "roomcast_redis_dropped_messages_total";
pub const FANOUT_DROPPED: &str = "roomcast_fanout_dropped_total";
pub const DROPPED_PACKETS: &str = "roomcast_dropped_packets_total";
pub const RESIDENT_MEMORY: &str = "roomcast_process_resident_memory_bytes";
pub const CPU_SECONDS: &str = "roomcast_process_cpu_seconds_total";
pub const UPTIME: &str = "roomcast_uptime_seconds";
pub const RUNTIME_BUSY: &str = "roomcast_runtime_busy_ratio";
pub const CHAT_ROOMS_EVICTED: &str = "roomcast_chat_rooms_evicted_total";
pub const CHAT_MEMORY_BYTES: &str = "roomcast_chat_memory_bytes";
/// Chat messages the offline delivery hook delivered (2xx).
pub const WEBHOOK_SENT: &str = "roomcast_webhook_sent_total";
/// Attempts of the offline delivery hook that failed (error, timeout, non-2xx).
pub const WEBHOOK_FAILED: &str = "roomcast_webhook_failed_total";
/// Chat messages the hook gave up (queue full, or every attempt failed).
pub const WEBHOOK_DROPPED: &str = "roomcast_webhook_dropped_total";
/// Events sent again to resuming sockets.
pub const RECOVERY_REPLAYED: &str = "roomcast_recovery_replayed_total";
/// Recoverable events delivered without an offset (Redis was away when published).
pub const RECOVERY_UNRECORDED: &str = "roomcast_recovery_unrecorded_total";

/// Publish API endpoints, item kinds and answers, registered up front.
const PUBLISH_ENDPOINTS: &[&str] = &["prices", "trades", "emit", "other"];
const PUBLISH_KINDS: &[&str] = &["price", "trade", "emit"];
const PUBLISH_STATUSES: &[u16] = &[202, 400, 401, 413];
pub const CONNECTIONS_REFUSED: &str = "roomcast_connections_refused_total";
pub const CONNECTIONS_CLOSED: &str = "roomcast_connections_closed_total";
pub const ACCEPT_ERRORS: &str = "roomcast_accept_errors_total";
/// Socket.IO requests forwarded to the node holding their session, and handshakes not registered.
pub const SESSION_FORWARDS: &str = "roomcast_session_forwards_total";

/// Label value for client events roomcast does not know (keeps label cardinality bounded).
const UNKNOWN_EVENT: &str = "unknown";
/// Label value for emits of service-chosen event names.
const CUSTOM_EVENT: &str = "custom";

/// Seconds; fine at the sub-millisecond end where roomcast should live.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

const METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

/// The metric handles of one application.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    events_received: HashMap<&'static str, Counter>,
    rate_limited: HashMap<&'static str, Counter>,
    emits: HashMap<&'static str, Counter>,
    dropped: HashMap<&'static str, Counter>,
    published_items: HashMap<&'static str, Counter>,
    publish_requests: HashMap<(&'static str, u16), Counter>,
    events_total: AtomicU64,
    pub auth_failures: Counter,
    pub batch_symbols: Histogram,
    pub publish_to_emit: Histogram,
    pub batch_flush: Histogram,
}

impl Metrics {
    /// Every series carries the label `node` (the node's name).
    pub fn new(node: &str) -> Self {
        let recorder = PrometheusBuilder::new()
            .add_global_label("node", node)
            .set_buckets_for_metric(
                Matcher::Full(BATCH_SYMBOLS.to_owned()),
                &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
            )
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_FLUSH.to_owned()), LATENCY_BUCKETS))
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(PUBLISH_TO_EMIT.to_owned()),
                    &[
                        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 1.0,
                    ],
                )
            })
            .expect("static bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let by_event = |name: &'static str, events: &[&'static str], other: &'static str| {
            events
                .iter()
                .chain([&other])
                .map(|event| {
                    let key = Key::from_parts(name, vec![Label::new("event", *event)]);
                    (*event, recorder.register_counter(&key, &METADATA))
                })
                .collect::<HashMap<&'static str, Counter>>()
        };
        let events_received = by_event(EVENTS_RECEIVED, CLIENT_EVENTS, UNKNOWN_EVENT);
        let rate_limited = by_event(RATE_LIMITED, CLIENT_EVENTS, UNKNOWN_EVENT);
        let emits = by_event(EMITS, SERVER_EVENTS, CUSTOM_EVENT);
        let dropped = by_event(DROPPED_PACKETS, SERVER_EVENTS, CUSTOM_EVENT);
        let published_items = PUBLISH_KINDS
            .iter()
            .map(|kind| {
                let key = Key::from_parts(PUBLISHED_ITEMS, vec![Label::new("kind", *kind)]);
                (*kind, recorder.register_counter(&key, &METADATA))
            })
            .collect();
        let publish_requests = PUBLISH_ENDPOINTS
            .iter()
            .flat_map(|endpoint| PUBLISH_STATUSES.iter().map(move |status| (*endpoint, *status)))
            .map(|(endpoint, status)| {
                let labels = vec![
                    Label::new("endpoint", endpoint),
                    Label::new("status", status.to_string()),
                ];
                let key = Key::from_parts(PUBLISH_REQUESTS, labels);
                ((endpoint, status), recorder.register_counter(&key, &METADATA))
            })
            .collect();
        let plain = |name: &'static str| Key::from_name(name);
        Self {
            published_items,
            publish_requests,
            auth_failures: recorder.register_counter(&plain(AUTH_FAILURES), &METADATA),
            batch_symbols: recorder.register_histogram(&plain(BATCH_SYMBOLS), &METADATA),
            publish_to_emit: recorder.register_histogram(&plain(PUBLISH_TO_EMIT), &METADATA),
            batch_flush: recorder.register_histogram(&plain(BATCH_FLUSH), &METADATA),
            events_received,
            rate_limited,
            emits,
            dropped,
            events_total: AtomicU64::new(0),
            recorder,
            handle,
        }
    }

    /// `count` items accepted by the publish API, by kind (`price`, `trade`, `emit`).
    pub fn published(&self, kind: &'static str, count: u64) {
        match self.published_items.get(kind) {
            Some(counter) => counter.increment(count),
            None => self
                .counter(PUBLISHED_ITEMS, vec![Label::new("kind", kind)])
                .increment(count),
        }
    }

    /// One publish API request, by endpoint and answered status.
    pub fn publish_request(&self, endpoint: &'static str, status: u16) {
        match self.publish_requests.get(&(endpoint, status)) {
            Some(counter) => counter.increment(1),
            None => {
                let labels = vec![
                    Label::new("endpoint", endpoint),
                    Label::new("status", status.to_string()),
                ];
                self.counter(PUBLISH_REQUESTS, labels).increment(1);
            }
        }
    }

    fn known(event: &str) -> &str {
        if CLIENT_EVENTS.contains(&event) {
            event
        } else {
            UNKNOWN_EVENT
        }
    }

    pub fn event_received(&self, event: &str) {
        self.events_total.fetch_add(1, Ordering::Relaxed);
        self.events_received[Self::known(event)].increment(1);
    }

    /// Events received from clients since start, all names together.
    pub fn events_total(&self) -> u64 {
        self.events_total.load(Ordering::Relaxed)
    }

    pub fn rate_limited(&self, event: &str) {
        self.rate_limited[Self::known(event)].increment(1);
    }

    /// One emit operation (a broadcast to a room counts once) of `event`;
    /// events from the emit API are labelled `custom`.
    pub fn emitted(&self, event: &str) {
        self.emitted_n(event, 1);
    }

    pub fn emitted_n(&self, event: &str, count: u64) {
        self.emits[Self::server_label(event)].increment(count);
    }

    /// Packets of `event` that no socket queue took (a client that cannot keep up).
    pub fn dropped(&self, event: &str, count: u64) {
        self.dropped[Self::server_label(event)].increment(count);
    }

    fn server_label(event: &str) -> &'static str {
        SERVER_EVENTS
            .iter()
            .find(|known| **known == event)
            .copied()
            .unwrap_or(CUSTOM_EVENT)
    }

    /// Records one broadcast of `event`: counted as an emit; packets refused
    /// because a socket's queue was full (a client that cannot keep up) are
    /// counted in `roomcast_dropped_packets_total`; other failures are logged.
    pub fn record_broadcast(&self, event: &str, result: Result<(), BroadcastError>) {
        self.emitted(event);
        match result {
            Ok(()) => {}
            Err(BroadcastError::Socket(errors)) => {
                let full = errors
                    .iter()
                    .filter(|e| matches!(e, SocketError::InternalChannelFull))
                    .count();
                self.dropped(event, full as u64);
                tracing::debug!(
                    event,
                    sockets = errors.len(),
                    full,
                    "packet not queued for some sockets"
                );
            }
            Err(e) => tracing::warn!(event, error = %e, "broadcast failed"),
        }
    }

    /// A dynamic-label counter; label values must come from a bounded set.
    pub fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    pub fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    /// Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}
