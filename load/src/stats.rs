//! Counters shared by the clients, the progress line and the summary.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

pub struct Stats {
    pub updates: AtomicU64,
    pub batches: AtomicU64,
    pub batch_items: AtomicU64,
    /// Clients whose connection ended before the run did.
    pub disconnects: AtomicU64,
    /// Subscribers per symbol index, known once clients are connected.
    pub subscribers: Vec<AtomicU64>,
    latencies: Mutex<Histogram<u64>>,
}

pub struct Summary {
    pub updates: u64,
    pub batches: u64,
    pub batch_items: u64,
    pub latency_ms: Value,
}

impl Stats {
    pub fn new(symbols: usize) -> Self {
        Self {
            updates: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batch_items: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            subscribers: (0..symbols).map(|_| AtomicU64::new(0)).collect(),
            latencies: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")),
        }
    }

    /// Records one publish→receive latency in microseconds (values over 60 s are clamped).
    pub fn record_latency_us(&self, latency: u64) {
        let _ = self.latencies.lock().unwrap().record(latency.min(60_000_000));
    }

    pub fn summary(&self) -> Summary {
        let h = self.latencies.lock().unwrap();
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            updates: self.updates.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batch_items: self.batch_items.load(Ordering::Relaxed),
            latency_ms: json!({
                "samples": h.len(),
                "p50": ms(h.value_at_quantile(0.50)), "p90": ms(h.value_at_quantile(0.90)),
                "p99": ms(h.value_at_quantile(0.99)), "p99.9": ms(h.value_at_quantile(0.999)),
                "max": ms(h.max()),
            }),
        }
    }
}

pub fn spawn_progress(stats: std::sync::Arc<Stats>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = stats.updates.load(Ordering::Relaxed);
            eprintln!(
                "progress: {} price:update/s, {} batches total",
                now - last,
                stats.batches.load(Ordering::Relaxed)
            );
            last = now;
        }
    })
}

/// Resident memory of a process, bytes (Linux).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// CPU seconds (user + system) this process has used (Linux).
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds_of("/proc/self/stat")
}

/// CPU seconds (user + system) process `pid` has used (Linux).
pub fn cpu_seconds(pid: u32) -> f64 {
    cpu_seconds_of(&format!("/proc/{pid}/stat"))
}

fn cpu_seconds_of(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}
