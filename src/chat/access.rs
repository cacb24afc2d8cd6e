//! Who may join (and so read and write) a chat room (CONTRACT §7): private
//! unless allowed, checked in this order —
//! 1. the token's `chat` claim, when it has one, alone decides;
//! 2. else `--chat-authorizer`: the app's backend is asked (POST `{ userId,
//!    roomId }` with the publish key as bearer; 2xx allows, 403 refuses),
//!    answers cached for `--chat-authorizer-cache-s`; down, slow (over 2 s)
//!    or any other answer refuses (fail closed);
//! 3. else `--chat-open` lets any authenticated user in;
//! 4. else refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::error::ChatError;
use super::input::RoomId;
use crate::auth::token::Identity;
use crate::config::Secret;

/// Longest wait for the authorizer's answer.
const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(2);
/// Answers cached before expired ones are swept.
const CACHE_SWEPT_ABOVE: usize = 100_000;

/// The app's backend that decides chat joins.
pub struct Authorizer {
    url: String,
    publish_key: Secret,
    client: reqwest::Client,
    cache_for: Duration,
    cache: Mutex<HashMap<(String, String), (bool, Instant)>>,
}

impl Authorizer {
    pub fn new(url: String, publish_key: Secret, cache_for: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(AUTHORIZER_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            url,
            publish_key,
            client,
            cache_for,
            cache: Mutex::default(),
        }
    }

    async fn allows(&self, user_id: &str, room_id: &str) -> Result<bool, ChatError> {
        let key = (user_id.to_owned(), room_id.to_owned());
        if let Some((allowed, at)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && at.elapsed() < self.cache_for
        {
            return Ok(*allowed);
        }
        let answer = self
            .client
            .post(&self.url)
            .bearer_auth(self.publish_key.expose())
            .json(&json!({ "userId": user_id, "roomId": room_id }))
            .send()
            .await;
        let allowed = match answer {
            Ok(response) if response.status().is_success() => true,
            Ok(response) if response.status() == reqwest::StatusCode::FORBIDDEN => false,
            Ok(response) => {
                tracing::warn!(status = %response.status(), "chat authorizer answered neither 2xx nor 403: refused");
                return Err(ChatError::AuthorizationUnavailable);
            }
            Err(e) => {
                tracing::warn!(error = %e, "chat authorizer unreachable: refused");
                return Err(ChatError::AuthorizationUnavailable);
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_SWEPT_ABOVE {
            let cache_for = self.cache_for;
            cache.retain(|_, (_, at)| at.elapsed() < cache_for);
        }
        cache.insert(key, (allowed, Instant::now()));
        Ok(allowed)
    }
}

/// The room policy of this node.
pub struct ChatGate {
    pub authorizer: Option<Authorizer>,
    /// `--chat-open`: any authenticated user may join any room.
    pub open: bool,
}

impl ChatGate {
    /// `Ok` when `identity` may join `room_id`.
    pub async fn check(&self, identity: &Identity, room_id: &RoomId) -> Result<(), ChatError> {
        let allowed = if let Some(patterns) = &identity.chat {
            patterns.allows(room_id.as_str())
        } else if let Some(authorizer) = &self.authorizer {
            authorizer.allows(&identity.user_id, room_id.as_str()).await?
        } else {
            self.open
        };
        if allowed {
            Ok(())
        } else {
            Err(ChatError::NotAllowed)
        }
    }
}
