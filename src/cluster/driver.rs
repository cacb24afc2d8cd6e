//! A socketioxide-redis `Driver` that survives Redis going away.
//!
//! socketioxide-redis's own redis-rs driver never resubscribes after its
//! connection breaks. This one keeps one pub/sub connection in a task that
//! reconnects with backoff and subscribes again to every channel it serves, so
//! cross-node delivery resumes by itself. Publishing uses a reconnecting
//! `ConnectionManager`; while Redis is down a publish is counted and skipped at
//! once (`Ok`), because the adapter delivers locally only after its publish
//! succeeds: local clients must keep being served during an outage.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::health::RedisHealth;

/// Time allowed to one publish or count request before it is given up.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How often an idle subscriber connection is probed with PING.
const PROBE_EVERY: Duration = Duration::from_secs(2);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer in time")]
    Timeout,
    #[error("redis subscriber task has stopped")]
    Stopped,
}

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

enum Control {
    Subscribe(String, oneshot::Sender<()>),
    Unsubscribe(String),
}

#[derive(Clone)]
pub struct ResilientDriver {
    publisher: ConnectionManager,
    handlers: Handlers,
    control: mpsc::UnboundedSender<Control>,
    health: Arc<RedisHealth>,
}

impl ResilientDriver {
    /// Connects (failing if Redis cannot be reached now) and starts the subscriber task.
    pub async fn connect(
        client: redis::Client,
        health: Arc<RedisHealth>,
        shutdown: CancellationToken,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), DriverError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(REQUEST_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(BACKOFF_MAX);
        let publisher = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| DriverError::Timeout)??;
        let handlers: Handlers = Arc::default();
        let (control, commands) = mpsc::unbounded_channel();
        let (first_up_tx, first_up) = oneshot::channel();
        let task = tokio::spawn(run_subscriber(
            client,
            handlers.clone(),
            commands,
            health.clone(),
            shutdown,
            Some(first_up_tx),
        ));
        match tokio::time::timeout(Duration::from_secs(5), first_up).await {
            Ok(Ok(())) => Ok((
                Self {
                    publisher,
                    handlers,
                    control,
                    health,
                },
                task,
            )),
            Ok(Err(_)) => Err(DriverError::Stopped),
            Err(_) => {
                task.abort();
                Err(DriverError::Timeout)
            }
        }
    }

    pub fn health(&self) -> &Arc<RedisHealth> {
        &self.health
    }
}

impl Driver for ResilientDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), DriverError> {
        if !self.health.is_up() {
            self.health.publish_failed();
            return Ok(());
        }
        let mut conn = self.publisher.clone();
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, conn.publish::<_, _, ()>(&chan, val)).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.health.publish_failed();
            tracing::warn!(channel = %chan, "redis publish failed: message not sent to other nodes");
        }
        Ok(())
    }

    async fn subscribe(&self, chan: String, size: usize) -> Result<MessageStream<ChanItem>, DriverError> {
        let (tx, rx) = mpsc::channel(size.max(1));
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chan.clone(), tx);
        let (done_tx, done) = oneshot::channel();
        self.control
            .send(Control::Subscribe(chan, done_tx))
            .map_err(|_| DriverError::Stopped)?;
        let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), DriverError> {
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&chan);
        self.control
            .send(Control::Unsubscribe(chan))
            .map_err(|_| DriverError::Stopped)
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, DriverError> {
        let mut conn = self.publisher.clone();
        let counts: Vec<(String, u16)> = tokio::time::timeout(
            REQUEST_TIMEOUT,
            redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(chan)
                .query_async(&mut conn),
        )
        .await
        .map_err(|_| DriverError::Timeout)??;
        Ok(counts.first().map_or(0, |(_, n)| *n))
    }
}

/// Owns the pub/sub connection: (re)connects, (re)subscribes, dispatches.
async fn run_subscriber(
    client: redis::Client,
    handlers: Handlers,
    mut commands: mpsc::UnboundedReceiver<Control>,
    health: Arc<RedisHealth>,
    shutdown: CancellationToken,
    mut first_up: Option<oneshot::Sender<()>>,
) {
    let mut backoff = BACKOFF_FIRST;
    let mut ever_up = false;
    loop {
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub()) => c,
            _ = shutdown.cancelled() => return,
        };
        if let Ok(Ok(pubsub)) = connected {
            let (mut sink, mut stream) = pubsub.split();
            let channels: Vec<String> = handlers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned()
                .collect();
            let subscribed = channels.is_empty() || sink.subscribe(&channels).await.is_ok();
            if subscribed {
                if health.set_up(true) {
                    if ever_up {
                        health.reconnected();
                        tracing::info!(channels = channels.len(), "redis back: resubscribed");
                    }
                    ever_up = true;
                }
                if let Some(first) = first_up.take() {
                    let _ = first.send(());
                }
                backoff = BACKOFF_FIRST;
                let mut probe = tokio::time::interval(PROBE_EVERY);
                probe.tick().await;
                loop {
                    tokio::select! {
                        message = stream.next() => match message {
                            Some(message) => dispatch(&handlers, &health, message),
                            None => break,
                        },
                        command = commands.recv() => match command {
                            Some(Control::Subscribe(chan, done)) => {
                                let ok = sink.subscribe(&chan).await.is_ok();
                                let _ = done.send(());
                                if !ok { break; }
                            }
                            Some(Control::Unsubscribe(chan)) => {
                                if sink.unsubscribe(&chan).await.is_err() { break; }
                            }
                            None => return,
                        },
                        _ = probe.tick() => {
                            let pong = tokio::time::timeout(REQUEST_TIMEOUT, sink.ping::<redis::Value>()).await;
                            if !matches!(pong, Ok(Ok(_))) { break; }
                        }
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
        if health.set_up(false) {
            tracing::warn!("redis connection lost: serving local clients only, reconnecting");
        }
        // While down, answer subscribe requests at once: the channel is recorded
        // and will be subscribed on reconnect.
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                command = commands.recv() => match command {
                    Some(Control::Subscribe(_, done)) => { let _ = done.send(()); }
                    Some(Control::Unsubscribe(_)) => {}
                    None => return,
                },
                _ = shutdown.cancelled() => return,
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn dispatch(handlers: &Handlers, health: &RedisHealth, message: redis::Msg) {
    let channel = message.get_channel_name().to_owned();
    let payload = message.get_payload_bytes().to_vec();
    let handlers = handlers.read().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = handlers.get(&channel)
        && tx.try_send((channel.clone(), payload)).is_err()
    {
        health.message_dropped();
        tracing::warn!(%channel, "redis message dropped: consumer is behind");
    }
}
