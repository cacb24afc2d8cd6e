//! The Admin UI login: user `admin` and the password whose bcrypt hash is
//! `--admin-ui-password`, or a session id from an earlier login on this node.
//! A refusal reads `invalid credentials`, the text the UI looks for.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use socketioxide::extract::SocketRef;
use tokio::sync::Semaphore;

use super::AdminUi;
use crate::clock;

pub const USERNAME: &str = "admin";
/// A session is good for a day (as the package's Redis store keeps it).
const SESSION_TTL_MS: u64 = 86_400_000;
/// Sessions kept at most; expired ones go first, then the oldest.
const MAX_SESSIONS: usize = 1024;
/// bcrypt checks at once (each takes ~50-100 ms of CPU at cost 10).
const CONCURRENT_CHECKS: usize = 2;

#[derive(Debug, thiserror::Error)]
#[error("invalid credentials")]
pub struct InvalidCredentials;

/// Set on a socket that logged in with the password: its new session id,
/// sent as the `session` event once it is connected.
#[derive(Debug, Clone)]
pub struct NewSession(pub String);

/// Session ids and when they expire (epoch ms).
pub struct Sessions {
    ids: Mutex<HashMap<String, u64>>,
    checks: Semaphore,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            ids: Mutex::default(),
            checks: Semaphore::new(CONCURRENT_CHECKS),
        }
    }
}

impl Sessions {
    fn valid(&self, id: &str) -> bool {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(id).is_some_and(|expires| *expires > clock::unix_millis())
    }

    fn create(&self) -> String {
        let id = format!("{:016x}", rand::random::<u64>());
        let now = clock::unix_millis();
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.retain(|_, expires| *expires > now);
        if ids.len() >= MAX_SESSIONS
            && let Some(oldest) = ids.iter().min_by_key(|(_, e)| **e).map(|(id, _)| id.clone())
        {
            ids.remove(&oldest);
        }
        ids.insert(id.clone(), now + SESSION_TTL_MS);
        id
    }
}

impl AdminUi {
    /// Connect middleware of `/admin`.
    pub(super) async fn check_credentials(
        &self,
        socket: &SocketRef,
        auth: Option<Value>,
    ) -> Result<(), InvalidCredentials> {
        let auth = auth.unwrap_or(Value::Null);
        if let Some(id) = auth.get("sessionId").and_then(Value::as_str)
            && self.sessions.valid(id)
        {
            return Ok(());
        }
        let username = auth.get("username").and_then(Value::as_str);
        let password = auth.get("password").and_then(Value::as_str);
        if let (Some(USERNAME), Some(password)) = (username, password)
            && self.password_matches(password).await
        {
            socket.extensions.insert(NewSession(self.sessions.create()));
            tracing::info!(sid = %socket.id, "admin UI login");
            return Ok(());
        }
        tracing::info!(sid = %socket.id, "admin UI login refused");
        Err(InvalidCredentials)
    }

    async fn password_matches(&self, password: &str) -> bool {
        let Ok(_permit) = self.sessions.checks.acquire().await else {
            return false;
        };
        let (password, hash) = (password.to_owned(), self.password_hash.clone());
        tokio::task::spawn_blocking(move || bcrypt::verify(password, hash.expose()).unwrap_or(false))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_bcrypt_prefix_of_the_usual_tools_verifies() {
        // bcryptjs gives $2a$, htpasswd -B gives $2y$, most libraries $2b$.
        let hash = "$2a$10$B8zar/OC3uM.XLVg8jY26uONXPi1e8dkMEGmjvfo3oQTrL/PLAFqq";
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let hash = hash.replacen("$2a$", prefix, 1);
            assert!(bcrypt::verify("roomcast-admin", &hash).unwrap(), "{prefix}");
            assert!(!bcrypt::verify("roomcast-Admin", &hash).unwrap(), "{prefix}");
        }
    }
}
