//! How busy this node's async runtime is, sampled a few times a second from
//! tokio's worker busy time. The publish API uses it to choose between
//! latency and throughput: on a quiet node a publish lets the deliveries go
//! out before its answer is written; on a busy one it answers at once, so the
//! deliveries of several publishes coalesce into fewer socket writes.
//! Exported as `roomcast_runtime_busy_ratio`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use metrics::Gauge;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock;

const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Above this share of worker time spent busy, the node counts as busy.
const BUSY_ABOVE_PERMILLE: u32 = 500;

#[derive(Default)]
pub struct RuntimeLoad {
    busy_permille: AtomicU32,
}

impl RuntimeLoad {
    /// Busy share of the runtime's workers over the last sample, 0.0 to 1.0.
    pub fn busy_ratio(&self) -> f64 {
        f64::from(self.busy_permille.load(Ordering::Relaxed)) / 1000.0
    }

    pub fn is_busy(&self) -> bool {
        self.busy_permille.load(Ordering::Relaxed) > BUSY_ABOVE_PERMILLE
    }

    fn record(&self, busy: Duration, wall: Duration, workers: usize) {
        let capacity = wall.as_secs_f64() * workers.max(1) as f64;
        let ratio = if capacity > 0.0 {
            (busy.as_secs_f64() / capacity).clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.busy_permille
            .store((ratio * 1000.0).round() as u32, Ordering::Relaxed);
    }

    /// Samples the current runtime until `shutdown` fires.
    pub fn spawn_sampler(self: Arc<Self>, gauge: Gauge, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let metrics = Handle::current().metrics();
            let workers = metrics.num_workers();
            let total_busy = || {
                (0..workers)
                    .map(|w| metrics.worker_total_busy_duration(w))
                    .sum::<Duration>()
            };
            let (mut last_busy, mut last_at) = (total_busy(), Instant::now());
            let mut ticker = clock::ticker(SAMPLE_EVERY);
            while clock::next_tick(&mut ticker, &shutdown).await {
                let (busy, at) = (total_busy(), Instant::now());
                self.record(busy.saturating_sub(last_busy), at - last_at, workers);
                gauge.set(self.busy_ratio());
                (last_busy, last_at) = (busy, at);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_is_per_worker_capacity() {
        let load = RuntimeLoad::default();
        load.record(Duration::from_millis(30), Duration::from_millis(100), 1);
        assert_eq!(load.busy_ratio(), 0.3);
        assert!(!load.is_busy());
        load.record(Duration::from_millis(120), Duration::from_millis(100), 2);
        assert_eq!(load.busy_ratio(), 0.6);
        assert!(load.is_busy());
        load.record(Duration::from_millis(500), Duration::from_millis(100), 1);
        assert_eq!(load.busy_ratio(), 1.0, "clamped");
        load.record(Duration::ZERO, Duration::ZERO, 1);
        assert_eq!(load.busy_ratio(), 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_spinning_task_makes_the_runtime_busy() {
        let load = Arc::new(RuntimeLoad::default());
        let stop = CancellationToken::new();
        let sampler = load.clone().spawn_sampler(Gauge::noop(), stop.clone());
        let spin_until = Instant::now() + Duration::from_millis(600);
        tokio::spawn(async move {
            // Work in 20 ms slices without yielding inside one, like a busy handler.
            while Instant::now() < spin_until {
                let slice_end = Instant::now() + Duration::from_millis(20);
                while Instant::now() < slice_end {
                    std::hint::spin_loop();
                }
                tokio::task::yield_now().await;
            }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !load.is_busy() {
            assert!(
                Instant::now() < deadline,
                "never seen busy: {}",
                load.busy_ratio()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        sampler.await.unwrap();
    }
}
