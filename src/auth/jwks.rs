//! An identity provider's key set (`--jwks-url`): keys by `kid`, fetched at
//! start-up, refreshed in the background every [`REFRESH_EVERY`] and when a
//! token names an unknown `kid` (at most once per [`UNKNOWN_KID_MIN_INTERVAL`],
//! however many such tokens arrive). A failed refresh keeps the last keys in
//! force; a successful one replaces them (a key the provider removed is
//! revoked).
//!
//! Reading the keys is a lock-free-in-practice snapshot (`RwLock<Arc<_>>`,
//! held for a pointer copy), so verifying a token with a known `kid` never
//! waits for the network.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::keys::{self, VerifyingKey};

/// Period of the background refresh.
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// Shortest time between two fetches triggered by unknown `kid`s.
pub const UNKNOWN_KID_MIN_INTERVAL: Duration = Duration::from_secs(3);
/// One fetch may take this long (connect, answer and body).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set document read, in bytes.
const MAX_BODY: usize = 1 << 20;
/// Most keys kept from one key set.
const MAX_KEYS: usize = 100;

/// The keys in force, by `kid`.
pub type KeyMap = HashMap<String, VerifyingKey>;

/// Why a fetch failed; the last keys stay in force.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot fetch {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is not a JWKS document ({reason})")]
    NotJwks { url: String, reason: String },
    #[error("{url} has no RS256 (RSA) or ES256 (EC P-256) signing key with a kid")]
    NoUsableKey { url: String },
}

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Arc<KeyMap>>,
    /// Serialises fetches; holds when the last one started.
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jwks({})", self.url)
    }
}

impl Jwks {
    /// Fetches the key set once; an unreachable endpoint or a set without a
    /// usable key is an error (start-up fails on it).
    pub async fn fetch(url: &str) -> Result<Arc<Self>, JwksError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| JwksError::Unreachable {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let jwks = Arc::new(Self {
            url: url.to_owned(),
            client,
            keys: RwLock::new(Arc::new(KeyMap::new())),
            last_fetch: Mutex::new(None),
        });
        {
            let mut last = jwks.last_fetch.lock().await;
            *last = Some(Instant::now());
            let keys = jwks.download().await?;
            jwks.install(keys);
        }
        Ok(jwks)
    }

    /// The keys in force now.
    pub fn keys(&self) -> Arc<KeyMap> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Called with a token whose `kid` is not in the set, received at
    /// `asked_at`: returns once a fetch that started at or after `asked_at`
    /// has finished (sharing one fetch with every other such caller, waiting
    /// for [`UNKNOWN_KID_MIN_INTERVAL`] since the previous one). Callers bound
    /// the wait with a timeout; the fetch runs in its own task, so a caller
    /// that gives up does not cancel it for the others.
    pub async fn refresh_for_unknown_kid(self: &Arc<Self>, asked_at: Instant) {
        let jwks = self.clone();
        let fetch = tokio::spawn(async move {
            let mut last = jwks.last_fetch.lock().await;
            if last.is_some_and(|started| started >= asked_at) {
                return; // a fetch started after this token arrived: use its keys
            }
            if let Some(started) = *last {
                tokio::time::sleep_until(started + UNKNOWN_KID_MIN_INTERVAL).await;
            }
            *last = Some(Instant::now());
            jwks.refresh_locked().await;
        });
        let _ = fetch.await;
    }

    /// Refreshes every [`REFRESH_EVERY`] until `shutdown`.
    pub fn spawn_refresher(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(REFRESH_EVERY) => {}
                }
                let mut last = self.last_fetch.lock().await;
                *last = Some(Instant::now());
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.refresh_locked() => {}
                }
            }
        })
    }

    async fn refresh_locked(&self) {
        match self.download().await {
            Ok(keys) => self.install(keys),
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; the last keys stay in force"),
        }
    }

    fn install(&self, keys: KeyMap) {
        let kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        tracing::info!(url = %self.url, ?kids, "JWKS keys in force");
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    async fn download(&self) -> Result<KeyMap, JwksError> {
        let unreachable = |e: reqwest::Error| JwksError::Unreachable {
            url: self.url.clone(),
            reason: root_cause(&e),
        };
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(JwksError::Status {
                url: self.url.clone(),
                status: response.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(JwksError::NotJwks {
                    url: self.url.clone(),
                    reason: format!("larger than {MAX_BODY} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_key_set(&body).map_err(|reason| JwksError::NotJwks {
            url: self.url.clone(),
            reason,
        })?;
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey {
                url: self.url.clone(),
            });
        }
        Ok(keys)
    }
}

/// The usable keys of a JWKS document (`{ "keys": [...] }`); keys roomcast
/// cannot use (encryption keys, other algorithms) are skipped one by one.
pub fn parse_key_set(body: &[u8]) -> Result<KeyMap, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|_| "expected a JSON object with a keys array".to_owned())?;
    let mut keys = KeyMap::new();
    for value in document.keys {
        if keys.len() == MAX_KEYS {
            tracing::warn!("JWKS has more than {MAX_KEYS} keys; the rest are ignored");
            break;
        }
        match keys::from_jwk(value) {
            Ok((kid, key)) => {
                keys.insert(kid, key);
            }
            Err(reason) => tracing::debug!(%reason, "JWKS key skipped"),
        }
    }
    Ok(keys)
}

/// The innermost cause of `e` ("Connection refused (os error 111)"), which
/// says what went wrong without repeating the URL.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut root = e;
    while let Some(cause) = root.source() {
        root = cause;
    }
    root.to_string()
}
