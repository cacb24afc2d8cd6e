//! Redis pub/sub that survives Redis going away.
//!
//! One subscriber connection lives in a task that reconnects with backoff and
//! subscribes again to every channel and pattern it serves, so cross-node
//! delivery resumes by itself. Publishing uses a reconnecting `ConnectionManager`. A publish
//! that Redis did not take is an error for the caller (and counted): nothing
//! here reports success for a message it did not send. On a Redis Cluster
//! the same is done by [`ClusterPubSub`] (sharded channels, failover).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cluster_pubsub::ClusterPubSub;
use super::conn;
use super::health::RedisHealth;

/// Time allowed to one publish request before it is given up.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How often an idle subscriber connection is probed with PING.
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(2);
pub(super) const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(2);
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer in time")]
    Timeout,
    #[error("redis is unreachable")]
    Down,
    #[error("redis subscriber task has stopped")]
    Stopped,
}

/// Payloads received on one channel.
pub type Messages = mpsc::Receiver<Vec<u8>>;

/// Where the messages of each channel (SUBSCRIBE, or SSUBSCRIBE on a
/// cluster) and of each pattern (PSUBSCRIBE) go.
#[derive(Default)]
pub(super) struct Routes {
    pub(super) channels: HashMap<String, mpsc::Sender<Vec<u8>>>,
    pub(super) sharded: HashMap<String, mpsc::Sender<Vec<u8>>>,
    pub(super) patterns: HashMap<String, mpsc::Sender<Vec<u8>>>,
}

pub(super) type Handlers = Arc<RwLock<Routes>>;

/// A channel name, a shard channel name (cluster only), or a glob pattern of channel names.
#[derive(Clone, Copy)]
pub(super) enum Target {
    Channel,
    Sharded,
    Pattern,
}

pub(super) enum Control {
    Subscribe(Target, String, oneshot::Sender<()>),
}

/// Publishing and subscribing on one Redis or on a Redis Cluster, resilient to outages.
#[derive(Clone)]
pub enum RedisPubSub {
    Single(SinglePubSub),
    Cluster(ClusterPubSub),
}

impl RedisPubSub {
    /// Connects (failing if Redis cannot be reached now) and starts the subscriber task.
    pub async fn connect(
        target: &conn::Target,
        health: Arc<RedisHealth>,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), RedisError> {
        match target {
            conn::Target::Single(client) => {
                let (pubsub, task) = SinglePubSub::connect(client.clone(), health, shutdown).await?;
                Ok((RedisPubSub::Single(pubsub), task))
            }
            conn::Target::Cluster(nodes) => {
                let (pubsub, task) = ClusterPubSub::connect(nodes.clone(), health, shutdown).await?;
                Ok((RedisPubSub::Cluster(pubsub), task))
            }
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisPubSub::Cluster(_))
    }

    /// Publishes `payload` on `channel` (SPUBLISH for a shard channel on a
    /// cluster). While Redis is down this fails at once; every failure is
    /// counted in `roomcast_redis_publish_errors_total`.
    pub async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), RedisError> {
        match self {
            RedisPubSub::Single(p) => p.publish(channel, payload).await,
            RedisPubSub::Cluster(p) => p.publish(channel, payload).await,
        }
    }

    /// Subscribes to `channel`; messages beyond `buffer` waiting are dropped and counted.
    pub async fn subscribe(&self, channel: &str, buffer: usize) -> Result<Messages, RedisError> {
        self.subscribe_all(&[channel], &[], buffer).await
    }

    /// Subscribes to `channels` and to every channel matching the glob
    /// `patterns` (PSUBSCRIBE), all into one queue in the order Redis sent
    /// them; messages beyond `buffer` waiting are dropped and counted.
    pub async fn subscribe_all(
        &self,
        channels: &[&str],
        patterns: &[&str],
        buffer: usize,
    ) -> Result<Messages, RedisError> {
        let targets = (channels.iter().map(|c| (Target::Channel, *c)))
            .chain(patterns.iter().map(|p| (Target::Pattern, *p)));
        self.subscribe_targets(targets.collect(), buffer).await
    }

    /// Subscribes to shard channels (SSUBSCRIBE; on a cluster only), all into one queue.
    pub async fn subscribe_sharded(&self, channels: &[&str], buffer: usize) -> Result<Messages, RedisError> {
        let targets = channels.iter().map(|c| (Target::Sharded, *c)).collect();
        self.subscribe_targets(targets, buffer).await
    }

    async fn subscribe_targets(
        &self,
        targets: Vec<(Target, &str)>,
        buffer: usize,
    ) -> Result<Messages, RedisError> {
        let (handlers, control) = match self {
            RedisPubSub::Single(p) => (&p.handlers, &p.control),
            RedisPubSub::Cluster(p) => (&p.handlers, &p.control),
        };
        let (tx, rx) = mpsc::channel(buffer.max(1));
        for (target, name) in targets {
            {
                let mut routes = handlers.write().unwrap_or_else(|e| e.into_inner());
                match target {
                    Target::Channel => routes.channels.insert(name.to_owned(), tx.clone()),
                    Target::Sharded => routes.sharded.insert(name.to_owned(), tx.clone()),
                    Target::Pattern => routes.patterns.insert(name.to_owned(), tx.clone()),
                };
            }
            let (done_tx, done) = oneshot::channel();
            control
                .send(Control::Subscribe(target, name.to_owned(), done_tx))
                .map_err(|_| RedisError::Stopped)?;
            let _ = tokio::time::timeout(START_TIMEOUT, done).await;
        }
        Ok(rx)
    }
}

/// Publishing and subscribing on one Redis, resilient to outages.
#[derive(Clone)]
pub struct SinglePubSub {
    publisher: ConnectionManager,
    handlers: Handlers,
    control: mpsc::UnboundedSender<Control>,
    health: Arc<RedisHealth>,
}

impl SinglePubSub {
    /// Connects (failing if Redis cannot be reached now) and starts the subscriber task.
    async fn connect(
        client: redis::Client,
        health: Arc<RedisHealth>,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(REQUEST_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(BACKOFF_MAX);
        let publisher = tokio::time::timeout(
            START_TIMEOUT,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| RedisError::Timeout)??;
        let handlers: Handlers = Arc::default();
        let (control, commands) = mpsc::unbounded_channel();
        let (first_up_tx, first_up) = oneshot::channel();
        let subscriber = Subscriber {
            client,
            handlers: handlers.clone(),
            commands,
            health: health.clone(),
            shutdown,
        };
        let task = tokio::spawn(subscriber.run(first_up_tx));
        match tokio::time::timeout(START_TIMEOUT, first_up).await {
            Ok(Ok(())) => Ok((
                Self {
                    publisher,
                    handlers,
                    control,
                    health,
                },
                task,
            )),
            Ok(Err(_)) => Err(RedisError::Stopped),
            Err(_) => {
                task.abort();
                Err(RedisError::Timeout)
            }
        }
    }

    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), RedisError> {
        let result = if self.health.is_up() {
            let mut conn = self.publisher.clone();
            match tokio::time::timeout(REQUEST_TIMEOUT, conn.publish::<_, _, ()>(channel, payload)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(RedisError::Redis(e)),
                Err(_) => Err(RedisError::Timeout),
            }
        } else {
            Err(RedisError::Down)
        };
        if result.is_err() {
            self.health.publish_failed();
        }
        result
    }
}

/// Owns the pub/sub connection: (re)connects, (re)subscribes, dispatches.
struct Subscriber {
    client: redis::Client,
    handlers: Handlers,
    commands: mpsc::UnboundedReceiver<Control>,
    health: Arc<RedisHealth>,
    shutdown: CancellationToken,
}

/// Why a connection's loop ended.
enum Ended {
    /// The connection broke: reconnect.
    Broken,
    /// Shutdown, or nobody can send commands any more: stop.
    Stop,
}

impl Subscriber {
    async fn run(mut self, first_up: oneshot::Sender<()>) {
        let mut first_up = Some(first_up);
        let mut backoff = BACKOFF_FIRST;
        let mut ever_up = false;
        loop {
            if let Some((sink, stream)) = self.connect_and_subscribe().await {
                if self.health.set_up(true) {
                    if ever_up {
                        self.health.reconnected();
                        tracing::info!("redis back: resubscribed");
                    }
                    ever_up = true;
                }
                if let Some(first) = first_up.take() {
                    let _ = first.send(());
                }
                backoff = BACKOFF_FIRST;
                if let Ended::Stop = self.serve(sink, stream).await {
                    return;
                }
            }
            if self.health.set_up(false) {
                tracing::warn!("redis connection lost: serving local clients only, reconnecting");
            }
            if let Ended::Stop = self.wait(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// A new pub/sub connection subscribed to every channel and pattern served so far.
    async fn connect_and_subscribe(&self) -> Option<(PubSubSink, PubSubStream)> {
        let connected = tokio::select! {
            c = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub()) => c,
            _ = self.shutdown.cancelled() => return None,
        };
        let (mut sink, stream) = connected.ok()?.ok()?.split();
        let (channels, patterns): (Vec<String>, Vec<String>) = {
            let routes = self.handlers.read().unwrap_or_else(|e| e.into_inner());
            (
                routes
                    .channels
                    .keys()
                    .chain(routes.sharded.keys())
                    .cloned()
                    .collect(),
                routes.patterns.keys().cloned().collect(),
            )
        };
        if !channels.is_empty() {
            sink.subscribe(&channels).await.ok()?;
        }
        if !patterns.is_empty() {
            sink.psubscribe(&patterns).await.ok()?;
        }
        Some((sink, stream))
    }

    /// Dispatches messages and serves subscribe requests until the connection breaks.
    async fn serve(&mut self, mut sink: PubSubSink, mut stream: PubSubStream) -> Ended {
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => self.dispatch(message),
                    None => return Ended::Broken,
                },
                command = self.commands.recv() => match command {
                    Some(Control::Subscribe(target, name, done)) => {
                        let ok = match target {
                            Target::Channel | Target::Sharded => sink.subscribe(&name).await.is_ok(),
                            Target::Pattern => sink.psubscribe(&name).await.is_ok(),
                        };
                        let _ = done.send(());
                        if !ok { return Ended::Broken; }
                    }
                    None => return Ended::Stop,
                },
                _ = probe.tick() => {
                    let pong = tokio::time::timeout(REQUEST_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) { return Ended::Broken; }
                }
                _ = self.shutdown.cancelled() => return Ended::Stop,
            }
        }
    }

    /// Waits out the backoff; subscribe requests are answered at once meanwhile
    /// (the channel is recorded and subscribed on reconnect).
    async fn wait(&mut self, backoff: Duration) -> Ended {
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => return Ended::Broken,
                command = self.commands.recv() => match command {
                    Some(Control::Subscribe(_, _, done)) => { let _ = done.send(()); }
                    None => return Ended::Stop,
                },
                _ = self.shutdown.cancelled() => return Ended::Stop,
            }
        }
    }

    fn dispatch(&self, message: redis::Msg) {
        dispatch(&self.handlers, &self.health, message);
    }
}

/// Hands a received message to the queue of its channel, shard channel or pattern.
pub(super) fn dispatch(handlers: &Handlers, health: &RedisHealth, message: redis::Msg) {
    let channel = message.get_channel_name();
    let routes = handlers.read().unwrap_or_else(|e| e.into_inner());
    let route = if message.from_pattern() {
        let pattern: Option<String> = message.get_pattern().ok();
        pattern.and_then(|p| routes.patterns.get(&p))
    } else {
        routes
            .channels
            .get(channel)
            .or_else(|| routes.sharded.get(channel))
    };
    if let Some(tx) = route
        && tx.try_send(message.get_payload_bytes().to_vec()).is_err()
    {
        health.message_dropped();
        tracing::warn!(channel, "redis message dropped: consumer is behind");
    }
}
