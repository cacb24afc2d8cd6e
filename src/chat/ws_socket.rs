//! One plain WebSocket connection on tokio-tungstenite, served straight from
//! the HTTP upgrade so that roomcast owns the whole life of the TCP
//! connection (RFC 6455):
//! - a protocol violation is answered with a close frame carrying its code
//!   (1009 message too big, 1007 invalid UTF-8, 1002 any other protocol
//!   error), then the connection is closed, never just dropped;
//! - a client silent for the ping interval is pinged, and closed (1008
//!   `ping timeout`) when nothing at all arrives within the ping timeout;
//! - outgoing frames come from the connection's [`Outbox`] (bounded in
//!   bytes); an overflow closes the connection with 1008;
//! - closing sends the close frame, then waits a bounded time for the client
//!   to finish (lingering close, so the client reads the frame instead of a
//!   reset). A close frame that cannot be written within that time (a client
//!   that stopped reading) ends in a TCP reset, which frees the kernel's send
//!   buffer at once.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes, handshake::derive_accept_key};

use super::outbox::Outbox;

/// How long a closing connection may take to write its close frame, and then
/// to let the client answer, before it is cut.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Ping a client silent for `interval`; close it when nothing arrives for
/// `timeout` after the ping.
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
}

/// Close codes of RFC 6455 §7.4.1 that roomcast sends.
pub mod code {
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    /// The user's token expired (CONTRACT §7).
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// The user was sent away (`POST /api/v1/users/{userId}/disconnect`).
    pub const SENT_AWAY: u16 = 4003;
}

/// Why a request could not be upgraded (answered 400).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotAnUpgrade(pub &'static str);

/// Checks the upgrade request (RFC 6455 §4.2.1) and takes its upgrade
/// future; the response is the `101 Switching Protocols` to return.
pub fn accept(request: &mut Request) -> Result<(Response, OnUpgrade), NotAnUpgrade> {
    let headers = request.headers();
    if !header_has_token(headers, UPGRADE, "websocket") || !header_has_token(headers, CONNECTION, "upgrade") {
        return Err(NotAnUpgrade("not a WebSocket upgrade"));
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err(NotAnUpgrade("Sec-WebSocket-Version must be 13"));
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .ok_or(NotAnUpgrade("missing Sec-WebSocket-Key"))?;
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = request
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or(NotAnUpgrade("this connection cannot be upgraded"))?;
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let response_headers = response.headers_mut();
    response_headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    response_headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        response_headers.insert(SEC_WEBSOCKET_ACCEPT, value);
    }
    Ok((response, on_upgrade))
}

fn header_has_token(headers: &HeaderMap, name: axum::http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The byte stream under a WebSocket: the TCP connection when the server's
/// accept loop gave hyper one (then a stuck close can end in a reset).
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// Makes the coming close a TCP reset (drops unsent data at once).
    fn reset_on_close(&self) {}
}

impl Transport for TcpStream {
    fn reset_on_close(&self) {
        let _ = self.set_zero_linger();
    }
}

impl Transport for TokioIo<Upgraded> {}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client is gone (TCP closed or failed): nothing to send.
    Gone,
    /// The client sent a close frame; tungstenite has queued the answer.
    ClosedByClient,
    /// Roomcast closes with this code and reason.
    Close(u16, &'static str),
}

/// What the client sent.
pub enum Incoming {
    Text(Utf8Bytes),
    Binary,
    End(End),
}

pub struct PlainSocket {
    ws: WebSocketStream<Box<dyn Transport>>,
    keepalive: Keepalive,
    /// When the keepalive acts next: a ping, or (after one) the timeout.
    deadline: Instant,
    ping_sent: bool,
    needs_flush: bool,
}

impl PlainSocket {
    /// Waits for the upgrade and wraps the connection.
    pub async fn upgrade(on_upgrade: OnUpgrade, max_payload: usize, keepalive: Keepalive) -> Option<Self> {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return None;
            }
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(16 * 1024)
            .max_message_size(Some(max_payload))
            .max_frame_size(Some(max_payload));
        let ws = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                let io: Box<dyn Transport> = Box::new(parts.io.into_inner());
                WebSocketStream::from_partially_read(io, parts.read_buf.to_vec(), Role::Server, Some(config))
                    .await
            }
            Err(upgraded) => {
                let io: Box<dyn Transport> = Box::new(TokioIo::new(upgraded));
                WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await
            }
        };
        Some(Self {
            ws,
            keepalive,
            deadline: Instant::now() + keepalive.interval,
            ping_sent: false,
            needs_flush: false,
        })
    }

    /// Writes what `outbox` holds as the client takes it, pings when the
    /// client is silent, and returns what the client sends next (or how the
    /// connection ends). Cancel-safe: a frame is either written or still queued.
    pub async fn next(&mut self, outbox: &Outbox) -> Incoming {
        loop {
            let deadline = self.deadline;
            tokio::select! {
                incoming = poll_fn(|cx| self.poll_io(cx, outbox)) => {
                    if !matches!(incoming, Incoming::End(_)) {
                        self.heard();
                    }
                    return incoming;
                }
                _ = sleep_until(deadline) => {
                    if Instant::now() < self.deadline {
                        continue; // the client spoke meanwhile
                    }
                    if self.ping_sent {
                        return Incoming::End(End::Close(code::POLICY, "ping timeout"));
                    }
                    if let Err(end) = self.ping() {
                        return Incoming::End(end);
                    }
                }
            }
        }
    }

    /// Something arrived from the client: it is alive.
    fn heard(&mut self) {
        self.ping_sent = false;
        self.deadline = Instant::now() + self.keepalive.interval;
    }

    fn ping(&mut self) -> Result<(), End> {
        // Queued behind what is being written; flushed by `poll_io`.
        let queued = Pin::new(&mut self.ws).start_send(Message::Ping(Default::default()));
        queued.map_err(|_| End::Gone)?;
        self.needs_flush = true;
        self.ping_sent = true;
        self.deadline = Instant::now() + self.keepalive.timeout;
        Ok(())
    }

    fn poll_io(&mut self, cx: &mut Context<'_>, outbox: &Outbox) -> Poll<Incoming> {
        let mut ws = Pin::new(&mut self.ws);
        loop {
            if outbox.overflowed() {
                return Poll::Ready(Incoming::End(End::Close(
                    code::POLICY,
                    "too slow: messages dropped, reconnect",
                )));
            }
            match ws.as_mut().poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => return Poll::Ready(Incoming::End(End::Gone)),
                Poll::Ready(Ok(())) => {}
            }
            match outbox.poll_pop(cx) {
                Poll::Ready(Some(frame)) => {
                    if ws.as_mut().start_send(Message::Text(frame)).is_err() {
                        return Poll::Ready(Incoming::End(End::Gone));
                    }
                    self.needs_flush = true;
                }
                Poll::Ready(None) => continue, // overflowed: answered at the top
                Poll::Pending => break,
            }
        }
        if self.needs_flush {
            match ws.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(_)) => return Poll::Ready(Incoming::End(End::Gone)),
                Poll::Pending => {}
            }
        }
        loop {
            let incoming = match ws.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => Incoming::End(End::Gone),
                Poll::Ready(Some(Ok(Message::Text(text)))) => Incoming::Text(text),
                Poll::Ready(Some(Ok(Message::Binary(_)))) => Incoming::Binary,
                Poll::Ready(Some(Ok(Message::Close(_)))) => Incoming::End(End::ClosedByClient),
                // Pings are answered by tungstenite; pongs only prove the client is alive.
                Poll::Ready(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => {
                    self.ping_sent = false;
                    self.deadline = Instant::now() + self.keepalive.interval;
                    continue;
                }
                Poll::Ready(Some(Err(e))) => Incoming::End(end_for(&e)),
            };
            return Poll::Ready(incoming);
        }
    }

    /// Ends the connection as `end` says (bounded by [`CLOSE_GRACE`] twice).
    pub async fn finish(mut self, end: End) {
        let written = match end {
            End::Gone => return,
            End::ClosedByClient => tokio::time::timeout(CLOSE_GRACE, self.ws.flush()).await,
            End::Close(code, reason) => {
                let frame = CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                };
                tokio::time::timeout(CLOSE_GRACE, self.ws.send(Message::Close(Some(frame)))).await
            }
        };
        let io = self.ws.get_mut();
        if !matches!(written, Ok(Ok(()))) {
            io.reset_on_close();
            return;
        }
        // Lingering close: our side is done; read (and discard) until the
        // client closes too, so unread input does not turn into a reset that
        // could destroy the close frame before the client reads it.
        let linger = async {
            let _ = io.shutdown().await;
            let mut sink = [0u8; 4096];
            while let Ok(n) = io.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, linger).await;
    }
}

/// The close code for a failed read, or [`End::Gone`] when the client is gone.
fn end_for(error: &WsError) -> End {
    match error {
        WsError::Capacity(_) => End::Close(code::TOO_BIG, "message too big"),
        WsError::Utf8(_) => End::Close(code::INVALID_DATA, "invalid UTF-8"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Gone,
        WsError::Protocol(_) => End::Close(code::PROTOCOL_ERROR, "protocol error"),
        WsError::AttackAttempt => End::Close(code::POLICY, "policy violation"),
        _ => End::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::error::CapacityError;

    #[test]
    fn read_errors_map_to_rfc6455_codes() {
        let too_big = WsError::Capacity(CapacityError::MessageTooLong { size: 2, max_size: 1 });
        assert_eq!(end_for(&too_big), End::Close(1009, "message too big"));
        assert_eq!(
            end_for(&WsError::Utf8("bad".into())),
            End::Close(1007, "invalid UTF-8")
        );
        let reserved = WsError::Protocol(ProtocolError::NonZeroReservedBits);
        assert_eq!(end_for(&reserved), End::Close(1002, "protocol error"));
        let reset = WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert_eq!(end_for(&reset), End::Gone);
        assert_eq!(end_for(&WsError::ConnectionClosed), End::Gone);
    }
}
