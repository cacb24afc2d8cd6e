//! Figures of this process for the admin `metrics` event and /metrics:
//! resident memory and CPU use, read from Linux's /proc (zero elsewhere).

use std::time::Instant;

/// Clock ticks per second of /proc/self/stat times (USER_HZ; 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Resident set size in bytes.
pub fn resident_memory_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// User + system CPU time since the process started, in seconds.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_SEC
}

/// CPU use between successive samples, in percent of one core.
pub struct CpuSampler {
    last_cpu: f64,
    last_at: Instant,
}

impl CpuSampler {
    pub fn new() -> Self {
        Self {
            last_cpu: cpu_seconds(),
            last_at: Instant::now(),
        }
    }

    pub fn sample(&mut self) -> f64 {
        let (cpu, now) = (cpu_seconds(), Instant::now());
        let wall = now.duration_since(self.last_at).as_secs_f64();
        let percent = if wall > 0.0 {
            (cpu - self.last_cpu) / wall * 100.0
        } else {
            0.0
        };
        (self.last_cpu, self.last_at) = (cpu, now);
        (percent.max(0.0) * 10.0).round() / 10.0
    }
}

impl Default for CpuSampler {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_real_figures() {
        assert!(
            resident_memory_bytes() > 1024 * 1024,
            "a test process holds more than 1 MiB"
        );
        let mut sampler = CpuSampler::new();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 200 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(sampler.sample() > 10.0, "a busy loop uses CPU");
    }
}
