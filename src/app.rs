//! `Application::build(config)` binds the listener (port 0 allowed), wires the
//! state and spawns the background tasks; `run_until_stopped` serves until the
//! shutdown future resolves, then drains in order: not ready, stop accepting,
//! flush the batcher, close every transport (clients reconnect elsewhere), exit.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use rand::RngCore;
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide_core::adapter::DefinedAdapter;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::token::TokenVerifier;
use crate::batcher::{self, PendingPrices};
use crate::chat::Chat;
use crate::chat::backlog::ChatBacklog;
use crate::chat::bus::ChatBus;
use crate::chat::plain_hub::PlainHub;
use crate::cluster::channels::{Bridge, Consumers, parse_bridges};
use crate::cluster::driver::ResilientDriver;
use crate::cluster::fanout::Fanout;
use crate::cluster::health::RedisHealth;
use crate::config::{Config, Secret};
use crate::demo;
use crate::http::conn::{Connections, Timeouts};
use crate::http::health::Readiness;
use crate::http::{self, AppState};
use crate::market::feed::Feed;
use crate::market::groups::PriceGroups;
use crate::metrics::{FANOUT_DROPPED, Metrics};
use crate::realtime::admin::{self, NodeStats};
use crate::realtime::batch_sink::SocketBatchSink;
use crate::realtime::{self, Realtime};
use crate::runtime_load::RuntimeLoad;
use crate::store::ChatStore;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;

/// Socket.IO's per-socket queue of outgoing packets; a socket that falls this
/// far behind gets packets dropped rather than growing memory.
const SOCKET_BUFFER_PACKETS: usize = 1024;
/// Initial WebSocket read buffer per connection (tungstenite grows it for
/// larger messages); engineioxide's default of 4 KiB is most of an idle
/// socket's memory for the small frames this server reads.
const WS_READ_BUFFER: usize = 1024;
/// How long the whole shutdown may take before the process gives up waiting.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(8);

/// How long shutdown waits for Socket.IO WebSockets to end on their own.
const SEVER_WAIT: Duration = Duration::from_secs(3);

type CloseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    node: String,
    tokens: TokenVerifier,
    publish_key: Secret,
    readiness: Arc<Readiness>,
    tasks_shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    connections: Arc<Connections>,
    close_transports: Box<dyn FnOnce() -> CloseFuture + Send>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let bridges = parse_bridges(&config.redis_channels).map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let node = config.node_name();
        let jwt_secret = config.jwt_secret.clone().unwrap_or_else(|| {
            tracing::warn!(
                "no --jwt-secret set: generated a random secret for this run (dev only); \
                 tokens signed by your services will be refused"
            );
            random_secret()
        });
        let publish_key = config.publish_key.clone().unwrap_or_else(|| {
            let key = random_secret();
            eprintln!(
                "roomcast: no --publish-key set; publish API key for this run: {}",
                key.expose()
            );
            key
        });
        let tokens = TokenVerifier::hs256(jwt_secret.expose().as_bytes());
        let metrics = Arc::new(Metrics::new(&node));
        let tasks_shutdown = CancellationToken::new();
        let wiring = Wiring {
            config: &config,
            node: node.clone(),
            tokens: tokens.clone(),
            publish_key: publish_key.clone(),
            metrics: metrics.clone(),
            tasks_shutdown: tasks_shutdown.clone(),
        };

        let wired = match &config.redis_url {
            None => {
                let store = Arc::new(MemoryStore::new(config.chat_history_max as usize));
                let (layer, io) = socket_io_builder(&config).build_layer();
                let (wired, ()) = wiring.wire::<LocalAdapter>(io, layer, store, None)?;
                wired
            }
            Some(url) => {
                let client = redis::Client::open(url.expose())
                    .map_err(|e| anyhow::anyhow!("--redis-url is not a valid Redis URL: {e}"))?;
                let health = Arc::new(RedisHealth::new(&metrics));
                let (driver, subscriber) =
                    ResilientDriver::connect(client.clone(), health.clone(), tasks_shutdown.clone())
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot reach Redis at start-up: {e}"))?;
                let store = Arc::new(
                    RedisStore::connect(client, config.chat_history_max as usize)
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot reach Redis at start-up: {e}"))?,
                );
                let adapter = RedisAdapterCtr::new_with_driver(driver.clone(), RedisAdapterConfig::new());
                let (layer, io) = socket_io_builder(&config)
                    .with_adapter::<CustomRedisAdapter<_, ResilientDriver>>(adapter)
                    .build_layer();
                let origin = format!(
                    "{node}/{}",
                    random_secret().expose().get(..12).unwrap_or_default()
                );
                let cluster = ClusterParts {
                    driver,
                    health,
                    origin,
                    bridges,
                };
                let (mut wired, init) = wiring.wire(io, layer, store, Some(cluster))?;
                init.await
                    .map_err(|e| anyhow::anyhow!("redis adapter did not start: {e}"))?;
                let consumers = wired.consumers.take().expect("cluster wiring has consumers");
                wired.tasks.extend(consumers.await.map_err(anyhow::Error::msg)?);
                wired.tasks.push(subscriber);
                wired
            }
        };
        let connections = Arc::new(Connections::new(
            Timeouts {
                header: Duration::from_secs(config.header_timeout_s),
                idle: Duration::from_secs(config.idle_timeout_s),
                body: Duration::from_secs(config.body_timeout_s),
            },
            config.max_body,
            config
                .max_connections_per_ip
                .unwrap_or_else(http::conn::default_per_ip_limit),
            &metrics,
        ));
        tracing::info!(addr = %local_addr, node = %node, redis = config.redis_url.is_some(), "listening");
        Ok(Self {
            listener,
            local_addr,
            router: wired.router,
            node,
            tokens,
            publish_key,
            readiness: wired.readiness,
            tasks_shutdown,
            tasks: wired.tasks,
            connections,
            close_transports: wired.close_transports,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The publish API key in force (generated when not configured).
    pub fn publish_key(&self) -> &Secret {
        &self.publish_key
    }

    /// The user token verifier in force (tests and the demo mint tokens with it).
    pub fn tokens(&self) -> &TokenVerifier {
        &self.tokens
    }

    /// Serves until `shutdown` resolves, then drains and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop_accepting = CancellationToken::new();
        let server = tokio::spawn(http::serve::serve(
            self.listener,
            self.router,
            self.connections.clone(),
            stop_accepting.clone(),
        ));
        shutdown.await;
        tracing::info!("shutting down: draining");
        let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
        self.readiness.start_draining();
        stop_accepting.cancel();
        self.tasks_shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
        // End Socket.IO transports without an Engine.IO `close` packet first,
        // so every client reconnects; `io.close()` then ends what is left.
        self.connections.sever_socket_io();
        let sever_deadline = deadline.min(tokio::time::Instant::now() + SEVER_WAIT);
        let _ = tokio::time::timeout_at(sever_deadline, self.connections.socket_io_ws_closed()).await;
        let _ = tokio::time::timeout_at(deadline, (self.close_transports)()).await;
        match tokio::time::timeout_at(deadline, server).await {
            Ok(Ok(())) => tracing::info!("stopped"),
            Ok(Err(e)) => return Err(e).context("server task failed"),
            Err(_) => tracing::warn!("stopped with connections still open after the shutdown budget"),
        }
        Ok(())
    }
}

fn socket_io_builder(config: &Config) -> socketioxide::SocketIoBuilder {
    SocketIo::builder()
        .max_payload(config.max_payload)
        .ws_max_message_size(config.max_payload as usize)
        .ws_max_frame_size(config.max_payload as usize)
        .max_buffer_size(SOCKET_BUFFER_PACKETS)
        .ws_read_buffer_size(WS_READ_BUFFER)
}

/// What multi-node mode adds to the wiring.
struct ClusterParts {
    driver: ResilientDriver,
    health: Arc<RedisHealth>,
    origin: String,
    bridges: Vec<Bridge>,
}

/// Everything that depends on the Socket.IO adapter type.
struct Wiring<'a> {
    config: &'a Config,
    node: String,
    tokens: TokenVerifier,
    publish_key: Secret,
    metrics: Arc<Metrics>,
    tasks_shutdown: CancellationToken,
}

type ConsumersFuture = Pin<Box<dyn Future<Output = Result<Vec<JoinHandle<()>>, String>> + Send>>;

struct Wired {
    router: Router,
    readiness: Arc<Readiness>,
    tasks: Vec<JoinHandle<()>>,
    close_transports: Box<dyn FnOnce() -> CloseFuture + Send>,
    /// Multi-node only: subscribes to the Redis channels, to run once the adapter is up.
    consumers: Option<ConsumersFuture>,
}

impl Wiring<'_> {
    /// Wires everything on `io`; returns the adapter's init result with it.
    fn wire<A: Adapter + DefinedAdapter>(
        self,
        io: SocketIo<A>,
        layer: socketioxide::layer::SocketIoLayer<A>,
        store: Arc<dyn ChatStore>,
        cluster: Option<ClusterParts>,
    ) -> anyhow::Result<(Wired, A::InitRes)> {
        let config = self.config;
        let metrics = self.metrics;
        let rate_limits = Arc::new(config.rate_limit.clone());
        let mut fanout_task = None;
        let fanout = cluster.as_ref().map(|c| {
            let dropped = metrics.counter(FANOUT_DROPPED, vec![]);
            let (fanout, task) = Fanout::spawn(
                c.driver.clone(),
                c.origin.clone(),
                dropped,
                self.tasks_shutdown.clone(),
            );
            fanout_task = Some(task);
            fanout
        });
        let plain = Arc::new(PlainHub::default());
        let chat = Arc::new(Chat::new(store));
        let chat_backlog = Arc::new(ChatBacklog::default());
        let chat_bus = Arc::new(ChatBus {
            io: io.clone(),
            plain: plain.clone(),
            fanout: fanout.clone(),
            metrics: metrics.clone(),
            backlog: chat_backlog.clone(),
        });
        chat.set_delivery(chat_bus.clone());
        let batch_interval = Duration::from_millis(config.batch_interval_ms);
        let price_groups = Arc::new(PriceGroups::new(batcher::slices_for(batch_interval)));
        let pending = Arc::new(PendingPrices::default());
        let realtime = Arc::new(Realtime {
            tokens: self.tokens.clone(),
            rate_limits: rate_limits.clone(),
            metrics: metrics.clone(),
            price_groups: price_groups.clone(),
            max_subscriptions: config.max_subscriptions as usize,
            chat: chat.clone(),
        });
        let init = realtime::register(&io, realtime);

        let tasks_shutdown = self.tasks_shutdown;
        let node_stats = Arc::new(NodeStats::new(io.clone(), metrics.clone(), self.node));
        let tasks = vec![
            batcher::spawn(
                batch_interval,
                pending.clone(),
                price_groups,
                SocketBatchSink {
                    io: io.clone(),
                    metrics: metrics.clone(),
                },
                tasks_shutdown.clone(),
            ),
            admin::spawn_emitter(
                node_stats.clone(),
                io.clone(),
                Duration::from_millis(config.metrics_interval_ms),
                tasks_shutdown.clone(),
            ),
        ];

        let feed = Feed::new(io.clone(), pending, metrics.clone(), fanout);
        let readiness = Arc::new(Readiness::new(cluster.as_ref().map(|c| c.health.clone())));
        let consumers: Option<ConsumersFuture> = cluster.map(|c| {
            let consumers = Consumers {
                driver: c.driver,
                feed: feed.clone(),
                chat: chat_bus,
                io: io.clone(),
                metrics: metrics.clone(),
                origin: c.origin,
                bridges: c.bridges,
            };
            let stop = tasks_shutdown.clone();
            Box::pin(async move { consumers.spawn(stop).await }) as ConsumersFuture
        });
        let runtime_load = Arc::new(RuntimeLoad::default());
        let state = AppState {
            feed,
            publish_key: Arc::new(self.publish_key),
            tokens: self.tokens,
            metrics,
            node_stats,
            readiness: readiness.clone(),
            chat,
            plain,
            rate_limits,
            runtime_load: runtime_load.clone(),
            max_payload: config.max_payload as usize,
            shutdown: tasks_shutdown.clone(),
        };
        let mut tasks = tasks;
        tasks.extend(fanout_task);
        tasks.push(chat_backlog.spawn_retry(io.clone(), tasks_shutdown.clone()));
        tasks.push(runtime_load.clone().spawn_sampler(
            state.metrics.gauge(crate::metrics::RUNTIME_BUSY, vec![]),
            tasks_shutdown.clone(),
        ));
        if config.demo {
            tracing::warn!(
                "DEMO MODE: a synthetic market feed is running and GET /api/v1/demo/token hands out \
                 user and admin tokens to anyone. Never use --demo in production."
            );
            tasks.push(demo::spawn(
                state.feed.clone(),
                io.clone(),
                tasks_shutdown.clone(),
            ));
        }
        let router = http::app(state, layer, &config.cors_origin, config.max_body, config.demo)
            .map_err(anyhow::Error::msg)?;
        let close_transports: Box<dyn FnOnce() -> CloseFuture + Send> =
            Box::new(move || Box::pin(async move { io.close().await }));
        Ok((
            Wired {
                router,
                readiness,
                tasks,
                close_transports,
                consumers,
            },
            init,
        ))
    }
}

fn random_secret() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
