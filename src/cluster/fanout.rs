//! Node-to-node delivery of published items. The node that receives a publish
//! (HTTP API) delivers to its own sockets at once and queues one envelope per
//! request for `roomcast:fanout`; every other node delivers the items to its
//! own sockets and its own batcher. So each socket gets each item once, and a
//! price is in every node's `price:batch`.
//!
//! Envelopes go out from one task, in order, so a publish request never waits
//! for Redis; the queue is bounded, and what does not fit is dropped and
//! counted (`roomcast_fanout_dropped_total`) rather than growing memory.

use metrics::Counter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::driver::ResilientDriver;

pub const FANOUT_CHANNEL: &str = "roomcast:fanout";

/// Envelopes waiting for Redis before new ones are dropped.
const QUEUE: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Prices,
    Trades,
    Emits,
    Chat,
}

/// An envelope as received (items still to be validated).
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// The sending node's process id; it skips its own envelopes.
    pub origin: String,
    pub kind: Kind,
    /// The items, shaped like the matching publish body (array form).
    pub items: Value,
}

/// An envelope as sent: the items are serialized straight from the caller's values.
#[derive(Serialize)]
struct Outgoing<'a, T: ?Sized> {
    origin: &'a str,
    kind: Kind,
    items: &'a T,
}

/// Queues envelopes from this node for the other nodes.
#[derive(Clone)]
pub struct Fanout {
    queue: mpsc::Sender<Vec<u8>>,
    origin: String,
    dropped: Counter,
}

impl Fanout {
    /// Starts the sender task; it drains what is queued when `shutdown` fires.
    pub fn spawn(
        driver: ResilientDriver,
        origin: String,
        dropped: Counter,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (queue, mut envelopes) = mpsc::channel::<Vec<u8>>(QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let envelope = tokio::select! {
                    e = envelopes.recv() => e,
                    _ = shutdown.cancelled() => { envelopes.close(); envelopes.recv().await }
                };
                let Some(envelope) = envelope else { return };
                let _ = driver.publish(FANOUT_CHANNEL.to_owned(), envelope).await;
            }
        });
        (
            Self {
                queue,
                origin,
                dropped,
            },
            task,
        )
    }

    pub fn send<T: Serialize + ?Sized>(&self, kind: Kind, items: &T) {
        let envelope = Outgoing {
            origin: &self.origin,
            kind,
            items,
        };
        match serde_json::to_vec(&envelope) {
            Ok(bytes) => {
                if self.queue.try_send(bytes).is_err() {
                    self.dropped.increment(1);
                    tracing::warn!("fanout queue full: envelope not sent to other nodes");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode fanout envelope"),
        }
    }
}
