//! The one handler every socket event goes through (socketioxide's
//! message-middleware pattern). In arrival order, before socketioxide spawns
//! the event's task, the [`Inbound`] extractor counts the event, applies the
//! socket's rate limit (a refused event never reaches a handler; the client
//! gets an `error` event and, if it asked, an error ack) and takes the event's
//! place in the socket's queue. The spawned task waits for that turn, then
//! calls the feature's handler with a [`Turn`] (proof that it is its turn: only
//! this module can make one) and a [`Call`], and answers once with what the
//! handler returns. No handler waits for its turn itself.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::{FromMessageParts, Value as RawValue};
use socketioxide::socket::Socket;

use super::Realtime;
use super::sequencer::Ticket;
use super::session::Session;
use crate::protocol::{ERROR, ErrorAck, ErrorEvent, RATE_LIMIT_EXCEEDED};

/// Proof that every earlier event of the socket has been handled.
pub struct Turn(());

/// One event, as a handler sees it.
pub struct Call {
    pub socket: SocketRef,
    pub session: Arc<Session>,
    pub services: Arc<Realtime>,
    /// The first argument of the event, or why it could not be read.
    pub payload: Result<Value, String>,
}

/// An event that passed the rate limit, with its place in the socket's queue.
pub struct Inbound {
    socket: SocketRef,
    session: Arc<Session>,
    event: String,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RateLimitedAck<'a> {
    error: &'a str,
    retry_after_ms: u64,
}

impl FromMessageParts<LocalAdapter> for Inbound {
    type Error = Refused;

    fn from_message_parts(s: &Arc<Socket>, v: &mut RawValue, ack_id: &Option<i64>) -> Result<Self, Refused> {
        let Event(event) = Event::from_message_parts(s, v, ack_id).map_err(|_| Refused::NoEventName)?;
        let session: Arc<Session> = s.extensions.get().ok_or(Refused::NoSession)?;
        let services = session.services();
        let metrics = &services.metrics;
        metrics.event_received(&event);
        let admitted = session.limiter().check(&event).and_then(|()| {
            session.with_user_id(|user| match user {
                Some(user) => services.user_limits.check(user, &event),
                None => Ok(()),
            })
        });
        if let Err(retry_after) = admitted {
            metrics.rate_limited(&event);
            let retry_after_ms = retry_after.as_millis().max(1) as u64;
            tracing::debug!(sid = %s.id, event = ?event, retry_after_ms, "rate limited");
            let _ = s.emit(
                ERROR,
                &ErrorEvent {
                    event: &event,
                    message: RATE_LIMIT_EXCEEDED,
                    retry_after_ms: Some(retry_after_ms),
                },
            );
            if ack_id.is_some()
                && let Ok(ack) = AckSender::from_message_parts(s, v, ack_id)
            {
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

/// The socket's only event handler: waits for the event's turn, routes it, answers.
pub async fn on_event(inbound: Inbound, TryData(payload): TryData<Value>, ack: AckSender) {
    let Inbound {
        socket,
        session,
        event,
        wants_ack,
        ticket,
    } = inbound;
    ticket.wait_turn().await;
    let answer = Answer {
        socket: socket.clone(),
        event,
        wants_ack,
        ack,
    };
    let call = Call {
        services: session.services().clone(),
        socket,
        session,
        payload: payload.map_err(|e| e.to_string()),
    };
    super::route(call, &Turn(()), answer).await;
    // The ticket drops here: the socket's next event gets its turn.
    drop(ticket);
}

/// The one answer of an event: its ack, or an `error` event when it asked for none.
pub struct Answer {
    socket: SocketRef,
    event: String,
    wants_ack: bool,
    ack: AckSender,
}

impl Answer {
    pub fn event(&self) -> &str {
        &self.event
    }

    /// Answers `reply` on success, the error's message on failure.
    pub fn send<T: Serialize, E: std::fmt::Display>(self, result: Result<T, E>) {
        match result {
            Ok(reply) => {
                let _ = self.ack.send(&reply);
            }
            Err(e) => self.fail(&e.to_string()),
        }
    }

    /// Answers failure: `{ error }` as the ack, or an `error` event when there is no ack.
    pub fn fail(self, message: &str) {
        tracing::debug!(sid = %self.socket.id, event = ?self.event, message, "event refused");
        if self.wants_ack {
            let _ = self.ack.send(&ErrorAck { error: message });
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
