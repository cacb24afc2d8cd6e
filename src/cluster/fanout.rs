//! The one path across nodes. Whatever one node must tell the others (published
//! items, chat output, admin metrics) is an envelope of one [`Kind`]: the node
//! that has it delivers to its own clients at once and queues one envelope for
//! `roomcast:fanout`; every other node hands it to its local delivery (see
//! `consumers`). So each socket gets each item once, and a price is in every
//! node's `price:batch`. A new cross-node feature is one more `Kind` and one
//! more local delivery.
//!
//! Envelopes go out from one task, in order, so a publish request never waits
//! for Redis; the queue is bounded, and what does not fit is dropped and
//! counted (`roomcast_fanout_dropped_total`) rather than growing memory. While
//! Redis is down, envelopes are not sent (counted in
//! `roomcast_redis_publish_errors_total`); local delivery goes on.
//!
//! Envelopes that queue up while a PUBLISH is in flight go out together in
//! the next message, one JSON envelope per line: under load each Redis round
//! trip and each wake-up of the other nodes carries many publishes, not one.
//! (Compact JSON never holds a raw newline, so lines split unambiguously.)

use metrics::Counter;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cluster_pubsub::SHARD_PREFIX;
use super::redis::RedisPubSub;

pub const FANOUT_CHANNEL: &str = "roomcast:fanout";

/// On a Redis Cluster, the fanout is split over this many shard channels,
/// `roomcast:fanout:{0}` .. `{15}` (SPUBLISH/SSUBSCRIBE): each node publishes
/// on one of them (picked from its id, so its envelopes keep their order) and
/// every node subscribes to all.
pub const FANOUT_SHARDS: usize = 16;

/// The shard channels of the fanout on a Redis Cluster.
pub fn shard_channels() -> Vec<String> {
    (0..FANOUT_SHARDS)
        .map(|n| format!("{SHARD_PREFIX}{n}}}"))
        .collect()
}

/// The channel this node publishes its envelopes on.
fn channel_of(pubsub: &RedisPubSub, origin: &str) -> String {
    if !pubsub.is_cluster() {
        return FANOUT_CHANNEL.to_owned();
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(origin, &mut hasher);
    let n = std::hash::Hasher::finish(&hasher) as usize % FANOUT_SHARDS;
    format!("{SHARD_PREFIX}{n}}}")
}

/// Envelopes waiting for Redis before new ones are dropped.
const QUEUE: usize = 16_384;
/// Envelopes that must not be lost (chat) waiting for Redis, before new
/// ones are dropped; and how long one is retried.
const RELIABLE_QUEUE: usize = 16_384;
const RELIABLE_MAX_AGE: Duration = Duration::from_secs(120);
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Most envelopes, and bytes, joined into one Redis message.
const MESSAGE_MAX_ENVELOPES: usize = 256;
const MESSAGE_MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Prices,
    Trades,
    Emits,
    Chat,
    /// A node's `metrics` figures for the `admin` room.
    Metrics,
    /// Users to send away (disconnect everywhere).
    Disconnect,
    /// Socket.IO Admin UI events for every node's `/admin` sockets.
    AdminEvents,
    /// What a node with Admin UI sockets asks of every node (watch, list, command).
    AdminRequest,
    /// A node's sockets, answering an `AdminRequest` list.
    AdminReply,
    /// Recoverable events with their offsets, published by Redis itself (see
    /// `recovery::redis`); origin `*`, so every node delivers them.
    Recorded,
}

/// An envelope as received; the items stay unparsed until needed (a node
/// skips its own envelopes without parsing them).
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// The sending node's process id; it skips its own envelopes.
    pub origin: &'a str,
    pub kind: Kind,
    /// The items, shaped like the matching publish body (array form).
    #[serde(borrow)]
    pub items: &'a RawValue,
}

/// The envelopes of one `roomcast:fanout` message (one per line).
pub fn envelopes(message: &[u8]) -> impl Iterator<Item = Result<Envelope<'_>, String>> {
    message
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).map_err(|e| e.to_string()))
}

/// Joins what is queued after `first` (up to the message limits) into one message.
fn join_queued(first: Vec<u8>, queued: &mut mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    let mut message = first;
    for _ in 1..MESSAGE_MAX_ENVELOPES {
        if message.len() >= MESSAGE_MAX_BYTES {
            break;
        }
        let Ok(next) = queued.try_recv() else { break };
        message.push(b'\n');
        message.extend_from_slice(&next);
    }
    message
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
    /// Envelopes retried until Redis takes them (see [`Fanout::send_reliable`]).
    reliable: mpsc::Sender<(Instant, Vec<u8>)>,
    origin: String,
    dropped: Counter,
}

impl Fanout {
    /// Starts the sender task; it drains what is queued when `shutdown` fires.
    pub fn spawn(
        pubsub: RedisPubSub,
        origin: String,
        dropped: Counter,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (queue, mut envelopes) = mpsc::channel::<Vec<u8>>(QUEUE);
        let channel = channel_of(&pubsub, &origin);
        let (reliable, retried) = mpsc::channel(RELIABLE_QUEUE);
        let reliable_task = tokio::spawn(send_reliably(
            pubsub.clone(),
            channel.clone(),
            retried,
            dropped.clone(),
            shutdown.clone(),
        ));
        let task = tokio::spawn(async move {
            loop {
                let envelope = tokio::select! {
                    e = envelopes.recv() => e,
                    _ = shutdown.cancelled() => { envelopes.close(); envelopes.recv().await }
                };
                let Some(envelope) = envelope else { return };
                let message = join_queued(envelope, &mut envelopes);
                if let Err(e) = pubsub.publish(&channel, message).await {
                    tracing::debug!(error = %e, "fanout message not sent to other nodes");
                }
            }
        });
        let task = tokio::spawn(async move {
            let _ = task.await;
            let _ = reliable_task.await;
        });
        (
            Self {
                queue,
                reliable,
                origin,
                dropped,
            },
            task,
        )
    }

    /// Like [`Fanout::send`], for what must reach the other nodes (chat): a
    /// publish Redis does not take is retried, in order, with back-off, for up
    /// to two minutes (an outage, a reconnect in progress), then dropped and
    /// counted. Nodes that were cut off themselves catch up from the store.
    pub fn send_reliable<T: Serialize + ?Sized>(&self, kind: Kind, items: &T) {
        if let Some(bytes) = self.encode(kind, items)
            && self.reliable.try_send((Instant::now(), bytes)).is_err()
        {
            self.dropped.increment(1);
            tracing::warn!("reliable fanout queue full: envelope not sent to other nodes");
        }
    }

    fn encode<T: Serialize + ?Sized>(&self, kind: Kind, items: &T) -> Option<Vec<u8>> {
        let envelope = Outgoing {
            origin: &self.origin,
            kind,
            items,
        };
        serde_json::to_vec(&envelope)
            .map_err(|e| tracing::error!(error = %e, "could not encode fanout envelope"))
            .ok()
    }

    pub fn send<T: Serialize + ?Sized>(&self, kind: Kind, items: &T) {
        if let Some(bytes) = self.encode(kind, items)
            && self.queue.try_send(bytes).is_err()
        {
            self.dropped.increment(1);
            tracing::warn!("fanout queue full: envelope not sent to other nodes");
        }
    }
}

/// Publishes each reliable envelope, in order, until Redis takes it or it is
/// too old; on shutdown, what is left gets one more try.
async fn send_reliably(
    pubsub: RedisPubSub,
    channel: String,
    mut queued: mpsc::Receiver<(Instant, Vec<u8>)>,
    dropped: Counter,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            next = queued.recv() => next,
            _ = shutdown.cancelled() => { queued.close(); queued.recv().await }
        };
        let Some((queued_at, envelope)) = next else { return };
        let mut wait = RETRY_FIRST;
        while pubsub.publish(&channel, envelope.clone()).await.is_err() {
            if queued_at.elapsed() > RELIABLE_MAX_AGE || shutdown.is_cancelled() {
                dropped.increment(1);
                tracing::warn!("chat envelope not sent to other nodes: Redis unreachable for too long");
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(origin: &str, items: &serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&Outgoing {
            origin,
            kind: Kind::Prices,
            items,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn queued_envelopes_join_into_one_message_and_split_back_in_order() {
        let (tx, mut rx) = mpsc::channel(16);
        let text = serde_json::json!([{"symbol": "A", "price": 1, "note": "line\nbreak"}]);
        for i in 1..4 {
            tx.send(encoded(&format!("n{i}"), &text)).await.unwrap();
        }
        let first = rx.recv().await.unwrap();
        let message = join_queued(first, &mut rx);
        let got: Vec<Envelope> = envelopes(&message).collect::<Result<_, _>>().unwrap();
        let origins: Vec<&str> = got.iter().map(|e| e.origin).collect();
        assert_eq!(origins, ["n1", "n2", "n3"]);
        let items: serde_json::Value = serde_json::from_str(got[2].items.get()).unwrap();
        assert_eq!(items, text, "a newline inside a string survives");
        assert!(rx.try_recv().is_err(), "everything queued went into the message");
    }

    #[tokio::test]
    async fn a_message_stops_at_its_size_limit() {
        let (tx, mut rx) = mpsc::channel(16);
        let big = serde_json::json!(["x".repeat(MESSAGE_MAX_BYTES / 2)]);
        for _ in 0..4 {
            tx.send(encoded("n1", &big)).await.unwrap();
        }
        let first = rx.recv().await.unwrap();
        assert_eq!(envelopes(&join_queued(first, &mut rx)).count(), 2);
        let next = rx.recv().await.unwrap();
        assert_eq!(envelopes(&join_queued(next, &mut rx)).count(), 2);
    }

    #[test]
    fn a_malformed_line_is_an_error_of_its_own() {
        let good = encoded("n1", &serde_json::json!([]));
        let mut message = good.clone();
        message.extend_from_slice(b"\n{oops\n");
        message.extend_from_slice(&good);
        let results: Vec<bool> = envelopes(&message).map(|e| e.is_ok()).collect();
        assert_eq!(results, [true, false, true]);
    }
}
