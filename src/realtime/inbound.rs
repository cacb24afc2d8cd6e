//! The `Inbound` extractor, first argument of every event handler. It runs in
//! arrival order before the handler is spawned, and: counts the event, applies
//! the socket's rate limit (a refused event never reaches its handler; the
//! client gets an `error` event and, if it asked, an error ack), and takes the
//! event's place in the socket's queue.

use std::sync::Arc;

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef};
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;

use super::events::{ERROR, ErrorAck, ErrorEvent, RATE_LIMIT_EXCEEDED};
use super::session::{Session, Ticket};

pub struct Inbound<A: Adapter> {
    pub socket: SocketRef<A>,
    pub session: Arc<Session>,
    pub event: String,
    wants_ack: bool,
    ticket: Ticket,
}

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("socket has no session")]
    NoSession,
    #[error("unreadable event name")]
    NoEventName,
    #[error("rate limited")]
    RateLimited,
}

impl<A: Adapter> FromMessageParts<A> for Inbound<A> {
    type Error = Refused;

    fn from_message_parts(s: &Arc<Socket<A>>, v: &mut Value, ack_id: &Option<i64>) -> Result<Self, Refused> {
        let Event(event) = Event::from_message_parts(s, v, ack_id).map_err(|_| Refused::NoEventName)?;
        let session: Arc<Session> = s.extensions.get().ok_or(Refused::NoSession)?;
        let metrics = &session.realtime.metrics;
        metrics.event_received(&event);
        if let Err(retry_after) = session.limiter.check(&event) {
            metrics.rate_limited(&event);
            let retry_after_ms = retry_after.as_millis().max(1) as u64;
            tracing::debug!(sid = %s.id, event, retry_after_ms, "rate limited");
            let _ = s.emit(
                ERROR,
                &ErrorEvent {
                    event: &event,
                    message: RATE_LIMIT_EXCEEDED,
                    retry_after_ms: Some(retry_after_ms),
                },
            );
            if ack_id.is_some() {
                let ack = AckSender::from_message_parts(s, v, ack_id).expect("infallible");
                let _ = ack.send(&RateLimitedAck {
                    error: RATE_LIMIT_EXCEEDED,
                    retry_after_ms,
                });
            }
            return Err(Refused::RateLimited);
        }
        Ok(Inbound {
            socket: SocketRef::from(s.clone()),
            ticket: session.ticket(),
            session,
            event,
            wants_ack: ack_id.is_some(),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RateLimitedAck<'a> {
    error: &'a str,
    retry_after_ms: u64,
}

impl<A: Adapter> Inbound<A> {
    /// Waits until the socket's earlier events are done; call first in a handler.
    pub async fn turn(&self) {
        self.ticket.wait_turn().await;
    }

    /// Answers success: the ack, when the client asked for one.
    pub fn ok<T: Serialize + ?Sized>(&self, ack: AckSender<A>, reply: &T) {
        let _ = ack.send(reply);
    }

    /// Answers `reply` on success, the error's message on failure.
    pub fn answer<T: Serialize, E: std::fmt::Display>(&self, ack: AckSender<A>, result: Result<T, E>) {
        match result {
            Ok(reply) => self.ok(ack, &reply),
            Err(e) => self.fail(ack, &e.to_string()),
        }
    }

    /// Answers failure: `{ error }` as the ack, or an `error` event when there is no ack.
    pub fn fail(&self, ack: AckSender<A>, message: &str) {
        tracing::debug!(sid = %self.socket.id, event = ?self.event, reason = ?message, "event refused");
        if self.wants_ack {
            let _ = ack.send(&ErrorAck { error: message });
        } else {
            let _ = self.socket.emit(
                ERROR,
                &ErrorEvent {
                    event: &self.event,
                    message,
                    retry_after_ms: None,
                },
            );
        }
    }
}
