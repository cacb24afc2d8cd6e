//! `Application::build(config)` binds the listener (port 0 allowed), chooses
//! the backend once (memory, or Redis), wires the state and spawns the
//! background tasks; `run_until_stopped` serves until the shutdown future
//! resolves, then drains in order: not ready, stop accepting, flush the
//! batcher, close every transport (clients reconnect elsewhere), exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use rand::RngCore;
use socketioxide::{ParserConfig, SocketIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod keys;

use crate::admin::AdminUi;
use crate::auth::token::TokenVerifier;
use crate::chat::Chat;
use crate::chat::access::{Authorizer, ChatGate};
use crate::chat::backlog::ChatBacklog;
use crate::chat::delivery::ChatBus;
use crate::chat::plain_hub::PlainHub;
use crate::chat::plain_ws::PlainWs;
use crate::chat::presence::{HEARTBEATS_PER_TIMEOUT, Presence, SharedPresence};
use crate::chat::webhook::{Webhook, WebhookMetrics, Worker};
use crate::chat::ws_socket::Keepalive;
use crate::cluster::conn::{Commands, Target as RedisTarget};
use crate::cluster::consumers::Consumers;
use crate::cluster::fanout::Fanout;
use crate::cluster::health::RedisHealth;
use crate::cluster::owners::{NodeUrl, SessionOwners};
use crate::cluster::redis::RedisPubSub;
use crate::config::{Config, Secret};
use crate::demo;
use crate::dispatch::LocalDelivery;
use crate::http::extract::{PublishKey, UserTokens};
use crate::http::health::Readiness;
use crate::http::{self, AppState, HttpOptions};
use crate::market::batch_sink::SocketBatchSink;
use crate::market::batcher::{self, PendingPrices};
use crate::market::feed::Feed;
use crate::market::groups::PriceGroups;
use crate::market::latest::LatestPrices;
use crate::metrics::{
    CHAT_MEMORY_BYTES, CHAT_ROOMS_EVICTED, FANOUT_DROPPED, Metrics, RUNTIME_BUSY, WEBHOOK_DROPPED,
    WEBHOOK_FAILED, WEBHOOK_SENT,
};
use crate::node::admin_feed;
use crate::node::runtime_load::RuntimeLoad;
use crate::node::stats::NodeStats;
use crate::rate_limit::{RateLimitRules, UserLimiters};
use crate::realtime::{self, Realtime};
use crate::recovery::memory::MemoryHistory;
use crate::recovery::redis::RedisHistory;
use crate::recovery::{self, History, Recovery};
use crate::server;
use crate::server::conn::{Connections, Timeouts};
use crate::server::forward::Forwarding;
use crate::sessions::UserSessions;
use crate::store::ChatStore;
use crate::store::memory::{MemoryLimits, MemoryMetrics, MemoryStore};
use crate::store::redis::RedisStore;

/// Socket.IO's per-socket queue of outgoing packets; a socket that falls this
/// far behind gets packets dropped rather than growing memory.
const SOCKET_BUFFER_PACKETS: usize = 1024;
/// Initial WebSocket read buffer per connection (tungstenite grows it for
/// larger messages); engineioxide's default of 4 KiB is most of an idle
/// socket's memory for the small frames this server reads.
const WS_READ_BUFFER: usize = 1024;
/// How often the memory backend drops recoverable events past their TTL.
const RECOVERY_SWEEP: Duration = Duration::from_secs(10);
/// How long the whole shutdown may take before the process gives up waiting.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(8);
/// How long shutdown waits for Socket.IO WebSockets to end on their own.
const SEVER_WAIT: Duration = Duration::from_secs(3);

pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    tokens: TokenVerifier,
    readiness: Arc<Readiness>,
    tasks_shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    connections: Arc<Connections>,
    forwarding: Option<Arc<Forwarding>>,
    io: SocketIo,
}

/// Where state lives and how nodes reach each other, chosen once at start-up.
enum Backend {
    /// One node, everything in memory.
    Memory,
    /// Several nodes through one Redis or a Redis Cluster: pub/sub for the
    /// path across nodes, streams and hashes for chat.
    Redis {
        pubsub: RedisPubSub,
        health: Arc<RedisHealth>,
        store: Arc<RedisStore>,
        subscriber: JoinHandle<()>,
        /// Commands of the recovery streams and the latest prices.
        commands: Commands,
    },
}

impl Backend {
    async fn connect(
        config: &Config,
        metrics: &Arc<Metrics>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let Some(url) = &config.redis_url else {
            return Ok(Backend::Memory);
        };
        let target = RedisTarget::parse(url.expose()).map_err(anyhow::Error::msg)?;
        let health = Arc::new(RedisHealth::new(metrics));
        let (pubsub, subscriber) = RedisPubSub::connect(&target, health.clone(), shutdown.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach Redis at start-up: {e}"))?;
        let commands = target
            .commands()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach Redis at start-up: {e}"))?;
        let store = RedisStore::new(commands.clone(), config.chat_history_max as usize);
        Ok(Backend::Redis {
            pubsub,
            health,
            store: Arc::new(store),
            subscriber,
            commands,
        })
    }
}

/// The keys in force: configured, or generated for this run.
struct Secrets {
    tokens: TokenVerifier,
    publish_key: Secret,
    /// Refreshes the JWKS in the background, with `--jwks-url`.
    jwks_refresher: Option<JoinHandle<()>>,
    /// The publish key was generated for this run (printed once start-up succeeded).
    generated_key: bool,
}

impl Secrets {
    async fn from_config(config: &Config, shutdown: &CancellationToken) -> anyhow::Result<Self> {
        let (tokens, jwks_refresher) = keys::verifier(config, shutdown.clone()).await?;
        if let Some(key) = &config.publish_key {
            keys::warn_if_short("--publish-key", key);
        }
        let generated_key = config.publish_key.is_none();
        let publish_key = config.publish_key.clone().unwrap_or_else(random_secret);
        Ok(Self {
            tokens,
            publish_key,
            jwks_refresher,
            generated_key,
        })
    }

    /// Prints a generated publish key, once the node is sure to serve with it.
    fn announce(&self) {
        if self.generated_key {
            eprintln!(
                "roomcast: no --publish-key set; publish API key for this run: {}",
                self.publish_key.expose()
            );
        }
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let node = config.node_name();
        let tasks_shutdown = CancellationToken::new();
        let mut secrets = Secrets::from_config(&config, &tasks_shutdown).await?;
        let metrics = Arc::new(Metrics::new(&node));
        let backend = Backend::connect(&config, &metrics, &tasks_shutdown).await?;
        let wiring = Wiring {
            advertise: advertise_url(&config, local_addr),
            config: &config,
            node: node.clone(),
            secrets: &secrets,
            metrics: metrics.clone(),
            shutdown: tasks_shutdown.clone(),
        };
        let mut wired = wiring.wire(backend).await?;
        wired.tasks.extend(secrets.jwks_refresher.take());
        let connections = Arc::new(Connections::new(
            Timeouts {
                header: Duration::from_secs(config.header_timeout_s),
                idle: Duration::from_secs(config.idle_timeout_s),
                body: Duration::from_secs(config.body_timeout_s),
            },
            config.max_body,
            config
                .max_connections_per_ip
                .unwrap_or_else(server::conn::default_per_ip_limit),
            &metrics,
        ));
        secrets.announce();
        tracing::info!(addr = %local_addr, node = %node, redis = config.redis_url.is_some(), "listening");
        Ok(Self {
            listener,
            local_addr,
            router: wired.router,
            tokens: secrets.tokens,
            readiness: wired.readiness,
            tasks_shutdown,
            tasks: wired.tasks,
            connections,
            forwarding: wired.forwarding,
            io: wired.io,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The user token verifier in force (its `signer()` mints HS256 tokens).
    pub fn tokens(&self) -> &TokenVerifier {
        &self.tokens
    }

    /// Serves until `shutdown` resolves, then drains and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop_accepting = CancellationToken::new();
        let server = tokio::spawn(server::serve::serve(
            self.listener,
            self.router,
            self.connections.clone(),
            self.forwarding,
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
        let _ = tokio::time::timeout_at(deadline, self.io.close()).await;
        match tokio::time::timeout_at(deadline, server).await {
            Ok(Ok(())) => tracing::info!("stopped"),
            Ok(Err(e)) => return Err(e).context("server task failed"),
            Err(_) => tracing::warn!("stopped with connections still open after the shutdown budget"),
        }
        Ok(())
    }
}

fn socket_io_builder(config: &Config) -> socketioxide::SocketIoBuilder {
    // An incomplete binary packet is bounded in size, count and time.
    let parser = ParserConfig::common()
        .max_incoming_binary_buf_size(config.max_payload as usize)
        .max_incoming_binaries(config.max_binary_attachments as usize)
        .packet_completion_timeout(Duration::from_secs(config.binary_packet_timeout_s));
    SocketIo::builder()
        .with_parser(parser)
        .max_payload(config.max_payload)
        .ws_max_message_size(config.max_payload as usize)
        .ws_max_frame_size(config.max_payload as usize)
        .max_buffer_size(SOCKET_BUFFER_PACKETS)
        .ws_read_buffer_size(WS_READ_BUFFER)
}

/// This node's address for other nodes: `--advertise-url`, else the bound
/// address unless it is 0.0.0.0 or [::].
fn advertise_url(config: &Config, local_addr: SocketAddr) -> Option<NodeUrl> {
    let url = config
        .advertise_url
        .clone()
        .or_else(|| (!local_addr.ip().is_unspecified()).then(|| NodeUrl::from_addr(local_addr)));
    if url.is_none() && config.redis_url.is_some() {
        tracing::warn!(
            "no --advertise-url and --listen is a wildcard address: other nodes cannot forward \
             long-polling requests here, so polling clients need sticky sessions"
        );
    }
    url
}

/// What start-up needs to put the node together.
struct Wiring<'a> {
    /// This node's address for other nodes (forwarding of polling sessions).
    advertise: Option<NodeUrl>,
    config: &'a Config,
    node: String,
    secrets: &'a Secrets,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

struct Wired {
    router: Router,
    readiness: Arc<Readiness>,
    tasks: Vec<JoinHandle<()>>,
    /// With Redis: Socket.IO requests of sessions held by another node go there.
    forwarding: Option<Arc<Forwarding>>,
    io: SocketIo,
}

/// The chat side: the service and what delivers its output.
struct ChatParts {
    chat: Arc<Chat>,
    bus: Arc<ChatBus>,
    hub: Arc<PlainHub>,
    backlog: Arc<ChatBacklog>,
}

/// This node's figures and state, for the HTTP side.
struct NodeParts {
    stats: Arc<NodeStats>,
    readiness: Arc<Readiness>,
    runtime_load: Arc<RuntimeLoad>,
}

/// The rate limits in force: per socket and per user.
struct Limits {
    socket: Arc<RateLimitRules>,
    user: Arc<UserLimiters>,
}

/// What the backend chosen at start-up gives the rest of the wiring.
struct BackendParts {
    store: Arc<dyn ChatStore>,
    fanout: Option<Fanout>,
    redis: Option<(RedisPubSub, Arc<RedisHealth>)>,
    history: History,
    latest: LatestPrices,
    forwarding: Option<Arc<Forwarding>>,
    presence: Presence,
}

/// The market side: the feed, and what the batcher needs.
struct MarketParts {
    feed: Feed,
    pending: Arc<PendingPrices>,
    price_groups: Arc<PriceGroups>,
    batch_interval: Duration,
}

impl Wiring<'_> {
    /// Wires every part on top of `backend`; spawns the background tasks.
    async fn wire(self, backend: Backend) -> anyhow::Result<Wired> {
        let (layer, io) = socket_io_builder(self.config).build_layer();
        let mut tasks = Vec::new();
        let origin = format!(
            "{}/{}",
            self.node,
            random_secret().expose().get(..12).unwrap_or_default()
        );
        let BackendParts {
            store,
            fanout,
            redis,
            history,
            latest,
            forwarding,
            presence,
        } = self.backend_parts(backend, &origin, &mut tasks);
        let presence_timeout = Duration::from_secs(self.config.presence_timeout_s);
        let admin = self.admin_ui(&io, fanout.clone(), &mut tasks);
        let recovery = Arc::new(Recovery::new(io.clone(), history, self.metrics.clone()));
        tasks.push(
            recovery
                .clone()
                .spawn_sweeper(RECOVERY_SWEEP, self.shutdown.clone()),
        );
        let latest = Arc::new(latest);
        let chat = self.chat(&io, store, fanout.clone(), Arc::new(presence), &mut tasks);
        tasks.push(spawn_presence_heartbeat(
            chat.chat.clone(),
            presence_timeout / HEARTBEATS_PER_TIMEOUT,
            self.shutdown.clone(),
        ));
        let market = self.market(&io, fanout.clone(), latest.clone(), recovery.clone());
        let rate_limits = Arc::new(self.config.rate_limit.clone());
        let user_limits = Arc::new(UserLimiters::new(self.config.user_rate_limit.0.clone()));
        realtime::register(
            &io,
            Arc::new(Realtime {
                tokens: self.secrets.tokens.clone(),
                rate_limits: rate_limits.clone(),
                user_limits: user_limits.clone(),
                metrics: self.metrics.clone(),
                price_groups: market.price_groups.clone(),
                max_subscriptions: self.config.max_subscriptions as usize,
                public_symbols: self.config.public_symbols.clone(),
                chat: chat.chat.clone(),
                admin: admin.clone(),
                latest,
                recovery: recovery.clone(),
            }),
        );
        let node_stats = Arc::new(NodeStats::new(
            io.clone(),
            self.metrics.clone(),
            self.node.clone(),
        ));
        tasks.extend(self.spawn_node_tasks(&io, &market, &chat, &node_stats, fanout.clone()));
        let runtime_load = Arc::new(RuntimeLoad::default());
        tasks.push(
            runtime_load
                .clone()
                .spawn_sampler(self.metrics.gauge(RUNTIME_BUSY, vec![]), self.shutdown.clone()),
        );
        let readiness = Arc::new(Readiness::new(redis.as_ref().map(|(_, health)| health.clone())));
        let sessions = UserSessions {
            io: io.clone(),
            plain: chat.hub.clone(),
            fanout: fanout.clone(),
        };
        if let Some((pubsub, health)) = redis {
            let delivery = LocalDelivery {
                io: io.clone(),
                feed: market.feed.clone(),
                chat: chat.bus.clone(),
                recovery,
                metrics: self.metrics.clone(),
                sessions: sessions.clone(),
                admin: admin.clone(),
            };
            let cross_node = self.spawn_cross_node(pubsub, &health, delivery, chat.chat.clone(), origin);
            tasks.extend(cross_node.await?);
        }
        if self.config.demo {
            tracing::warn!(
                "DEMO MODE: a synthetic market feed is running and GET /api/v1/demo/token hands out \
                 user and admin tokens to anyone. Never use --demo in production."
            );
            tasks.push(demo::feed::spawn(
                market.feed.clone(),
                io.clone(),
                self.shutdown.clone(),
            ));
        }
        let limits = Limits {
            socket: rate_limits,
            user: user_limits,
        };
        let node = NodeParts {
            stats: node_stats,
            readiness: readiness.clone(),
            runtime_load,
        };
        let state = self.app_state(market.feed, chat, node, sessions, limits);
        let options = HttpOptions {
            cors: &self.config.cors_origin,
            max_body: self.config.max_body,
            extra_routes: extra_routes(self.config, admin.is_some()),
            demo: self.config.demo,
            admin_ui: admin.is_some(),
        };
        Ok(Wired {
            router: http::app(state, layer, options),
            readiness,
            tasks,
            forwarding,
            io,
        })
    }

    /// What the backend gives every part: the chat store, the fanout, the
    /// Redis parts, recovery history, latest prices, session forwarding and
    /// presence (memory: local ones).
    fn backend_parts(&self, backend: Backend, origin: &str, tasks: &mut Vec<JoinHandle<()>>) -> BackendParts {
        let limits = recovery::Limits {
            max_events: self.config.recovery_max_events as usize,
            ttl_ms: self.config.recovery_ttl_s * 1000,
        };
        let mut forwarding = None;
        let presence_timeout = Duration::from_secs(self.config.presence_timeout_s);
        let mut presence = Presence::local();
        let (store, fanout, redis, history, latest): (Arc<dyn ChatStore>, _, _, _, _) = match backend {
            Backend::Memory => (
                Arc::new(self.memory_store()),
                None,
                None,
                History::Memory(MemoryHistory::new(limits)),
                LatestPrices::in_memory(),
            ),
            Backend::Redis {
                pubsub,
                health,
                store,
                subscriber,
                commands,
            } => {
                tasks.push(subscriber);
                let dropped = self.metrics.counter(FANOUT_DROPPED, vec![]);
                let (fanout, task) =
                    Fanout::spawn(pubsub.clone(), origin.to_owned(), dropped, self.shutdown.clone());
                tasks.push(task);
                let owners = Arc::new(SessionOwners::new(commands.clone(), self.advertise.clone()));
                tasks.push(owners.clone().spawn_refresher(self.shutdown.clone()));
                forwarding = Some(Arc::new(Forwarding::new(
                    owners,
                    self.config.max_payload,
                    &self.metrics,
                )));
                presence = Presence::shared(SharedPresence::new(
                    commands.clone(),
                    origin.to_owned(),
                    presence_timeout,
                ));
                let history = History::Redis(RedisHistory::new(commands.clone(), health.clone(), limits));
                let (latest, writer) =
                    LatestPrices::with_redis(commands, health.clone(), self.shutdown.clone());
                tasks.push(writer);
                (
                    store as Arc<dyn ChatStore>,
                    Some(fanout),
                    Some((pubsub, health)),
                    history,
                    latest,
                )
            }
        };
        BackendParts {
            store,
            fanout,
            redis,
            history,
            latest,
            forwarding,
            presence,
        }
    }

    /// What arrives from other nodes and services is delivered here; chat
    /// members catch up after each reconnect of the Redis subscription.
    async fn spawn_cross_node(
        &self,
        pubsub: RedisPubSub,
        health: &RedisHealth,
        delivery: LocalDelivery,
        chat: Arc<Chat>,
        origin: String,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let mut tasks = vec![spawn_chat_catch_up(chat, health, self.shutdown.clone())];
        let consumers = Consumers {
            pubsub,
            dispatcher: Arc::new(delivery),
            metrics: self.metrics.clone(),
            origin,
            bridges: self.config.redis_channels.clone(),
        };
        let readers = consumers.spawn(self.shutdown.clone()).await;
        tasks.extend(readers.map_err(anyhow::Error::msg)?);
        Ok(tasks)
    }

    /// The Socket.IO Admin UI's `/admin` namespace, with `--admin-ui-password`.
    fn admin_ui(
        &self,
        io: &SocketIo,
        fanout: Option<Fanout>,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> Option<Arc<AdminUi>> {
        let hash = self.config.admin_ui_password.clone()?;
        let (admin, admin_tasks) = AdminUi::spawn(
            io,
            self.node.clone(),
            self.config.admin_ui_mode,
            hash,
            fanout,
            self.shutdown.clone(),
        );
        tasks.extend(admin_tasks);
        Some(admin)
    }

    /// What the HTTP handlers share.
    fn app_state(
        &self,
        feed: Feed,
        chat: ChatParts,
        node: NodeParts,
        sessions: UserSessions,
        limits: Limits,
    ) -> AppState {
        let Limits {
            socket: rate_limits,
            user: user_limits,
        } = limits;
        let NodeParts {
            stats: node_stats,
            readiness,
            runtime_load,
        } = node;
        AppState {
            feed,
            publish_key: PublishKey(Arc::new(self.secrets.publish_key.clone())),
            user_tokens: UserTokens {
                verifier: self.secrets.tokens.clone(),
                failures: self.metrics.auth_failures.clone(),
            },
            metrics: self.metrics.clone(),
            node_stats,
            readiness: readiness.clone(),
            chat: chat.chat.clone(),
            user_limits: user_limits.clone(),
            runtime_load,
            sessions,
            plain_ws: PlainWs {
                tokens: self.secrets.tokens.clone(),
                chat: chat.chat,
                hub: chat.hub,
                metrics: self.metrics.clone(),
                rate_limits,
                user_limits,
                max_payload: self.config.max_payload as usize,
                shutdown: self.shutdown.clone(),
                keepalive: Keepalive {
                    interval: Duration::from_millis(self.config.ws_ping_interval_ms),
                    timeout: Duration::from_millis(self.config.ws_ping_timeout_ms),
                },
            },
        }
    }

    fn memory_store(&self) -> MemoryStore {
        let config = self.config;
        MemoryStore::new(
            MemoryLimits {
                max_len: config.chat_history_max as usize,
                max_rooms: config.chat_memory_max_rooms as usize,
                max_bytes: config.chat_memory_max_bytes as usize,
            },
            MemoryMetrics {
                rooms_evicted: self.metrics.counter(CHAT_ROOMS_EVICTED, Vec::new()),
                bytes: self.metrics.gauge(CHAT_MEMORY_BYTES, Vec::new()),
            },
        )
    }

    fn chat_gate(&self) -> ChatGate {
        let config = self.config;
        ChatGate {
            authorizer: config.chat_authorizer.clone().map(|url| {
                Authorizer::new(
                    url,
                    self.secrets.publish_key.clone(),
                    Duration::from_secs(config.chat_authorizer_cache_s),
                )
            }),
            open: config.chat_open,
        }
    }

    fn chat(
        &self,
        io: &SocketIo,
        store: Arc<dyn ChatStore>,
        fanout: Option<Fanout>,
        presence: Arc<Presence>,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> ChatParts {
        let hub = Arc::new(PlainHub::new(self.config.ws_max_queued_bytes as usize));
        let backlog = Arc::new(ChatBacklog::new(self.config.socket_max_queued_bytes as usize));
        let bus = Arc::new(ChatBus {
            io: io.clone(),
            plain: hub.clone(),
            fanout,
            metrics: self.metrics.clone(),
            backlog: backlog.clone(),
            last_delivered: Default::default(),
            recently_delivered: Default::default(),
        });
        let webhook = self.config.chat_webhook_url.clone().map(|url| {
            let worker = Worker {
                url,
                key: self.secrets.publish_key.clone(),
                store: store.clone(),
                presence: presence.clone(),
                metrics: WebhookMetrics {
                    sent: self.metrics.counter(WEBHOOK_SENT, vec![]),
                    failed: self.metrics.counter(WEBHOOK_FAILED, vec![]),
                    dropped: self.metrics.counter(WEBHOOK_DROPPED, vec![]),
                },
            };
            let (webhook, task) = Webhook::spawn(worker, self.shutdown.clone());
            tasks.push(task);
            webhook
        });
        ChatParts {
            chat: Arc::new(Chat::new(store, bus.clone(), self.chat_gate(), presence, webhook)),
            bus,
            hub,
            backlog,
        }
    }

    fn market(
        &self,
        io: &SocketIo,
        fanout: Option<Fanout>,
        latest: Arc<LatestPrices>,
        recovery: Arc<Recovery>,
    ) -> MarketParts {
        let batch_interval = Duration::from_millis(self.config.batch_interval_ms);
        let pending = Arc::new(PendingPrices::default());
        MarketParts {
            feed: Feed::new(
                io.clone(),
                pending.clone(),
                self.metrics.clone(),
                fanout,
                latest,
                recovery,
            ),
            pending,
            price_groups: Arc::new(PriceGroups::new(batcher::slices_for(batch_interval))),
            batch_interval,
        }
    }

    /// The batcher, the admin feed and the chat backlog's retries.
    fn spawn_node_tasks(
        &self,
        io: &SocketIo,
        market: &MarketParts,
        chat: &ChatParts,
        node_stats: &Arc<NodeStats>,
        fanout: Option<Fanout>,
    ) -> Vec<JoinHandle<()>> {
        vec![
            batcher::spawn(
                market.batch_interval,
                market.pending.clone(),
                market.price_groups.clone(),
                SocketBatchSink {
                    io: io.clone(),
                    metrics: self.metrics.clone(),
                },
                self.shutdown.clone(),
            ),
            admin_feed::spawn(
                node_stats.clone(),
                io.clone(),
                self.metrics.clone(),
                fanout,
                self.config.metrics_interval(),
                self.shutdown.clone(),
            ),
            chat.backlog
                .clone()
                .spawn_retry(io.clone(), self.shutdown.clone()),
        ]
    }
}

/// Refreshes this node's chat presence and sweeps out dead nodes' users.
fn spawn_presence_heartbeat(chat: Arc<Chat>, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => chat.presence_heartbeat().await,
            }
        }
    })
}

/// Routes merged in front of the API: the demo's token endpoint, the Admin UI.
fn extra_routes(config: &Config, admin_ui: bool) -> Option<Router<AppState>> {
    let demo_tokens = demo::token::Policy {
        admin_anywhere: config.demo_admin_tokens_anywhere,
    };
    let routes = [
        config.demo.then(|| demo::token::router(demo_tokens)),
        admin_ui.then(http::admin_ui::router),
    ];
    routes.into_iter().flatten().reduce(Router::merge)
}

/// After each reconnect of the Redis subscription, chat members on this node
/// get what was published while it was down (see `Chat::catch_up`).
fn spawn_chat_catch_up(chat: Arc<Chat>, health: &RedisHealth, shutdown: CancellationToken) -> JoinHandle<()> {
    let mut reconnects = health.watch_reconnects();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = reconnects.changed() => if changed.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
            chat.catch_up().await;
        }
    })
}

fn random_secret() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
