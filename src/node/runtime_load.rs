//! How busy this node is, sampled a few times a second: its async runtime
//! (tokio's worker busy time, exported as `roomcast_runtime_busy_ratio`) and
//! the CPUs it may run on (Linux /proc/stat, whoever keeps them busy: other
//! processes, e.g. other nodes on the same cores, count too). The publish API
//! uses it to choose between latency and throughput: on a quiet node a
//! publish lets the deliveries go out before its answer is written; on a busy
//! one it answers at once, so the deliveries of several publishes coalesce
//! into fewer socket writes.

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
    cpus_busy_permille: AtomicU32,
}

impl RuntimeLoad {
    /// Busy share of the runtime's workers over the last sample, 0.0 to 1.0.
    pub fn busy_ratio(&self) -> f64 {
        f64::from(self.busy_permille.load(Ordering::Relaxed)) / 1000.0
    }

    /// The runtime, or the CPUs this process may run on, are over half busy.
    pub fn is_busy(&self) -> bool {
        self.busy_permille.load(Ordering::Relaxed) > BUSY_ABOVE_PERMILLE
            || self.cpus_busy_permille.load(Ordering::Relaxed) > BUSY_ABOVE_PERMILLE
    }

    fn record(&self, busy: Duration, wall: Duration, workers: usize) {
        let capacity = wall.as_secs_f64() * workers.max(1) as f64;
        let ratio = if capacity > 0.0 {
            busy.as_secs_f64() / capacity
        } else {
            0.0
        };
        self.busy_permille.store(permille(ratio), Ordering::Relaxed);
    }

    fn record_cpus(&self, ratio: f64) {
        self.cpus_busy_permille.store(permille(ratio), Ordering::Relaxed);
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
            let cpus = allowed_cpus();
            let mut last_cpu_times = cpu_times(&cpus);
            let mut ticker = clock::ticker(SAMPLE_EVERY);
            while clock::next_tick(&mut ticker, &shutdown).await {
                let (busy, at) = (total_busy(), Instant::now());
                self.record(busy.saturating_sub(last_busy), at - last_at, workers);
                gauge.set(self.busy_ratio());
                (last_busy, last_at) = (busy, at);
                let cpu_times = cpu_times(&cpus);
                if let (Some(now), Some(before)) = (cpu_times, last_cpu_times) {
                    self.record_cpus(now.busy_since(before));
                }
                last_cpu_times = cpu_times;
            }
        })
    }
}

fn permille(ratio: f64) -> u32 {
    (ratio.clamp(0.0, 1.0) * 1000.0).round() as u32
}

/// Busy and total clock ticks of some CPUs, from /proc/stat.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTimes {
    busy: u64,
    total: u64,
}

impl CpuTimes {
    fn busy_since(self, before: CpuTimes) -> f64 {
        let total = self.total.saturating_sub(before.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(before.busy) as f64 / total as f64
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list` of /proc/self/status).
fn allowed_cpus() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                .map(parse_cpu_list)
        })
        .unwrap_or_default()
}

/// `0-3,6,8-9` → [0, 1, 2, 3, 6, 8, 9].
fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.splitn(2, '-').map(|n| n.trim().parse::<usize>());
        match (ends.next(), ends.next()) {
            (Some(Ok(first)), None) => cpus.push(first),
            (Some(Ok(first)), Some(Ok(last))) if first <= last => cpus.extend(first..=last),
            _ => {}
        }
    }
    cpus
}

fn cpu_times(cpus: &[usize]) -> Option<CpuTimes> {
    if cpus.is_empty() {
        return None;
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    Some(sum_cpu_times(&stat, cpus))
}

/// Sums the `cpuN` lines of /proc/stat for `cpus`; idle and iowait are not busy.
fn sum_cpu_times(stat: &str, cpus: &[usize]) -> CpuTimes {
    let mut times = CpuTimes { busy: 0, total: 0 };
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields.next().and_then(|name| name.strip_prefix("cpu")) else {
            continue;
        };
        if !cpu.parse::<usize>().is_ok_and(|n| cpus.contains(&n)) {
            continue;
        }
        let ticks: Vec<u64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
        // user nice system idle iowait irq softirq steal (guest time is within user).
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        times.busy += total.saturating_sub(idle);
        times.total += total;
    }
    times
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

    #[test]
    fn cpu_lists_and_proc_stat_lines_parse() {
        assert_eq!(parse_cpu_list("0-3,6,8-9\n"), vec![0, 1, 2, 3, 6, 8, 9]);
        assert_eq!(parse_cpu_list("1"), vec![1]);
        assert!(parse_cpu_list("x").is_empty());
        let stat = "cpu  30 0 10 60 0 0 0 0 0 0\n\
                    cpu0 20 0 5 20 5 0 0 0 0 0\n\
                    cpu1 10 0 5 40 0 0 0 0 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(sum_cpu_times(stat, &[0]), CpuTimes { busy: 25, total: 50 });
        assert_eq!(sum_cpu_times(stat, &[0, 1]), CpuTimes { busy: 40, total: 105 });
        let later = CpuTimes { busy: 35, total: 70 };
        assert_eq!(later.busy_since(CpuTimes { busy: 25, total: 50 }), 0.5);
        let load = RuntimeLoad::default();
        load.record_cpus(0.8);
        assert!(load.is_busy(), "busy CPUs count even with an idle runtime");
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
