//! Which node holds which Engine.IO session, so a load balancer needs no
//! sticky sessions (`--redis-url`): a node that answers a long-polling
//! handshake registers the new session's id under
//! `roomcast:sid:{<sid>}` = its `--advertise-url`, with a TTL, and keeps the
//! key alive while the session keeps polling; a node that gets a request for
//! a session it does not hold looks the owner up here (`server::forward`
//! then forwards the request to it).
//!
//! A session's owner never changes, so an owner found in Redis is remembered
//! for [`REMEMBER_OWNER`]: the session's next requests are forwarded without
//! asking Redis again.
//!
//! Bounds: the local table holds the sessions this node registered and saw a
//! request of within [`SEEN_MAX`] (swept every [`REFRESH_EVERY`]); at most
//! [`REMEMBERED_MAX`] remembered owners; a key lives [`KEY_TTL`] after its
//! last refresh; every Redis call has [`REDIS_TIMEOUT`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::conn::Commands;
use axum::http::Uri;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Lifetime of a registration in Redis after its last refresh.
pub const KEY_TTL: Duration = Duration::from_secs(60);
/// How often the keys of live sessions are refreshed and the table swept.
pub const REFRESH_EVERY: Duration = Duration::from_secs(15);
/// A session with no request for this long is no longer polling here (it
/// upgraded to a WebSocket, or ended): its key is left to expire.
pub const SEEN_MAX: Duration = Duration::from_secs(60);
/// Longest wait for one Redis command of the registry.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an owner found in Redis is used without asking again.
pub const REMEMBER_OWNER: Duration = Duration::from_secs(30);
/// Most owners remembered at once (beyond: looked up every time until the next sweep).
const REMEMBERED_MAX: usize = 100_000;
/// Keys refreshed per pipeline.
const REFRESH_CHUNK: usize = 1000;
/// Longest session id accepted (engineioxide's are 16 characters).
const MAX_SID_LEN: usize = 64;

/// A node's address as other nodes reach it: `http://host:port`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUrl {
    /// `host:port`.
    authority: String,
}

impl NodeUrl {
    /// The address of a bound listener.
    pub fn from_addr(addr: std::net::SocketAddr) -> Self {
        Self {
            authority: addr.to_string(),
        }
    }

    /// `host:port`, to connect to.
    pub fn authority(&self) -> &str {
        &self.authority
    }
}

impl std::fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.authority)
    }
}

impl std::str::FromStr for NodeUrl {
    type Err = String;

    /// `http://host[:port][/]` (port 80 when left out); no path, query, user or https.
    fn from_str(value: &str) -> Result<Self, String> {
        let uri: Uri = value.parse().map_err(|_| "not a URL".to_owned())?;
        if uri.scheme_str() != Some("http") {
            return Err("expected http://host:port".to_owned());
        }
        let authority = uri.authority().ok_or("expected http://host:port")?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err("expected http://host:port".to_owned());
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err("expected http://host:port, without a path".to_owned());
        }
        Ok(Self {
            authority: format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80)),
        })
    }
}

/// An Engine.IO session id as it may appear in a key: base64url characters, bounded length.
pub fn valid_sid(sid: &str) -> bool {
    !sid.is_empty()
        && sid.len() <= MAX_SID_LEN
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The key of a session (its id is the hash tag: one slot per session on a cluster).
fn key(sid: &str) -> String {
    format!("roomcast:sid:{{{sid}}}")
}

/// Redis did not answer a registry command (in time).
#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {REDIS_TIMEOUT:?}")]
    Timeout,
}

/// The registry of session owners, as one node uses it.
pub struct SessionOwners {
    redis: Commands,
    /// This node's address; `None`: its sessions are not registered (other
    /// nodes cannot forward to it), though it still forwards to others.
    me: Option<NodeUrl>,
    /// Sessions this node registered → when a request of theirs last came.
    local: Mutex<HashMap<String, Instant>>,
    /// Sessions of other nodes → their owner, and when it was looked up.
    remembered: Mutex<HashMap<String, (NodeUrl, Instant)>>,
}

impl SessionOwners {
    pub fn new(redis: Commands, me: Option<NodeUrl>) -> Self {
        Self {
            redis,
            me,
            local: Mutex::default(),
            remembered: Mutex::default(),
        }
    }

    /// Whether this node registered `sid` (and notes that it is still in use).
    pub fn holds(&self, sid: &str) -> bool {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        match local.get_mut(sid) {
            Some(seen) => {
                *seen = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Registers a session this node just created; done before the client
    /// learns its id, so its next request finds the owner wherever it lands.
    /// Without an address of its own, the node only notes that it holds it.
    pub async fn register(&self, sid: &str) -> Result<(), OwnersError> {
        if !valid_sid(sid) {
            return Ok(());
        }
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sid.to_owned(), Instant::now());
        let Some(me) = &self.me else { return Ok(()) };
        let mut set = redis::cmd("SET");
        set.arg(key(sid))
            .arg(me.to_string())
            .arg("EX")
            .arg(KEY_TTL.as_secs());
        let mut redis = self.redis.clone();
        tokio::time::timeout(REDIS_TIMEOUT, set.query_async::<()>(&mut redis))
            .await
            .map_err(|_| OwnersError::Timeout)??;
        Ok(())
    }

    /// The node holding `sid`, when another node registered it. A value that
    /// is not a node address, or is this node's, gives `None`.
    pub async fn owner(&self, sid: &str) -> Result<Option<NodeUrl>, OwnersError> {
        if !valid_sid(sid) {
            return Ok(None);
        }
        if let Some(owner) = self.remembered(sid) {
            return Ok(Some(owner));
        }
        let mut redis = self.redis.clone();
        let value: Option<String> = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::cmd("GET").arg(key(sid)).query_async(&mut redis),
        )
        .await
        .map_err(|_| OwnersError::Timeout)??;
        let owner = value
            .and_then(|v| v.parse::<NodeUrl>().ok())
            .filter(|node| Some(node) != self.me.as_ref());
        if let Some(owner) = &owner {
            let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
            if remembered.len() < REMEMBERED_MAX {
                remembered.insert(sid.to_owned(), (owner.clone(), Instant::now()));
            }
        }
        Ok(owner)
    }

    fn remembered(&self, sid: &str) -> Option<NodeUrl> {
        let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        let (owner, at) = remembered.get(sid)?;
        (at.elapsed() < REMEMBER_OWNER).then(|| owner.clone())
    }

    /// Every [`REFRESH_EVERY`]: forgets sessions not seen for [`SEEN_MAX`]
    /// and renews the keys of the rest.
    pub fn spawn_refresher(self: std::sync::Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                let live = self.sweep();
                if let Err(e) = self.refresh(&live).await {
                    tracing::warn!(error = %e, sessions = live.len(), "session owner keys not refreshed");
                }
            }
        })
    }

    /// Drops sessions not seen for [`SEEN_MAX`] and owners remembered for
    /// [`REMEMBER_OWNER`]; returns this node's live sessions.
    fn sweep(&self) -> Vec<String> {
        let now = Instant::now();
        self.remembered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (_, at)| now.duration_since(*at) < REMEMBER_OWNER);
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local.retain(|_, seen| now.duration_since(*seen) < SEEN_MAX);
        local.keys().cloned().collect()
    }

    async fn refresh(&self, sids: &[String]) -> Result<(), OwnersError> {
        let Some(me) = &self.me else { return Ok(()) };
        let me = me.to_string();
        // On a Redis Cluster the keys of one pipeline must share a slot: one key a pipeline.
        let chunk_len = if self.redis.is_cluster() { 1 } else { REFRESH_CHUNK };
        for chunk in sids.chunks(chunk_len) {
            let mut pipe = redis::pipe();
            for sid in chunk {
                pipe.cmd("SET")
                    .arg(key(sid))
                    .arg(&me)
                    .arg("EX")
                    .arg(KEY_TTL.as_secs())
                    .ignore();
            }
            let mut redis = self.redis.clone();
            tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut redis))
                .await
                .map_err(|_| OwnersError::Timeout)??;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_are_plain_http_host_and_port() {
        let url: NodeUrl = "http://10.0.0.5:3000".parse().unwrap();
        assert_eq!(url.authority(), "10.0.0.5:3000");
        assert_eq!(url.to_string(), "http://10.0.0.5:3000");
        assert_eq!(
            "http://node-1/".parse::<NodeUrl>().unwrap().authority(),
            "node-1:80"
        );
        assert_eq!(
            "http://[::1]:3000".parse::<NodeUrl>().unwrap().to_string(),
            "http://[::1]:3000"
        );
        for bad in [
            "https://node:3000",
            "node:3000",
            "http://node:3000/socket.io/",
            "http://node:3000/?x=1",
            "http://user@node:3000",
            "",
        ] {
            assert!(bad.parse::<NodeUrl>().is_err(), "{bad}");
        }
        let addr: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(NodeUrl::from_addr(addr).to_string(), "http://127.0.0.1:4000");
    }

    #[test]
    fn only_base64url_ids_make_keys() {
        assert!(valid_sid("AbC-_09xyzAbC-_0"));
        assert_eq!(key("AbC-_09xyzAbC-_0"), "roomcast:sid:{AbC-_09xyzAbC-_0}");
        for bad in ["", "a:b", "a}b", "a%20", &"a".repeat(65)] {
            assert!(!valid_sid(bad), "{bad}");
        }
    }
}
