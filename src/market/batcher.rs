//! The `price:batch` task. Every socket gets a batch once per window with the
//! latest price of each subscribed symbol that changed, one serialization per
//! subscription group, nothing when nothing changed.
//!
//! Windows are staggered: each socket belongs to one of a few slices (fixed
//! for its lifetime), and slice `k` flushes at `k / slices` of the way through
//! the interval. Every socket still gets exactly one window per interval, but
//! the writes of a window are spread over it instead of landing in one burst
//! in front of the `price:update`s that arrive meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::groups::{GroupId, PriceGroups};
use crate::clock;

/// Slices are at least this far apart (and at most `MAX_SLICES` per window).
const MIN_SLICE_SPACING: Duration = Duration::from_millis(5);
const MAX_SLICES: usize = 10;

/// How many staggered slices a window of `interval` is split into.
pub fn slices_for(interval: Duration) -> usize {
    let fit = interval.as_micros() / MIN_SLICE_SPACING.as_micros();
    (fit as usize).clamp(1, MAX_SLICES)
}

/// Prices published lately: the latest per symbol, with the sequence number of
/// its last change, kept until every slice has flushed it.
#[derive(Default)]
pub struct PendingPrices {
    changes: Mutex<Changes>,
}

#[derive(Default)]
struct Changes {
    latest: HashMap<String, (f64, u64)>,
    sequence: u64,
}

impl PendingPrices {
    pub fn put(&self, symbol: &str, price: f64) {
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        changes.sequence += 1;
        let sequence = changes.sequence;
        match changes.latest.get_mut(symbol) {
            Some(slot) => *slot = (price, sequence),
            None => {
                changes.latest.insert(symbol.to_owned(), (price, sequence));
            }
        }
    }

    /// What changed since this slice last flushed (`seen[slice]`); marks it
    /// seen, and forgets changes that every slice has now seen.
    fn take_for(&self, seen: &mut [u64], slice: usize) -> BTreeMap<String, f64> {
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let since = seen[slice];
        let changed = changes
            .latest
            .iter()
            .filter(|(_, (_, sequence))| *sequence > since)
            .map(|(symbol, (price, _))| (symbol.clone(), *price))
            .collect();
        seen[slice] = changes.sequence;
        let everyone_saw = seen.iter().copied().min().unwrap_or(0);
        changes.latest.retain(|_, (_, sequence)| *sequence > everyone_saw);
        changed
    }
}

/// Where a window's batches go: `(group, [(symbol, price)])`.
pub trait BatchSink: Send + Sync + 'static {
    fn send(&self, group: GroupId, items: &[(&str, f64)]) -> impl Future<Output = ()> + Send;
    /// Called once per non-empty slice flush: changed symbols, time the flush took.
    fn window(&self, _changed_symbols: usize, _took: Duration) {}
}

/// Flushes one slice: what changed since its last flush goes to its groups.
async fn flush(
    pending: &PendingPrices,
    groups: &PriceGroups,
    seen: &mut [u64],
    slice: usize,
    sink: &impl BatchSink,
) {
    let started = Instant::now();
    let changed = pending.take_for(seen, slice);
    if changed.is_empty() {
        return;
    }
    let routes = groups.route(&changed, slice);
    for (group, items) in &routes {
        sink.send(*group, items).await;
        // Let price:update work that arrived meanwhile run between groups, so
        // it waits behind one group's writes rather than the whole slice's.
        tokio::task::yield_now().await;
    }
    sink.window(changed.len(), started.elapsed());
}

/// Spawns the batcher: slice `k` of `groups` flushes every `interval`, offset
/// by `k / slices` of it; every slice flushes once more when `shutdown` fires.
pub fn spawn(
    interval: Duration,
    pending: Arc<PendingPrices>,
    groups: Arc<PriceGroups>,
    sink: impl BatchSink,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let slices = groups.slices();
    tokio::spawn(async move {
        let mut seen = vec![0u64; slices];
        let mut ticker = clock::ticker(interval / slices as u32);
        let mut slice = 0;
        while clock::next_tick(&mut ticker, &shutdown).await {
            flush(&pending, &groups, &mut seen, slice, &sink).await;
            slice = (slice + 1) % slices;
        }
        for slice in 0..slices {
            flush(&pending, &groups, &mut seen, slice, &sink).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    struct ChannelSink(mpsc::UnboundedSender<(GroupId, Vec<(String, f64)>)>);

    impl BatchSink for ChannelSink {
        async fn send(&self, group: GroupId, items: &[(&str, f64)]) {
            let items = items.iter().map(|(s, p)| (s.to_string(), *p)).collect();
            self.0.send((group, items)).unwrap();
        }
    }

    type Batches = mpsc::UnboundedReceiver<(GroupId, Vec<(String, f64)>)>;

    struct Harness {
        pending: Arc<PendingPrices>,
        groups: Arc<PriceGroups>,
        shutdown: CancellationToken,
        batches: Batches,
        task: JoinHandle<()>,
    }

    fn setup() -> Harness {
        let pending = Arc::new(PendingPrices::default());
        let groups = Arc::new(PriceGroups::new(slices_for(Duration::from_millis(100))));
        let (tx, batches) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let task = spawn(
            Duration::from_millis(100),
            pending.clone(),
            groups.clone(),
            ChannelSink(tx),
            shutdown.clone(),
        );
        Harness {
            pending,
            groups,
            shutdown,
            batches,
            task,
        }
    }

    fn set(symbols: &[&str]) -> crate::market::rooms::RoomSet {
        symbols
            .iter()
            .map(|s| crate::market::rooms::MarketRoom::price(s))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_coalesces_to_the_latest_price_per_symbol() {
        let Harness {
            pending,
            groups,
            batches: mut rx,
            ..
        } = setup();
        let group = groups.reassign(None, 0, &set(&["BTC", "ETH"])).unwrap().0;
        tokio::time::sleep(Duration::from_millis(10)).await;
        pending.put("BTC", 1.0);
        pending.put("BTC", 2.0);
        pending.put("ETH", 10.0);
        pending.put("BTC", 3.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (got_group, items) = rx.try_recv().expect("one batch after the window");
        assert_eq!(got_group, group);
        assert_eq!(items, vec![("BTC".to_string(), 3.0), ("ETH".to_string(), 10.0)]);
        assert!(rx.try_recv().is_err(), "exactly one batch for the group");
    }

    #[tokio::test(start_paused = true)]
    async fn no_change_no_batch_and_unsubscribed_symbols_are_filtered() {
        let Harness {
            pending,
            groups,
            batches: mut rx,
            ..
        } = setup();
        let eth = groups.reassign(None, 0, &set(&["ETH"])).unwrap().0;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(rx.try_recv().is_err(), "idle windows send nothing");
        pending.put("BTC", 1.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err(), "nobody holds BTC");
        pending.put("BTC", 2.0);
        pending.put("ETH", 5.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(rx.try_recv().unwrap(), (eth, vec![("ETH".to_string(), 5.0)]));
    }

    #[tokio::test(start_paused = true)]
    async fn successive_windows_carry_only_new_changes_and_shutdown_flushes() {
        let Harness {
            pending,
            groups,
            shutdown,
            batches: mut rx,
            task,
        } = setup();
        groups.reassign(None, 0, &set(&["A", "B"])).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        pending.put("A", 1.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(rx.try_recv().unwrap().1, vec![("A".to_string(), 1.0)]);
        pending.put("B", 2.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(rx.try_recv().unwrap().1, vec![("B".to_string(), 2.0)]);
        pending.put("A", 3.0);
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(
            rx.try_recv().unwrap().1,
            vec![("A".to_string(), 3.0)],
            "flushed at shutdown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slices_flush_at_their_own_offset_once_per_window() {
        let Harness {
            pending,
            groups,
            batches: mut rx,
            ..
        } = setup();
        assert_eq!(groups.slices(), 10, "100 ms splits into 10 slices 10 ms apart");
        let early = groups.reassign(None, 0, &set(&["BTC"])).unwrap().0;
        let late = groups.reassign(None, 5, &set(&["BTC"])).unwrap().0;
        tokio::time::sleep(Duration::from_millis(1)).await;
        pending.put("BTC", 1.0);
        tokio::time::sleep(Duration::from_millis(14)).await;
        assert_eq!(rx.try_recv().unwrap(), (early, vec![("BTC".to_string(), 1.0)]));
        assert!(rx.try_recv().is_err(), "slice 5 has not flushed yet at 15 ms");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(rx.try_recv().unwrap(), (late, vec![("BTC".to_string(), 1.0)]));
        assert_eq!(
            pending.changes.lock().unwrap().latest.len(),
            1,
            "slices 6..9 have not seen it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            pending.changes.lock().unwrap().latest.is_empty(),
            "every slice saw it: forgotten"
        );
        pending.put("BTC", 2.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got,
            vec![
                (late, vec![("BTC".to_string(), 2.0)]),
                (early, vec![("BTC".to_string(), 2.0)])
            ],
            "put at 115 ms: slice 5 at 160 ms, slice 0 at 210 ms, then nothing"
        );
    }
}
