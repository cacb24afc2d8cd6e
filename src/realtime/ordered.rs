//! The one handler every socket event goes through (socketioxide's
//! message-middleware pattern). In arrival order, before socketioxide spawns
//! the event's task, [`on_event`] counts the event, applies the socket's rate
//! limit (a refused event never reaches a handler; the client gets an `error`
//! event and, if it asked, an error ack) and takes the event's place in the
//! socket's queue. The spawned task waits for that turn, decodes the payload,
//! then calls the feature's handler with a [`Turn`] (proof that it is its
//! turn: only this module can make one) and a [`Call`], and answers once with
//! what the handler returns. No handler waits for its turn itself.

use std::future::Future;
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

/// An event as it arrived: its name, its payload not yet decoded (a refused
/// event is never decoded), and its ack id.
pub struct Received {
    socket: Arc<Socket>,
    event: String,
    payload: RawValue,
    ack_id: Option<i64>,
}

/// An unreadable event name (the event is dropped).
#[derive(Debug, thiserror::Error)]
#[error("unreadable event name")]
pub struct NoEventName;

impl FromMessageParts<LocalAdapter> for Received {
    type Error = NoEventName;

    fn from_message_parts(
        s: &Arc<Socket>,
        v: &mut RawValue,
        ack_id: &Option<i64>,
    ) -> Result<Self, NoEventName> {
        let Event(event) = Event::from_message_parts(s, v, ack_id).map_err(|_| NoEventName)?;
        Ok(Received {
            socket: s.clone(),
            event,
            payload: std::mem::replace(v, RawValue::Bytes(Default::default())),
            ack_id: *ack_id,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RateLimitedAck<'a> {
    error: &'a str,
    retry_after_ms: u64,
}

/// The socket's only event handler. Runs in arrival order: counts the event,
/// rate-limits it and takes its ticket; the returned task (spawned by
/// socketioxide) waits for the turn, routes the event and answers.
pub fn on_event(session: Arc<Session>, received: Received) -> impl Future<Output = ()> + Send + 'static {
    let admitted = admit(&session, &received).map(|()| session.ticket());
    async move {
        if let Some(ticket) = admitted {
            run(session, received, ticket).await;
        }
    }
}

/// Counts and rate-limits one event; a refused one is answered here.
fn admit(session: &Session, received: &Received) -> Option<()> {
    let Received {
        socket: s,
        event,
        ack_id,
        ..
    } = received;
    let services = session.services();
    let metrics = &services.metrics;
    metrics.event_received(event);
    let admitted = session.limiter().check(event).and_then(|()| {
        session.with_user_id(|user| match user {
            Some(user) => services.user_limits.check(user, event),
            None => Ok(()),
        })
    });
    let Err(retry_after) = admitted else {
        return Some(());
    };
    metrics.rate_limited(event);
    let retry_after_ms = retry_after.as_millis().max(1) as u64;
    tracing::debug!(sid = %s.id, event = ?event, retry_after_ms, "rate limited");
    let _ = s.emit(
        ERROR,
        &ErrorEvent {
            event,
            message: RATE_LIMIT_EXCEEDED,
            retry_after_ms: Some(retry_after_ms),
        },
    );
    if ack_id.is_some() {
        let Ok(ack) = AckSender::from_message_parts(s, &mut RawValue::Bytes(Default::default()), ack_id);
        let _ = ack.send(&RateLimitedAck {
            error: RATE_LIMIT_EXCEEDED,
            retry_after_ms,
        });
    }
    None
}

/// An admitted event: waits for its turn, routes it, answers.
async fn run(session: Arc<Session>, received: Received, ticket: Ticket<Session>) {
    let Received {
        socket,
        event,
        payload: mut raw,
        ack_id,
    } = received;
    ticket.wait_turn().await;
    let Ok(TryData(payload)) = TryData::<Value>::from_message_parts(&socket, &mut raw, &ack_id);
    let Ok(ack) = AckSender::from_message_parts(&socket, &mut raw, &ack_id);
    let socket = SocketRef::from(socket);
    let answer = Answer {
        socket: socket.clone(),
        event,
        wants_ack: ack_id.is_some(),
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
