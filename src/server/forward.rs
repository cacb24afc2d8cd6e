//! No sticky sessions (with `--redis-url`): a Socket.IO long-polling request,
//! or the WebSocket upgrade of a polling session, that reaches a node which
//! does not hold the session is forwarded to the node that does, found in
//! the registry of session owners (`cluster::owners`). Long-polling
//! handshakes answered here register their new session there first.
//!
//! Not an open proxy: only `/socket.io/` requests carrying a session id,
//! only to a node address registered under roomcast's keys, never twice (a
//! forwarded request carries [`FORWARDED`] and is served where it lands).
//! Bounded: request bodies to `--max-payload` (and `--body-timeout-s`, as
//! every body), a forwarded poll to [`POLL_TIMEOUT`] for its answer and
//! `--max-payload` for its body, an upgrade to [`HEAD_TIMEOUT`] for its
//! answer, a forwarded WebSocket to [`WS_IDLE`] without a byte each way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode, Version};
use axum::response::IntoResponse;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use metrics::{Counter, Label};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::cluster::owners::{NodeUrl, SessionOwners};
use crate::metrics::{Metrics, SESSION_FORWARDS};

/// Marks a request one node forwarded to another: served where it lands.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-roomcast-forwarded");
/// Longest wait for a forwarded poll's answer (a long-poll is held up to the
/// ping interval, 25 s).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for connecting to the owner.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for the owner's answer to an upgrade, and for both sides to switch.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the rest of an answer's body once its head came.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A forwarded WebSocket with no byte in one direction for this long is closed
/// (Engine.IO pings every 25 s).
pub const WS_IDLE: Duration = Duration::from_secs(90);
/// Largest long-polling handshake answer read for its session id.
const HANDSHAKE_MAX: usize = 64 * 1024;
/// Room for framing on top of `--max-payload` in a polling body.
const BODY_SLACK: usize = 1024;
/// Buffer per direction of a forwarded WebSocket.
const PIPE_BUFFER: usize = 8 * 1024;
/// Idle pooled connections to other nodes are closed after this (below the
/// owners' 60 s idle timeout).
const POOL_IDLE: Duration = Duration::from_secs(30);

/// The forwarding of one node.
pub struct Forwarding {
    owners: Arc<SessionOwners>,
    client: Client<HttpConnector, Body>,
    max_payload: usize,
    counters: Counters,
}

struct Counters {
    polling_ok: Counter,
    polling_error: Counter,
    websocket_ok: Counter,
    websocket_error: Counter,
    unregistered: Counter,
}

/// What a Socket.IO request is, as far as forwarding goes.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// A long-polling handshake: creates a session here.
    Handshake,
    /// A poll (GET or POST) of session `sid`.
    Poll(String),
    /// The WebSocket upgrade of polling session `sid`.
    Upgrade(String),
    /// Anything else: served here.
    Local,
}

/// A forward that did not get through.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Client(#[from] hyper_util::client::legacy::Error),
    #[error("body: {0}")]
    Body(axum::BoxError),
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("bad uri: {0}")]
    Uri(#[from] axum::http::uri::InvalidUri),
}

impl Forwarding {
    pub fn new(owners: Arc<SessionOwners>, max_payload: u64, metrics: &Metrics) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        let counter = |transport: &'static str, result: &'static str| {
            metrics.counter(
                SESSION_FORWARDS,
                vec![Label::new("transport", transport), Label::new("result", result)],
            )
        };
        Self {
            owners,
            client,
            max_payload: usize::try_from(max_payload).unwrap_or(usize::MAX),
            counters: Counters {
                polling_ok: counter("polling", "ok"),
                polling_error: counter("polling", "error"),
                websocket_ok: counter("websocket", "ok"),
                websocket_error: counter("websocket", "error"),
                unregistered: counter("handshake", "unregistered"),
            },
        }
    }

    /// Serves a `/socket.io/` request: here, or at the node holding its session.
    pub async fn serve(&self, request: Request<Body>, router: Router, peer: SocketAddr) -> Response<Body> {
        let (sid, upgrade) = match classify(&request) {
            Kind::Local => return local(router, request).await,
            Kind::Handshake => {
                let response = local(router, request).await;
                return self.register(response).await;
            }
            Kind::Poll(sid) => (sid, false),
            Kind::Upgrade(sid) => (sid, true),
        };
        if self.owners.holds(&sid) {
            return local(router, request).await;
        }
        let node = match self.owners.owner(&sid).await {
            Ok(Some(node)) => node,
            Ok(None) => return local(router, request).await,
            Err(e) => {
                tracing::warn!(error = %e, "session owner lookup failed; served here");
                return local(router, request).await;
            }
        };
        let (forwarded, ok, failed) = if upgrade {
            (
                self.forward_upgrade(request, &node, peer).await,
                &self.counters.websocket_ok,
                &self.counters.websocket_error,
            )
        } else {
            (
                self.forward_poll(request, &node, peer).await,
                &self.counters.polling_ok,
                &self.counters.polling_error,
            )
        };
        match forwarded {
            Ok(response) => {
                ok.increment(1);
                response
            }
            Err(e) => {
                failed.increment(1);
                tracing::warn!(node = %node, error = %e, "forwarding to the session's node failed");
                json_error(
                    StatusCode::BAD_GATEWAY,
                    "the node holding this session did not answer",
                )
            }
        }
    }

    /// Registers the session a long-polling handshake answer opens.
    async fn register(&self, response: Response<Body>) -> Response<Body> {
        if response.status() != StatusCode::OK {
            return response;
        }
        let (parts, body) = response.into_parts();
        let bytes = match collect(body, HANDSHAKE_MAX).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, "handshake answer not read");
                return json_error(StatusCode::INTERNAL_SERVER_ERROR, "handshake failed");
            }
        };
        match handshake_sid(&bytes) {
            Some(sid) => {
                if let Err(e) = self.owners.register(&sid).await {
                    // The client is served; only requests landing elsewhere will fail.
                    self.counters.unregistered.increment(1);
                    tracing::warn!(error = %e, "session not registered");
                }
            }
            None => self.counters.unregistered.increment(1),
        }
        Response::from_parts(parts, Body::from(bytes))
    }

    async fn forward_poll(
        &self,
        request: Request<Body>,
        node: &NodeUrl,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ForwardError> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = format!("http://{}{path}", node.authority()).parse()?;
        parts.version = Version::HTTP_11;
        parts.extensions = Default::default();
        strip_hop_by_hop(&mut parts.headers);
        mark(&mut parts.headers, peer);
        let body = Body::new(Limited::new(body, self.max_payload + BODY_SLACK));
        let response = tokio::time::timeout(
            POLL_TIMEOUT,
            self.client.request(Request::from_parts(parts, body)),
        )
        .await
        .map_err(|_| ForwardError::Timeout("answer"))??;
        let (mut parts, body) = response.into_parts();
        let bytes = collect(Body::new(body), self.max_payload + BODY_SLACK).await?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::CONTENT_LENGTH);
        Ok(Response::from_parts(parts, Body::from(bytes)))
    }

    async fn forward_upgrade(
        &self,
        mut request: Request<Body>,
        node: &NodeUrl,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ForwardError> {
        let client_side = hyper::upgrade::on(&mut request);
        let (parts, _) = request.into_parts();
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(node.authority()))
            .await
            .map_err(|_| ForwardError::Timeout("connect"))??;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let connection = tokio::spawn(connection.with_upgrades());
        let mut headers = parts.headers;
        let upgrade = headers.remove(header::UPGRADE);
        strip_hop_by_hop(&mut headers);
        mark(&mut headers, peer);
        if let Some(upgrade) = upgrade {
            headers.insert(header::UPGRADE, upgrade);
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        let mut out = Request::new(Empty::<Bytes>::new());
        *out.method_mut() = Method::GET;
        *out.uri_mut() = parts.uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
        *out.headers_mut() = headers;
        let answer = match tokio::time::timeout(HEAD_TIMEOUT, sender.send_request(out)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                connection.abort();
                return Err(e.into());
            }
            Err(_) => {
                connection.abort();
                return Err(ForwardError::Timeout("upgrade answer"));
            }
        };
        if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (mut parts, body) = answer.into_parts();
            let bytes = collect(Body::new(body), HANDSHAKE_MAX).await;
            connection.abort();
            strip_hop_by_hop(&mut parts.headers);
            parts.headers.remove(header::CONTENT_LENGTH);
            return Ok(Response::from_parts(parts, Body::from(bytes?)));
        }
        let mut answer = answer;
        let owner_side = hyper::upgrade::on(&mut answer);
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.headers_mut() = answer.headers().clone();
        tokio::spawn(async move {
            let both = async { tokio::try_join!(client_side, owner_side) };
            match tokio::time::timeout(HEAD_TIMEOUT, both).await {
                Ok(Ok((client, owner))) => pipe(TokioIo::new(client), TokioIo::new(owner)).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "forwarded upgrade did not complete"),
                Err(_) => tracing::debug!("forwarded upgrade timed out"),
            }
        });
        Ok(response)
    }
}

/// What kind of Socket.IO request this is (never forwarded twice).
fn classify<B>(request: &Request<B>) -> Kind {
    if request.headers().contains_key(&FORWARDED) {
        return Kind::Local;
    }
    let query = request.uri().query().unwrap_or("");
    let sid = query_param(query, "sid");
    let transport = query_param(query, "transport");
    let upgrade = request.headers().contains_key(header::UPGRADE);
    let get = request.method() == Method::GET;
    let post = request.method() == Method::POST;
    match (sid, transport) {
        (None, Some("polling")) if get && !upgrade => Kind::Handshake,
        (Some(sid), Some("polling")) if (get || post) && !upgrade => Kind::Poll(sid.to_owned()),
        (Some(sid), Some("websocket")) if get && upgrade => Kind::Upgrade(sid.to_owned()),
        _ => Kind::Local,
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

/// The session id in a long-polling handshake answer (`0{"sid":"...",...}`).
fn handshake_sid(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Open {
        sid: String,
    }
    let start = body.iter().position(|&b| b == b'{')?;
    let open = serde_json::Deserializer::from_slice(&body[start..])
        .into_iter::<Open>()
        .next()?
        .ok()?;
    Some(open.sid)
}

async fn local(router: Router, request: Request<Body>) -> Response<Body> {
    router
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {})
}

/// A whole body, bounded in bytes and time.
async fn collect(body: Body, max: usize) -> Result<Bytes, ForwardError> {
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(ForwardError::Body(e)),
        Err(_) => Err(ForwardError::Timeout("body")),
    }
}

/// Removes the headers that belong to one connection (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Marks a request as forwarded, and says for whom.
fn mark(headers: &mut HeaderMap, peer: SocketAddr) {
    headers.insert(FORWARDED, HeaderValue::from_static("1"));
    if let Ok(ip) = HeaderValue::from_str(&peer.ip().to_string()) {
        headers.append(HeaderName::from_static("x-forwarded-for"), ip);
    }
}

/// Copies bytes both ways until each side has ended (or idled for [`WS_IDLE`]).
async fn pipe<A, B>(a: A, b: B)
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (a_read, a_write) = tokio::io::split(a);
    let (b_read, b_write) = tokio::io::split(b);
    tokio::join!(copy_until_idle(a_read, b_write), copy_until_idle(b_read, a_write));
}

async fn copy_until_idle(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut buffer = vec![0u8; PIPE_BUFFER];
    loop {
        let n = match tokio::time::timeout(WS_IDLE, from.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        match tokio::time::timeout(WS_IDLE, to.write_all(&buffer[..n])).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    let _ = tokio::time::timeout(WS_IDLE, to.shutdown()).await;
}

/// `{ "error": message }` with `status`, as the HTTP API answers.
fn json_error(status: StatusCode, message: &str) -> Response<Body> {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, upgrade: bool) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(uri);
        if upgrade {
            builder = builder.header(header::UPGRADE, "websocket");
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn requests_are_classified_by_their_query() {
        let base = "/socket.io/?EIO=4";
        assert_eq!(
            classify(&request(
                Method::GET,
                &format!("{base}&transport=polling&t=x"),
                false
            )),
            Kind::Handshake
        );
        assert_eq!(
            classify(&request(
                Method::POST,
                &format!("{base}&transport=polling&sid=abc"),
                false
            )),
            Kind::Poll("abc".into())
        );
        assert_eq!(
            classify(&request(
                Method::GET,
                &format!("{base}&transport=websocket&sid=abc"),
                true
            )),
            Kind::Upgrade("abc".into())
        );
        // A WebSocket-only handshake, a preflight, a forwarded request: served here.
        assert_eq!(
            classify(&request(
                Method::GET,
                &format!("{base}&transport=websocket"),
                true
            )),
            Kind::Local
        );
        assert_eq!(
            classify(&request(
                Method::OPTIONS,
                &format!("{base}&transport=polling&sid=abc"),
                false
            )),
            Kind::Local
        );
        let mut forwarded = request(Method::GET, &format!("{base}&transport=polling&sid=abc"), false);
        forwarded
            .headers_mut()
            .insert(FORWARDED, HeaderValue::from_static("1"));
        assert_eq!(classify(&forwarded), Kind::Local);
    }

    #[test]
    fn the_session_id_comes_from_the_open_packet() {
        let body = br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000}"#;
        assert_eq!(handshake_sid(body).as_deref(), Some("lv_VI97HAXpY6yYWAAAC"));
        assert_eq!(handshake_sid(b"0{}"), None);
        assert_eq!(handshake_sid(b"garbage"), None);
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://app.example"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ORIGIN));
    }
}
