//! Pub/sub on a Redis Cluster, resilient to a master failing over.
//!
//! One redis-rs cluster connection (RESP3, pushes into a queue) carries the
//! publishes and the subscriptions: shard channels with SSUBSCRIBE/SPUBLISH
//! (served by the master of the channel's slot), plain channels with
//! SUBSCRIBE and patterns with PSUBSCRIBE (a cluster forwards PUBLISH to every
//! node, so one subscription anywhere hears it). A task probes, every
//! [`PROBE_EVERY`], the master of the slot of every channel it serves (a
//! keyed read only that master may answer). While a probe fails the node is down
//! (`/readyz` 503, `roomcast_redis_up` 0, publishes refused and counted); then
//! the whole connection is built again from the seed nodes (fresh slot map)
//! and subscribed to everything again, with backoff, until every probe
//! answers: that is when a promoted replica has taken over.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Msg, ProtocolVersion, PushInfo};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::conn::Target as RedisTarget;
use super::health::RedisHealth;
use super::redis::{
    BACKOFF_FIRST, CONNECT_TIMEOUT, Control, Handlers, REQUEST_TIMEOUT, RedisError, START_TIMEOUT, Target,
    dispatch,
};

/// How often the masters serving this node's channels are probed.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Longest wait between two attempts to rebuild the connection.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// The prefix of the fanout's shard channels (`roomcast:fanout:{<n>}`).
pub const SHARD_PREFIX: &str = "roomcast:fanout:{";

type Shared = Arc<RwLock<Option<ClusterConnection>>>;

/// Publishing and subscribing on a Redis Cluster.
#[derive(Clone)]
pub struct ClusterPubSub {
    conn: Shared,
    pub(super) handlers: Handlers,
    pub(super) control: mpsc::UnboundedSender<Control>,
    health: Arc<RedisHealth>,
}

impl ClusterPubSub {
    pub(super) async fn connect(
        nodes: Vec<String>,
        health: Arc<RedisHealth>,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), RedisError> {
        let conn: Shared = Arc::default();
        let handlers: Handlers = Arc::default();
        let (control, commands) = mpsc::unbounded_channel();
        let (first_up_tx, first_up) = oneshot::channel();
        let task = tokio::spawn(
            Subscriber {
                nodes,
                conn: conn.clone(),
                handlers: handlers.clone(),
                commands,
                health: health.clone(),
                shutdown,
            }
            .run(first_up_tx),
        );
        match tokio::time::timeout(START_TIMEOUT, first_up).await {
            Ok(Ok(())) => Ok((
                Self {
                    conn,
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

    pub(super) async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), RedisError> {
        let conn = if self.health.is_up() {
            self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
        } else {
            None
        };
        let result = match conn {
            Some(mut conn) => {
                let command = if channel.starts_with(SHARD_PREFIX) {
                    "SPUBLISH"
                } else {
                    "PUBLISH"
                };
                let mut cmd = redis::cmd(command);
                cmd.arg(channel).arg(payload);
                match tokio::time::timeout(REQUEST_TIMEOUT, cmd.query_async::<()>(&mut conn)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(RedisError::Redis(e)),
                    Err(_) => Err(RedisError::Timeout),
                }
            }
            None => Err(RedisError::Down),
        };
        if result.is_err() {
            self.health.publish_failed();
        }
        result
    }
}

/// Owns the cluster connection: (re)builds it, (re)subscribes, probes, dispatches.
struct Subscriber {
    nodes: Vec<String>,
    conn: Shared,
    handlers: Handlers,
    commands: mpsc::UnboundedReceiver<Control>,
    health: Arc<RedisHealth>,
    shutdown: CancellationToken,
}

enum Ended {
    Broken,
    Stop,
}

impl Subscriber {
    async fn run(mut self, first_up: oneshot::Sender<()>) {
        let mut first_up = Some(first_up);
        let mut backoff = BACKOFF_FIRST;
        let mut ever_up = false;
        loop {
            if let Some((conn, pushes)) = self.connect_and_subscribe().await {
                *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
                if self.health.set_up(true) {
                    if ever_up {
                        self.health.reconnected();
                        tracing::info!("redis cluster back: resubscribed");
                    }
                    ever_up = true;
                }
                if let Some(first) = first_up.take() {
                    let _ = first.send(());
                }
                backoff = BACKOFF_FIRST;
                let ended = self.serve(conn, pushes).await;
                *self.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
                if let Ended::Stop = ended {
                    return;
                }
            }
            if self.health.set_up(false) {
                tracing::warn!("redis cluster unreachable: serving local clients only, reconnecting");
            }
            if let Ended::Stop = self.wait(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// A new cluster connection, subscribed to everything served so far, whose probes all answer.
    async fn connect_and_subscribe(&self) -> Option<(ClusterConnection, mpsc::UnboundedReceiver<PushInfo>)> {
        let (push_tx, pushes) = mpsc::unbounded_channel();
        let client = RedisTarget::cluster_builder(&self.nodes)
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(push_tx)
            .build()
            .ok()?;
        let connected = tokio::select! {
            c = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_connection()) => c,
            _ = self.shutdown.cancelled() => return None,
        };
        let mut conn = connected.ok()?.ok()?;
        let (channels, sharded, patterns): (Vec<String>, Vec<String>, Vec<String>) = {
            let routes = self.handlers.read().unwrap_or_else(|e| e.into_inner());
            (
                routes.channels.keys().cloned().collect(),
                routes.sharded.keys().cloned().collect(),
                routes.patterns.keys().cloned().collect(),
            )
        };
        let subscribed = async {
            for channel in &channels {
                conn.subscribe(channel).await?;
            }
            for channel in &sharded {
                conn.ssubscribe(channel).await?;
            }
            for pattern in &patterns {
                conn.psubscribe(pattern).await?;
            }
            Ok::<_, redis::RedisError>(())
        };
        if !matches!(tokio::time::timeout(START_TIMEOUT, subscribed).await, Ok(Ok(()))) {
            return None;
        }
        self.probe(&mut conn).await.then_some((conn, pushes))
    }

    /// Whether the master of every slot this node's subscriptions live on
    /// answers: `EXISTS <channel name>` must be served by the slot's master
    /// (a PING would be answered by any node).
    async fn probe(&self, conn: &mut ClusterConnection) -> bool {
        let names: Vec<String> = {
            let routes = self.handlers.read().unwrap_or_else(|e| e.into_inner());
            let mut seen = HashSet::new();
            (routes.channels.keys())
                .chain(routes.sharded.keys())
                .chain(routes.patterns.keys())
                .filter(|name| seen.insert(Slot::for_key(name.as_bytes())))
                .cloned()
                .collect()
        };
        let probes = names.into_iter().map(|name| {
            let mut conn = conn.clone();
            async move {
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(name);
                let answer = tokio::time::timeout(REQUEST_TIMEOUT, cmd.query_async::<i64>(&mut conn));
                matches!(answer.await, Ok(Ok(_)))
            }
        });
        futures_util::future::join_all(probes)
            .await
            .into_iter()
            .all(|ok| ok)
    }

    async fn serve(
        &mut self,
        mut conn: ClusterConnection,
        mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    ) -> Ended {
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.tick().await;
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => {
                        if let Some(message) = Msg::from_push_info(push) {
                            dispatch(&self.handlers, &self.health, message);
                        }
                    }
                    None => return Ended::Broken,
                },
                command = self.commands.recv() => match command {
                    Some(Control::Subscribe(target, name, done)) => {
                        let subscribed = match target {
                            Target::Channel => conn.subscribe(&name).await,
                            Target::Sharded => conn.ssubscribe(&name).await,
                            Target::Pattern => conn.psubscribe(&name).await,
                        };
                        let _ = done.send(());
                        if subscribed.is_err() { return Ended::Broken; }
                    }
                    None => return Ended::Stop,
                },
                _ = probe.tick() => {
                    if !self.probe(&mut conn).await {
                        tracing::warn!("redis cluster: a master serving this node did not answer");
                        return Ended::Broken;
                    }
                }
                _ = self.shutdown.cancelled() => return Ended::Stop,
            }
        }
    }

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
}
