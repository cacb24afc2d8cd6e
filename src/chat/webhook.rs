//! The offline delivery hook (CONTRACT §9, `--chat-webhook-url`): for each
//! stored message, the node that stored it POSTs once
//! `{ roomId, message, recipients }` — the room's members (users who joined
//! it) with no live connection in the room — so the app can send a push
//! notification. Signed with the publish key:
//! `X-Roomcast-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! Never on the way of `chat:send`: messages go into a bounded queue (full:
//! dropped and counted) that a spawned worker empties, a few deliveries at a
//! time; each is tried up to [`ATTEMPTS`] times with exponential back-off
//! (each attempt bounded by [`ATTEMPT_TIMEOUT`]), then dropped and counted.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use metrics::Counter;
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::presence::Presence;
use crate::config::Secret;
use crate::store::{ChatMessage, ChatStore};

/// Messages waiting for the worker before new ones are dropped.
pub const QUEUE: usize = 10_000;
/// Deliveries in flight at once.
pub const CONCURRENCY: usize = 16;
/// Tries per message (the first and the retries).
pub const ATTEMPTS: u32 = 6;
/// Longest wait for one answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Wait before the first retry; doubled each time (0.25, 0.5, 1, 2, 4 s).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);

pub const SIGNATURE_HEADER: &str = "x-roomcast-signature";

/// The hook's counters (`roomcast_webhook_*_total`).
#[derive(Clone)]
pub struct WebhookMetrics {
    /// Deliveries the app acknowledged (2xx).
    pub sent: Counter,
    /// Attempts that failed (error, timeout, non-2xx).
    pub failed: Counter,
    /// Messages given up: queue full, or every attempt failed.
    pub dropped: Counter,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    room_id: &'a str,
    message: &'a ChatMessage,
    recipients: Vec<String>,
}

/// The queue side, held by the chat service.
pub struct Webhook {
    queue: mpsc::Sender<ChatMessage>,
    dropped: Counter,
}

/// What the worker needs.
pub struct Worker {
    pub url: String,
    pub key: Secret,
    pub store: Arc<dyn ChatStore>,
    pub presence: Arc<Presence>,
    pub metrics: WebhookMetrics,
}

impl Webhook {
    /// Starts the worker; it stops at `shutdown`.
    pub fn spawn(worker: Worker, shutdown: CancellationToken) -> (Self, JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let dropped = worker.metrics.dropped.clone();
        let task = tokio::spawn(run(Arc::new(worker), rx, shutdown));
        (Self { queue, dropped }, task)
    }

    /// Queues one stored message; never waits.
    pub fn offer(&self, message: &ChatMessage) {
        if self.queue.try_send(message.clone()).is_err() {
            self.dropped.increment(1);
            tracing::warn!(room = %message.room_id, "chat webhook queue full: message dropped");
        }
    }
}

async fn run(worker: Arc<Worker>, mut rx: mpsc::Receiver<ChatMessage>, shutdown: CancellationToken) {
    let client = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .unwrap_or_default();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            message = rx.recv() => match message {
                Some(message) => message,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let worker = worker.clone();
        let client = client.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = worker.deliver(&client, message) => {}
            }
            drop(slot);
        });
    }
}

impl Worker {
    async fn deliver(&self, client: &reqwest::Client, message: ChatMessage) {
        let recipients = self.recipients(&message.room_id).await;
        let body = match serde_json::to_vec(&Body {
            room_id: &message.room_id,
            message: &message,
            recipients,
        }) {
            Ok(body) => body,
            Err(_) => return,
        };
        let signature = sign(self.key.expose().as_bytes(), &body);
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let answer = client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .body(body.clone())
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_success() => {
                    self.metrics.sent.increment(1);
                    return;
                }
                Ok(response) => {
                    tracing::warn!(room = %message.room_id, attempt, status = %response.status(), "chat webhook refused")
                }
                Err(e) => {
                    tracing::warn!(room = %message.room_id, attempt, error = %e, "chat webhook unreachable")
                }
            }
            self.metrics.failed.increment(1);
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        self.metrics.dropped.increment(1);
        tracing::warn!(room = %message.room_id, id = %message.id, "chat webhook: gave up after {ATTEMPTS} attempts");
    }

    /// The room's members with no live connection in it.
    async fn recipients(&self, room_id: &str) -> Vec<String> {
        let members = match self.store.members(room_id).await {
            Ok(members) => members,
            Err(e) => {
                tracing::warn!(room = room_id, error = %e, "chat webhook: members unavailable");
                return Vec::new();
            }
        };
        let online = self.presence.online(room_id).await;
        members
            .into_iter()
            .filter(|m| online.binary_search(m).is_err())
            .collect()
    }
}

/// `sha256=<hex HMAC-SHA256 of body with key>`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sign;

    #[test]
    fn signs_like_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
