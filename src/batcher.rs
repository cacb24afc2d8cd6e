//! The `price:batch` task: every window, the latest price per symbol that
//! changed is sent to the sockets subscribed to it, one serialization per
//! subscription group, nothing when nothing changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::market::groups::{GroupId, PriceGroups};

/// Prices published since the last window: the latest per symbol.
#[derive(Default)]
pub struct PendingPrices {
    latest: Mutex<HashMap<String, f64>>,
}

impl PendingPrices {
    pub fn put(&self, symbol: &str, price: f64) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        match latest.get_mut(symbol) {
            Some(slot) => *slot = price,
            None => {
                latest.insert(symbol.to_owned(), price);
            }
        }
    }

    fn take(&self) -> BTreeMap<String, f64> {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *latest).into_iter().collect()
    }
}

/// Where a window's batches go: `(group, [(symbol, price)])`.
pub trait BatchSink: Send + Sync + 'static {
    fn send(&self, group: GroupId, items: &[(&str, f64)]) -> impl Future<Output = ()> + Send;
    /// Called once per non-empty window: changed symbols, time the window took.
    fn window(&self, _changed_symbols: usize, _took: Duration) {}
}

/// Runs one window: takes what is pending and sends each group its part.
async fn flush(pending: &PendingPrices, groups: &PriceGroups, sink: &impl BatchSink) {
    let started = Instant::now();
    let changed = pending.take();
    if changed.is_empty() {
        return;
    }
    let routes = groups.route(&changed);
    for (group, items) in &routes {
        sink.send(*group, items).await;
        // Let price:update work that arrived meanwhile run between groups, so
        // it waits behind one group's writes rather than the whole window's.
        tokio::task::yield_now().await;
    }
    sink.window(changed.len(), started.elapsed());
}

/// Spawns the batcher; it flushes every `interval`, and once more when `shutdown` fires.
pub fn spawn(
    interval: Duration,
    pending: Arc<PendingPrices>,
    groups: Arc<PriceGroups>,
    sink: impl BatchSink,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = clock::ticker(interval);
        while clock::next_tick(&mut ticker, &shutdown).await {
            flush(&pending, &groups, &sink).await;
        }
        flush(&pending, &groups, &sink).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
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
        let groups = Arc::new(PriceGroups::default());
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

    fn set(symbols: &[&str]) -> BTreeSet<String> {
        symbols.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_coalesces_to_the_latest_price_per_symbol() {
        let Harness {
            pending,
            groups,
            batches: mut rx,
            ..
        } = setup();
        let group = groups.reassign(None, &set(&["BTC", "ETH"])).unwrap();
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
        let eth = groups.reassign(None, &set(&["ETH"])).unwrap();
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
        groups.reassign(None, &set(&["A", "B"])).unwrap();
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
}
