//! Wall-clock time as the contract spells it: milliseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn unix_secs() -> u64 {
    unix_millis() / 1000
}

/// A ticker for background tasks: first tick one `period` from now; a late
/// tick delays the next rather than bursting.
pub fn ticker(period: std::time::Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// Waits for the next tick, or for `shutdown`: `true` on a tick, `false` once shut down.
pub async fn next_tick(
    ticker: &mut tokio::time::Interval,
    shutdown: &tokio_util::sync::CancellationToken,
) -> bool {
    tokio::select! {
        _ = ticker.tick() => true,
        _ = shutdown.cancelled() => false,
    }
}
