//! The one `Config`: every option is a CLI flag and a `ROOMCAST_*` environment
//! variable (CONTRACT §1). Parsed and validated once at start-up; secrets are
//! wrapped in [`Secret`] so they never reach a log through `Debug`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use axum::http::HeaderValue;

use crate::cluster::consumers::Bridge;
use crate::rate_limit::RateLimitRules;

/// Command line and environment configuration of one roomcast node.
#[derive(Debug, Clone, Parser)]
#[command(name = "roomcast", version, about = "Socket.IO-compatible realtime server")]
pub struct Config {
    /// Address for Socket.IO, the HTTP API, the console and /metrics.
    #[arg(long, env = "ROOMCAST_LISTEN", default_value = "0.0.0.0:3000")]
    pub listen: SocketAddr,

    /// Redis URL. Unset: single node with in-memory state.
    #[arg(long, env = "ROOMCAST_REDIS_URL")]
    pub redis_url: Option<Secret>,

    /// HS256 secret for user tokens. Unset: a random secret (dev only).
    #[arg(long, env = "ROOMCAST_JWT_SECRET")]
    pub jwt_secret: Option<Secret>,

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

    /// Redis Pub/Sub channels bridged to clients (`channel` or `channel=room`).
    #[arg(long, env = "ROOMCAST_REDIS_CHANNELS", value_delimiter = ',')]
    pub redis_channels: Vec<Bridge>,

    /// Built-in synthetic market feed for trying roomcast out.
    #[arg(long, env = "ROOMCAST_DEMO")]
    pub demo: bool,

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

    /// Price and trades rooms one socket may hold together.
    #[arg(long, env = "ROOMCAST_MAX_SUBSCRIPTIONS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_subscriptions: u64,
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
        assert_eq!(config.cors_origin, CorsOrigins::Any);
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
        assert!(Config::try_parse_from(["roomcast", "--cors-origin", ","]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--cors-origin", "bad\norigin"]).is_err());
        assert!(Config::try_parse_from(["roomcast", "--redis-channels", "roomcast:x"]).is_err());
    }
}
