//! Redis channels read by every node (CONTRACT §5), each node delivering to
//! its own sockets: the fanout from other nodes, `roomcast:prices`,
//! `roomcast:trades`, `roomcast:emit` (handled like the POST bodies), and the
//! bridged channels of `--redis-channels`.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use metrics::Label;
use serde::Serialize;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::driver::ResilientDriver;
use super::fanout::{Envelope, FANOUT_CHANNEL, Kind, envelopes};
use crate::chat::ChatOut;
use crate::chat::bus::ChatBus;
use crate::market::feed::Feed;
use crate::market::publish::{parse_emits, parse_prices, parse_trades};
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

pub fn parse_bridges(entries: &[String]) -> Result<Vec<Bridge>, String> {
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (channel, room) = match entry.split_once('=') {
                Some((channel, room)) => (channel.trim(), Some(room.trim().to_owned())),
                None => (entry, None),
            };
            if channel.is_empty() || channel.contains(char::is_whitespace) {
                return Err(format!(
                    "--redis-channels: {entry:?} is not `channel` or `channel=room`"
                ));
            }
            if room.as_deref() == Some("") {
                return Err(format!("--redis-channels: {entry:?} names an empty room"));
            }
            if channel.starts_with("roomcast:") || channel.starts_with("socket.io") {
                return Err(format!("--redis-channels: {channel:?} is reserved by roomcast"));
            }
            Ok(Bridge {
                channel: channel.to_owned(),
                room,
            })
        })
        .collect()
}

/// `{ type, data, timestamp }`: what clients receive from a bridged channel.
#[derive(Serialize)]
struct Bridged<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: Value,
    timestamp: u64,
}

pub struct Consumers<A: Adapter> {
    pub driver: ResilientDriver,
    pub feed: Feed<A>,
    pub chat: Arc<ChatBus<A>>,
    pub io: SocketIo<A>,
    pub metrics: Arc<Metrics>,
    pub origin: String,
    pub bridges: Vec<Bridge>,
}

impl<A: Adapter> Consumers<A> {
    /// Subscribes to every channel and spawns one reader task per channel.
    pub async fn spawn(self, shutdown: CancellationToken) -> Result<Vec<JoinHandle<()>>, String> {
        let this = Arc::new(self);
        let mut channels: Vec<String> = [FANOUT_CHANNEL, PRICES_CHANNEL, TRADES_CHANNEL, EMIT_CHANNEL]
            .map(String::from)
            .to_vec();
        channels.extend(this.bridges.iter().map(|b| b.channel.clone()));
        let mut tasks = Vec::new();
        for channel in channels {
            let stream = this
                .driver
                .subscribe(channel.clone(), CHANNEL_BUFFER)
                .await
                .map_err(|e| format!("cannot subscribe to {channel}: {e}"))?;
            tasks.push(tokio::spawn(this.clone().read(channel, stream, shutdown.clone())));
        }
        Ok(tasks)
    }

    async fn read(
        self: Arc<Self>,
        channel: String,
        mut stream: MessageStream<ChanItem>,
        stop: CancellationToken,
    ) {
        loop {
            let (_, payload) = tokio::select! {
                item = stream.next() => match item { Some(item) => item, None => return },
                _ = stop.cancelled() => return,
            };
            let result = self.handle(&channel, &payload).await;
            let outcome = match &result {
                Ok(()) => "ok",
                Err(e) => {
                    tracing::warn!(%channel, error = %e, "invalid message on redis channel");
                    "invalid"
                }
            };
            if channel != FANOUT_CHANNEL || result.is_err() {
                let labels = vec![
                    Label::new("channel", channel.clone()),
                    Label::new("result", outcome),
                ];
                self.metrics.counter(REDIS_MESSAGES, labels).increment(1);
            }
        }
    }

    async fn handle(&self, channel: &str, payload: &[u8]) -> Result<(), String> {
        let received = Instant::now();
        let now = crate::clock::unix_millis();
        match channel {
            FANOUT_CHANNEL => {
                // Every envelope is delivered even if another line is malformed.
                let mut first_error = None;
                for envelope in envelopes(payload) {
                    let result = match envelope {
                        Ok(envelope) if envelope.origin == self.origin => Ok(()),
                        Ok(envelope) => self.deliver(envelope, now, received).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        first_error.get_or_insert(e);
                    }
                }
                return first_error.map_or(Ok(()), Err);
            }
            PRICES_CHANNEL => {
                self.feed
                    .deliver_prices(&parse_prices(json(payload)?, now)?, received)
                    .await
            }
            TRADES_CHANNEL => self.feed.deliver_trades(&parse_trades(json(payload)?)?).await,
            EMIT_CHANNEL => self.feed.deliver_emits(&parse_emits(json(payload)?)?).await,
            bridged => self.bridge(bridged, payload, now).await,
        }
        Ok(())
    }

    /// Delivers one envelope from another node to this node's sockets.
    async fn deliver(&self, envelope: Envelope<'_>, now: u64, received: Instant) -> Result<(), String> {
        let items = envelope.items.get();
        match envelope.kind {
            Kind::Prices => {
                self.feed
                    .deliver_prices(&parse_prices(json(items.as_bytes())?, now)?, received)
                    .await
            }
            Kind::Trades => {
                self.feed
                    .deliver_trades(&parse_trades(json(items.as_bytes())?)?)
                    .await
            }
            Kind::Emits => {
                self.feed
                    .deliver_emits(&parse_emits(json(items.as_bytes())?)?)
                    .await
            }
            Kind::Chat => {
                let out: ChatOut = serde_json::from_str(items).map_err(|e| e.to_string())?;
                self.chat.deliver_local(&out).await;
            }
        }
        Ok(())
    }

    async fn bridge(&self, channel: &str, payload: &[u8], now: u64) {
        let data = serde_json::from_slice(payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
        let message = Bridged {
            kind: channel,
            data,
            timestamp: now,
        };
        let room = self
            .bridges
            .iter()
            .find(|b| b.channel == channel)
            .and_then(|b| b.room.clone());
        let sent = match room {
            Some(room) => self.io.local().to(room).emit(channel, &message).await,
            None => self.io.local().emit(channel, &message).await,
        };
        self.metrics.record_broadcast(channel, sent);
    }
}

fn json(payload: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(payload).map_err(|e| format!("malformed JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_parse_with_and_without_rooms() {
        let got = parse_bridges(&["community_monitor".into(), " scan_monitor = admin ".into()]).unwrap();
        assert_eq!(
            got[0],
            Bridge {
                channel: "community_monitor".into(),
                room: None
            }
        );
        assert_eq!(
            got[1],
            Bridge {
                channel: "scan_monitor".into(),
                room: Some("admin".into())
            }
        );
        assert!(parse_bridges(&["a b".into()]).is_err());
        assert!(parse_bridges(&["x=".into()]).is_err());
        assert!(
            parse_bridges(&["roomcast:prices".into()])
                .unwrap_err()
                .contains("reserved")
        );
    }
}
