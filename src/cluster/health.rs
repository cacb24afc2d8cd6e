//! Redis health as the node sees it: up/down (from the subscriber connection),
//! reconnects, publish errors; mirrored into metrics and /readyz.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics::{Counter, Gauge};

use crate::metrics::{Metrics, REDIS_DROPPED, REDIS_PUBLISH_ERRORS, REDIS_RECONNECTS, REDIS_UP};

pub struct RedisHealth {
    up: AtomicBool,
    /// Bumped on every reconnect, so what may have missed messages can catch up.
    reconnects_seen: tokio::sync::watch::Sender<u64>,
    up_gauge: Gauge,
    reconnects: Counter,
    publish_errors: Counter,
    dropped: Counter,
}

impl RedisHealth {
    pub fn new(metrics: &Arc<Metrics>) -> Self {
        let up_gauge = metrics.gauge(REDIS_UP, vec![]);
        up_gauge.set(0.0);
        Self {
            up: AtomicBool::new(false),
            reconnects_seen: tokio::sync::watch::Sender::new(0),
            up_gauge,
            reconnects: metrics.counter(REDIS_RECONNECTS, vec![]),
            publish_errors: metrics.counter(REDIS_PUBLISH_ERRORS, vec![]),
            dropped: metrics.counter(REDIS_DROPPED, vec![]),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Records the subscriber connection's state; returns whether it changed.
    pub fn set_up(&self, up: bool) -> bool {
        let was = self.up.swap(up, Ordering::AcqRel);
        self.up_gauge.set(if up { 1.0 } else { 0.0 });
        was != up
    }

    pub fn reconnected(&self) {
        self.reconnects.increment(1);
        self.reconnects_seen.send_modify(|n| *n += 1);
    }

    /// Changes after each reconnect of the subscriber connection (messages
    /// published while it was away were not received).
    pub fn watch_reconnects(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reconnects_seen.subscribe()
    }

    pub fn publish_failed(&self) {
        self.publish_errors.increment(1);
    }

    /// A received message was dropped because its consumer was too far behind.
    pub fn message_dropped(&self) {
        self.dropped.increment(1);
    }
}
