//! Redis channels read by every node (CONTRACT §5): the fanout from other
//! nodes, `roomcast:prices`, `roomcast:trades`, `roomcast:emit` (handled like
//! the POST bodies), the bridged channels of `--redis-channels`, and the
//! channels of `@socket.io/redis-emitter` (`socket.io#/#*`, read in
//! [`super::emitter`]). What
//! arrives is handed to a [`Dispatcher`], which delivers to this node's clients;
//! this module knows nothing of what the items mean.

use std::str::FromStr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use metrics::Label;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::emitter::{self, BROADCAST_PATTERN, Broadcast, REQUEST_CHANNEL, Request};
use super::fanout::{FANOUT_CHANNEL, Kind, envelopes, shard_channels};
use super::redis::{Messages, RedisPubSub};
use crate::metrics::{Metrics, REDIS_MESSAGES};

pub const PRICES_CHANNEL: &str = "roomcast:prices";
pub const TRADES_CHANNEL: &str = "roomcast:trades";
pub const EMIT_CHANNEL: &str = "roomcast:emit";

/// Messages buffered per channel before newer ones are dropped (and counted).
const CHANNEL_BUFFER: usize = 8192;

/// One `--redis-channels` entry: `channel` (to everyone) or `channel=room`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub channel: String,
    pub room: Option<String>,
}

impl FromStr for Bridge {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let (channel, room) = match entry.split_once('=') {
            Some((channel, room)) => (channel.trim(), Some(room.trim().to_owned())),
            None => (entry, None),
        };
        if channel.is_empty() || channel.contains(char::is_whitespace) {
            return Err(format!("{entry:?} is not `channel` or `channel=room`"));
        }
        if room.as_deref() == Some("") {
            return Err(format!("{entry:?} names an empty room"));
        }
        if channel.starts_with("roomcast:") || channel.starts_with("socket.io") {
            return Err(format!("{channel:?} is reserved by roomcast"));
        }
        Ok(Bridge {
            channel: channel.to_owned(),
            room,
        })
    }
}

/// Something that arrived for this node's clients.
#[derive(Debug)]
pub enum Arrival<'a> {
    /// Items of one kind: an envelope from another node (or a `recorded`
    /// one from any node).
    Items { kind: Kind, items: &'a [u8] },
    /// A service's message on `roomcast:prices` / `trades` / `emit` (a
    /// publish body), received by every node.
    Published { kind: Kind, body: &'a [u8] },
    /// A message on a bridged channel.
    Bridged { bridge: &'a Bridge, payload: &'a [u8] },
    /// A broadcast of `@socket.io/redis-emitter`.
    Emitter(Broadcast),
    /// A request of `@socket.io/redis-emitter` (join, leave, disconnect).
    EmitterRequest(Request),
}

/// Delivers arrivals to this node's clients.
pub trait Dispatcher: Send + Sync + 'static {
    /// Delivers `arrival`; an error says why it was not valid.
    fn dispatch<'a>(&'a self, arrival: Arrival<'a>) -> BoxFuture<'a, Result<(), String>>;
}

/// Reads every channel and hands what arrives to the dispatcher.
pub struct Consumers {
    pub pubsub: RedisPubSub,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub metrics: Arc<Metrics>,
    /// This node's id in envelopes; its own envelopes are skipped.
    pub origin: String,
    pub bridges: Vec<Bridge>,
}

impl Consumers {
    /// Subscribes to every channel and spawns one reader task per channel.
    pub async fn spawn(self, shutdown: CancellationToken) -> Result<Vec<JoinHandle<()>>, String> {
        let this = Arc::new(self);
        let mut channels: Vec<String> = [FANOUT_CHANNEL, PRICES_CHANNEL, TRADES_CHANNEL, EMIT_CHANNEL]
            .map(String::from)
            .to_vec();
        channels.extend(this.bridges.iter().map(|b| b.channel.clone()));
        let mut tasks = Vec::new();
        // The emitter's broadcasts and requests share one queue and one
        // reader, so `socketsJoin` then `to(room).emit` keep their order.
        let emitter = this
            .pubsub
            .subscribe_all(&[REQUEST_CHANNEL], &[BROADCAST_PATTERN], CHANNEL_BUFFER)
            .await
            .map_err(|e| format!("cannot subscribe to {BROADCAST_PATTERN}: {e}"))?;
        tasks.push(tokio::spawn(this.clone().read(
            BROADCAST_PATTERN.to_owned(),
            emitter,
            shutdown.clone(),
        )));
        // On a cluster, other nodes' envelopes arrive on the fanout's shard
        // channels (one queue; each sender uses one shard, so its order holds).
        if this.pubsub.is_cluster() {
            let shards = shard_channels();
            let shards: Vec<&str> = shards.iter().map(String::as_str).collect();
            let messages = this
                .pubsub
                .subscribe_sharded(&shards, CHANNEL_BUFFER)
                .await
                .map_err(|e| format!("cannot subscribe to the fanout's shard channels: {e}"))?;
            tasks.push(tokio::spawn(this.clone().read(
                FANOUT_CHANNEL.to_owned(),
                messages,
                shutdown.clone(),
            )));
        }
        for channel in channels {
            let messages = this
                .pubsub
                .subscribe(&channel, CHANNEL_BUFFER)
                .await
                .map_err(|e| format!("cannot subscribe to {channel}: {e}"))?;
            tasks.push(tokio::spawn(this.clone().read(
                channel,
                messages,
                shutdown.clone(),
            )));
        }
        Ok(tasks)
    }

    async fn read(self: Arc<Self>, channel: String, mut messages: Messages, stop: CancellationToken) {
        let counted = |outcome: &'static str| {
            let labels = vec![
                Label::new("channel", channel.clone()),
                Label::new("result", outcome),
            ];
            self.metrics.counter(REDIS_MESSAGES, labels)
        };
        let (ok, invalid) = (counted("ok"), counted("invalid"));
        loop {
            let payload = tokio::select! {
                payload = messages.recv() => match payload { Some(p) => p, None => return },
                _ = stop.cancelled() => return,
            };
            match self.handle(&channel, &payload).await {
                Ok(()) if channel == FANOUT_CHANNEL => {}
                Ok(()) => ok.increment(1),
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "invalid message on redis channel");
                    invalid.increment(1);
                }
            }
        }
    }

    async fn handle(&self, channel: &str, payload: &[u8]) -> Result<(), String> {
        let kind = match channel {
            FANOUT_CHANNEL => return self.handle_envelopes(payload).await,
            PRICES_CHANNEL => Kind::Prices,
            TRADES_CHANNEL => Kind::Trades,
            EMIT_CHANNEL => Kind::Emits,
            // Requests are JSON objects, broadcasts msgpack arrays.
            BROADCAST_PATTERN if emitter::is_request(payload) => {
                let request = emitter::decode_request(payload)?;
                return self.dispatcher.dispatch(Arrival::EmitterRequest(request)).await;
            }
            BROADCAST_PATTERN => {
                return match emitter::decode_broadcast(payload)? {
                    Some(broadcast) => self.dispatcher.dispatch(Arrival::Emitter(broadcast)).await,
                    None => Ok(()),
                };
            }
            bridged => {
                let Some(bridge) = self.bridges.iter().find(|b| b.channel == bridged) else {
                    return Ok(());
                };
                return self
                    .dispatcher
                    .dispatch(Arrival::Bridged { bridge, payload })
                    .await;
            }
        };
        self.dispatcher
            .dispatch(Arrival::Published { kind, body: payload })
            .await
    }

    /// Every envelope is delivered even if another line is malformed.
    async fn handle_envelopes(&self, payload: &[u8]) -> Result<(), String> {
        let mut first_error = None;
        for envelope in envelopes(payload) {
            let result = match envelope {
                Ok(envelope) if envelope.origin == self.origin => Ok(()),
                Ok(envelope) => {
                    let items = envelope.items.get().as_bytes();
                    let arrival = Arrival::Items {
                        kind: envelope.kind,
                        items,
                    };
                    self.dispatcher.dispatch(arrival).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_parse_with_and_without_rooms() {
        assert_eq!(
            "community_monitor".parse::<Bridge>().unwrap(),
            Bridge {
                channel: "community_monitor".into(),
                room: None
            }
        );
        assert_eq!(
            " scan_monitor = admin ".parse::<Bridge>().unwrap(),
            Bridge {
                channel: "scan_monitor".into(),
                room: Some("admin".into())
            }
        );
        assert!("a b".parse::<Bridge>().is_err());
        assert!("x=".parse::<Bridge>().is_err());
        assert!(
            "roomcast:prices"
                .parse::<Bridge>()
                .unwrap_err()
                .contains("reserved")
        );
    }
}
