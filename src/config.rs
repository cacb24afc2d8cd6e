//! The one `Config`: every option is a CLI flag and a `ROOMCAST_*` environment
//! variable (CONTRACT §1). Parsed and validated once at start-up; secrets are
//! wrapped in [`Secret`] so they never reach a log through `Debug`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use axum::http::HeaderValue;

use crate::auth::patterns::Patterns;
use crate::cluster::consumers::Bridge;
use crate::cluster::owners::NodeUrl;
use crate::rate_limit::{RateLimitRules, UserRateLimitRules};

/// Command line and environment configuration of one roomcast node.
#[derive(Debug, Clone, Parser)]
#[command(name = "roomcast", version, about = "Socket.IO-compatible realtime server")]
pub struct Config {
    /// Address for Socket.IO, the HTTP API, the console and /metrics.
    #[arg(long, env = "ROOMCAST_LISTEN", default_value = "0.0.0.0:3000")]
    pub listen: SocketAddr,

    /// Redis URL (`redis://host:port`), or a Redis Cluster
    /// (`redis+cluster://host:port[,host:port...]`). Unset: single node with in-memory state.
    #[arg(long, env = "ROOMCAST_REDIS_URL")]
    pub redis_url: Option<Secret>,

    /// This node's address as other nodes reach it (`http://host:port`), for
    /// forwarding long-polling requests to the node holding their session.
    /// Default: from --listen, unless that is 0.0.0.0 or [::].
    #[arg(long, env = "ROOMCAST_ADVERTISE_URL")]
    pub advertise_url: Option<NodeUrl>,

    /// HS256 secret for user tokens. Unset, and no other key either: a random secret (dev only).
    #[arg(long, env = "ROOMCAST_JWT_SECRET")]
    pub jwt_secret: Option<Secret>,

    /// Path of a PEM public key for user tokens: RSA (RS256) or EC P-256 (ES256).
    #[arg(long, env = "ROOMCAST_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<std::path::PathBuf>,

    /// An identity provider's JWKS endpoint: keys chosen by `kid`, fetched at
    /// start-up, refreshed every 5 minutes and on an unknown `kid`.
    #[arg(long, env = "ROOMCAST_JWKS_URL", value_parser = parse_http_url)]
    pub jwks_url: Option<String>,

    /// When set, a user token's `iss` must equal it.
    #[arg(long, env = "ROOMCAST_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// When set, a user token's `aud` (string or array) must contain it.
    #[arg(long, env = "ROOMCAST_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Bearer key for the publish API. Unset: a random key, printed once at start-up.
    #[arg(long, env = "ROOMCAST_PUBLISH_KEY")]
    pub publish_key: Option<Secret>,

    /// Allowed browser origins, comma separated; `*` allows any origin.
    #[arg(long, env = "ROOMCAST_CORS_ORIGIN", default_value = "*")]
    pub cors_origin: CorsOrigins,

    /// Name of this node in metrics and logs. Default: hostname-pid.
    #[arg(long, env = "ROOMCAST_NODE_ID")]
    pub node_id: Option<String>,

    /// Window of the `price:batch` coalescing, in milliseconds.
    #[arg(long, env = "ROOMCAST_BATCH_INTERVAL_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub batch_interval_ms: u64,

    /// Period of the `metrics` event to the `admin` room, in milliseconds.
    /// Default 5000; 1000 with --demo, so the console's charts fill at once.
    #[arg(long, env = "ROOMCAST_METRICS_INTERVAL_MS",
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub metrics_interval_ms: Option<u64>,

    /// Per-socket, per-event limits, e.g. `subscribe:price=20/s,chat:send=5/s,*=50/s`.
    /// Named rules override the defaults; `*` covers every other event.
    #[arg(long, env = "ROOMCAST_RATE_LIMIT", default_value = crate::rate_limit::DEFAULT_RULES)]
    pub rate_limit: RateLimitRules,

    /// Chat rooms are private: with this, any authenticated user may join any
    /// room whose access no `chat` claim or authorizer decides.
    #[arg(long, env = "ROOMCAST_CHAT_OPEN")]
    pub chat_open: bool,

    /// The app's backend that decides chat joins of tokens without a `chat`
    /// claim: POST `{ userId, roomId }`, 2xx allows, 403 refuses.
    #[arg(long, env = "ROOMCAST_CHAT_AUTHORIZER", value_parser = parse_http_url)]
    pub chat_authorizer: Option<String>,

    /// Seconds an authorizer answer is cached.
    #[arg(long, env = "ROOMCAST_CHAT_AUTHORIZER_CACHE_S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub chat_authorizer_cache_s: u64,

    /// Offline delivery hook: each stored chat message is POSTed here once,
    /// with the room's members who have no live connection in it
    /// (`{ roomId, message, recipients }`, signed with the publish key).
    #[arg(long, env = "ROOMCAST_CHAT_WEBHOOK_URL", value_parser = parse_http_url)]
    pub chat_webhook_url: Option<String>,

    /// Seconds after which a dead node's users are offline in chat presence
    /// (each node refreshes its own every third of it).
    #[arg(long, env = "ROOMCAST_PRESENCE_TIMEOUT_S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub presence_timeout_s: u64,

    /// Symbols anonymous sockets and tokens without a `symbols` claim may
    /// subscribe to (patterns, `*` matches any run of characters).
    #[arg(long, env = "ROOMCAST_PUBLIC_SYMBOLS", default_value = "*", value_parser = parse_patterns)]
    pub public_symbols: Patterns,

    /// Per-user, per-event limits on this node: all of a user's sockets, plain
    /// WebSocket connections and REST calls together; same syntax as --rate-limit.
    #[arg(long, env = "ROOMCAST_USER_RATE_LIMIT", default_value = crate::rate_limit::DEFAULT_USER_RULES)]
    pub user_rate_limit: UserRateLimitRules,

    /// Chat bytes one Socket.IO client may have waiting beyond its packet
    /// queue; a client further behind loses its transport (and reconnects).
    #[arg(long, env = "ROOMCAST_SOCKET_MAX_QUEUED_BYTES", default_value_t = 2 << 20,
          value_parser = clap::value_parser!(u64).range(1024..=(1 << 30)))]
    pub socket_max_queued_bytes: u64,

    /// Most binary attachments in one Socket.IO packet.
    #[arg(long, env = "ROOMCAST_MAX_BINARY_ATTACHMENTS", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_binary_attachments: u64,

    /// Seconds a Socket.IO packet may wait for its binary attachments before
    /// the connection is closed.
    #[arg(long, env = "ROOMCAST_BINARY_PACKET_TIMEOUT_S", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub binary_packet_timeout_s: u64,

    /// Redis Pub/Sub channels bridged to clients (`channel` or `channel=room`).
    #[arg(long, env = "ROOMCAST_REDIS_CHANNELS", value_delimiter = ',')]
    pub redis_channels: Vec<Bridge>,

    /// Built-in synthetic market feed for trying roomcast out.
    #[arg(long, env = "ROOMCAST_DEMO")]
    pub demo: bool,

    /// With --demo, hand admin tokens (`role=admin`) to clients outside
    /// loopback too (refused with 403 by default).
    #[arg(long, env = "ROOMCAST_DEMO_ADMIN_TOKENS_ANYWHERE")]
    pub demo_admin_tokens_anywhere: bool,

    /// Log format; default `text` on a terminal, `json` otherwise.
    #[arg(long, env = "ROOMCAST_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Largest Socket.IO packet / WebSocket message, in bytes.
    #[arg(long, env = "ROOMCAST_MAX_PAYLOAD", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u64).range(1024..=(64 << 20)))]
    pub max_payload: u64,

    /// Largest HTTP request body, in bytes (413 above).
    #[arg(long, env = "ROOMCAST_MAX_BODY", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u64).range(64..=(256 << 20)))]
    pub max_body: u64,

    /// Chat messages kept per room (older ones are trimmed).
    #[arg(long, env = "ROOMCAST_CHAT_HISTORY_MAX", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub chat_history_max: u64,

    /// Without Redis: chat rooms kept in memory; one more evicts the least recently used.
    #[arg(long, env = "ROOMCAST_CHAT_MEMORY_MAX_ROOMS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub chat_memory_max_rooms: u64,

    /// Without Redis: estimated bytes of chat kept in memory; over it, the least
    /// recently used rooms are evicted.
    #[arg(long, env = "ROOMCAST_CHAT_MEMORY_MAX_BYTES", default_value_t = 256 << 20,
          value_parser = clap::value_parser!(u64).range(65_536..=(1 << 40)))]
    pub chat_memory_max_bytes: u64,

    /// bcrypt hash of the Socket.IO Admin UI password (user `admin`). Set: the
    /// `/admin` namespace and the web app at `/admin-ui/` are on.
    #[arg(long, env = "ROOMCAST_ADMIN_UI_PASSWORD", value_parser = parse_bcrypt_hash)]
    pub admin_ui_password: Option<Secret>,

    /// `readonly`: the Admin UI sees every node but changes nothing;
    /// `development`: it can also disconnect sockets and make them join or leave rooms.
    #[arg(long, env = "ROOMCAST_ADMIN_UI_MODE", default_value = "readonly")]
    pub admin_ui_mode: AdminUiMode,

    /// A connection that has not sent a complete request head this long after
    /// it opened (or after the head's first byte) is closed, in seconds.
    #[arg(long, env = "ROOMCAST_HEADER_TIMEOUT_S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_s: u64,

    /// A connection with no request in flight is closed after this long, in
    /// seconds (Socket.IO and WebSocket sessions live by their heartbeat).
    #[arg(long, env = "ROOMCAST_IDLE_TIMEOUT_S", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_s: u64,

    /// A request body must have arrived whole this long after its head, in seconds (408 after).
    #[arg(long, env = "ROOMCAST_BODY_TIMEOUT_S", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_s: u64,

    /// Concurrent connections per client address; over it a new connection is
    /// closed at once. Default: half the open-file limit at start-up; 0: no cap.
    #[arg(long, env = "ROOMCAST_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,

    /// Price and trades rooms one socket may hold together.
    #[arg(long, env = "ROOMCAST_MAX_SUBSCRIPTIONS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_subscriptions: u64,

    /// Plain WebSocket (`/ws/chat`): ping a client silent for this long, in milliseconds.
    #[arg(long, env = "ROOMCAST_WS_PING_INTERVAL_MS", default_value_t = 25_000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub ws_ping_interval_ms: u64,

    /// Plain WebSocket: close a pinged client that sends nothing (no pong, no frame)
    /// for this long, in milliseconds.
    #[arg(long, env = "ROOMCAST_WS_PING_TIMEOUT_MS", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub ws_ping_timeout_ms: u64,

    /// Plain WebSocket: outgoing bytes one connection may have queued; a client
    /// that falls further behind is closed with 1008.
    #[arg(long, env = "ROOMCAST_WS_MAX_QUEUED_BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u64).range(1024..=(256 << 20)))]
    pub ws_max_queued_bytes: u64,

    /// Recoverable events kept per room for `resume` (trades, user notifications).
    #[arg(long, env = "ROOMCAST_RECOVERY_MAX_EVENTS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub recovery_max_events: u64,

    /// How long recoverable events are kept, in seconds.
    #[arg(long, env = "ROOMCAST_RECOVERY_TTL_S", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub recovery_ttl_s: u64,
}

impl Config {
    /// Period of the admin `metrics` event: as set, else 1 s with `--demo`, else 5 s.
    pub fn metrics_interval(&self) -> Duration {
        let default = if self.demo { 1000 } else { 5000 };
        Duration::from_millis(self.metrics_interval_ms.unwrap_or(default))
    }

    /// Defaults for embedding and tests: everything as with no flags, listening
    /// on an ephemeral loopback port.
    pub fn for_tests() -> Self {
        let mut config = Config::parse_from(["roomcast"]);
        config.listen = "127.0.0.1:0".parse().expect("static address");
        config
    }

    /// The node name: `--node-id`, else `hostname-pid`.
    pub fn node_name(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "roomcast".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// Comma-separated permission patterns.
fn parse_patterns(value: &str) -> Result<Patterns, String> {
    Patterns::new(value.split(',').map(str::trim).filter(|p| !p.is_empty())).map_err(|e| e.to_string())
}

/// An `http://` or `https://` URL.
fn parse_http_url(value: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(value.to_owned()),
        _ => Err("expected an http:// or https:// URL".to_owned()),
    }
}

/// `--cors-origin`: any origin, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<HeaderValue>),
}

impl std::str::FromStr for CorsOrigins {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let entries: Vec<&str> = s.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
        if entries.contains(&"*") {
            return Ok(Self::Any);
        }
        if entries.is_empty() {
            return Err("give at least one origin, or *".into());
        }
        entries
            .into_iter()
            .map(|o| HeaderValue::from_str(o).map_err(|_| format!("{o:?} is not a valid origin")))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::List)
    }
}

/// What the Admin UI may do (`--admin-ui-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdminUiMode {
    Readonly,
    Development,
}

/// A bcrypt hash (`$2a$`, `$2b$`, `$2x$`, `$2y$`), checked at start-up.
fn parse_bcrypt_hash(s: &str) -> Result<Secret, String> {
    s.parse::<bcrypt::HashParts>()
        .map(|_| Secret::new(s))
        .map_err(|_| "not a bcrypt hash (e.g. $2b$10$...)".to_owned())
}

/// Structured log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration value that must never be printed (keys, secrets, URLs with passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_flags_gives_contract_defaults() {
        let config = Config::parse_from(["roomcast"]);
        assert_eq!(config.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(config.batch_interval_ms, 100);
        assert_eq!(config.metrics_interval(), Duration::from_secs(5));
        let demo = Config::try_parse_from(["roomcast", "--demo"]).unwrap();
        assert_eq!(demo.metrics_interval(), Duration::from_secs(1));
        let set = Config::try_parse_from(["roomcast", "--demo", "--metrics-interval-ms", "300"]).unwrap();
        assert_eq!(set.metrics_interval(), Duration::from_millis(300));
        assert_eq!(config.max_payload, 1_048_576);
        assert_eq!(config.max_body, 1_048_576);
        assert_eq!(config.max_subscriptions, 200);
        assert_eq!(config.ws_ping_interval_ms, 25_000);
        assert_eq!(config.ws_ping_timeout_ms, 20_000);
        assert_eq!(config.ws_max_queued_bytes, 1_048_576);
        assert_eq!((config.recovery_max_events, config.recovery_ttl_s), (1000, 300));
        assert_eq!(config.cors_origin, CorsOrigins::Any);
        assert_eq!(
            (
                config.header_timeout_s,
                config.idle_timeout_s,
                config.body_timeout_s
            ),
            (30, 60, 60)
        );
        assert_eq!(config.max_connections_per_ip, None);
        assert!(config.redis_url.is_none() && config.jwt_secret.is_none());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = Config::parse_from(["roomcast", "--jwt-secret", "hunter2", "--publish-key", "k3y"]);
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("k3y"),
            "{printed}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::try_parse_from(["roomcast", "--listen", "nowhere"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--batch-interval-ms", "0"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--rate-limit", "chat:send=fast"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--jwt-secret", ""]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--jwks-url", "ftp://idp/keys"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--jwks-url", "idp/keys"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--jwks-url", "https://idp/keys"]).is_ok());
        assert!(Config::try_parse_from(["roomcast", "--cors-origin", ","]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--cors-origin", "bad\norigin"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--redis-channels", "roomcast:x"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--admin-ui-password", "plain"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--admin-ui-mode", "root"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--advertise-url", "https://node:3000"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--advertise-url", "http://node:3000"]).is_ok());
    }
}
