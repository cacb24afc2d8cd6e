//! The per-connection request service between hyper and the router: marks
//! the connection busy while a request is in flight (so the idle clock
//! stops, a held long-poll included), bounds the time a request body may
//! take, answers a declared body over `--max-body` with 413 before reading
//! it (so no `100 Continue` is sent), lists Socket.IO WebSocket upgrades for
//! shutdown and answers Socket.IO long-polls 503 once shutdown begins. With
//! Redis, Socket.IO requests go through `forward` (the session's node may be
//! another one).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, HeaderValue, UPGRADE};
use axum::http::{Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use super::conn::{BusyGuard, ConnShared, Connections, Registration};
use super::forward::Forwarding;

/// Socket.IO's path prefix (socketioxide's default).
const SOCKET_IO_PATH: &str = "/socket.io/";

/// A request body that did not arrive within `--body-timeout-s`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0} s")]
pub struct BodyTimeout(pub u64);

/// hyper's per-connection service.
#[derive(Clone)]
pub struct ConnService {
    pub router: Router,
    pub connections: Arc<Connections>,
    pub conn: Registration,
    /// The client's address, for handlers that show it (the Admin UI).
    pub peer: std::net::SocketAddr,
    /// With Redis: Socket.IO requests of sessions held elsewhere go there.
    pub forwarding: Option<Arc<Forwarding>>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        // Kept with a socket's request parts, so a client that stops reading
        // can lose its transport (`Registration::sever`).
        request.extensions_mut().insert(self.conn.clone());
        let busy = self.conn.shared.request_started();
        let shared = self.conn.shared.clone();
        let connections = self.connections.clone();
        let path = request.uri().path();
        let socket_io = path.starts_with(SOCKET_IO_PATH);
        let long_poll = socket_io
            && request.method() == Method::GET
            && !request.headers().contains_key(UPGRADE)
            && request
                .uri()
                .query()
                .is_some_and(|q| q.contains("transport=polling"));
        if socket_io && request.headers().contains_key(UPGRADE) {
            self.conn.socket_io_ws();
        }
        if !socket_io
            && let Some(declared) = declared_length(&request)
            && declared > connections.max_body
        {
            // Answer before reading (no 100 Continue); read what is still sent before closing.
            shared.linger();
            let mut response = json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "request body is larger than the limit of {} bytes",
                    connections.max_body
                ),
            );
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return Box::pin(async move { Ok(tracked(response, busy)) });
        }
        if long_poll && connections.sever.is_cancelled() {
            return Box::pin(async move { Ok(tracked(shutting_down(), busy)) });
        }
        let timeout = connections.timeouts.body;
        let request = request.map(|body| {
            Body::new(DeadlineBody {
                inner: body,
                deadline: Instant::now() + timeout,
                seconds: timeout.as_secs(),
                sleep: None,
                shared: shared.clone(),
                connections: connections.clone(),
                timed_out: false,
                ended: false,
            })
        });
        let router = self.router.clone();
        let forwarding = self.forwarding.clone().filter(|_| socket_io);
        let peer = self.peer;
        Box::pin(async move {
            let response = async move {
                match forwarding {
                    Some(forwarding) => Ok(forwarding.serve(request, router, peer).await),
                    None => router.oneshot(request).await,
                }
            };
            let response = if long_poll {
                tokio::select! {
                    response = response => response,
                    _ = connections.sever.cancelled() => Ok(shutting_down()),
                }
            } else {
                response.await
            };
            let response = response.unwrap_or_else(|never| match never {});
            Ok(tracked(response, busy))
        })
    }
}

/// A long-poll at shutdown: an error status, which every Engine.IO client
/// treats as a transport error and reconnects after.
fn shutting_down() -> Response<Body> {
    json_error(StatusCode::SERVICE_UNAVAILABLE, "server shutting down")
}

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn tracked(response: Response<Body>, busy: BusyGuard) -> Response<TrackedBody> {
    response.map(|inner| TrackedBody { inner, _busy: busy })
}

/// A response body that keeps its connection busy until it is dropped.
pub struct TrackedBody {
    inner: Body,
    _busy: BusyGuard,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that must be complete by a deadline; marks its
/// connection for a lingering close when dropped unread.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    seconds: u64,
    sleep: Option<Pin<Box<Sleep>>>,
    shared: Arc<ConnShared>,
    connections: Arc<Connections>,
    timed_out: bool,
    /// Read to its end (a chunked body does not say so through `is_end_stream`).
    ended: bool,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        if self.timed_out {
            return Poll::Ready(Some(Err(BodyTimeout(self.seconds).into())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            self.ended |= frame.is_none();
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.timed_out = true;
            self.connections.closed_body.increment(1);
            return Poll::Ready(Some(Err(BodyTimeout(self.seconds).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        if self.timed_out {
            self.shared.no_linger();
        } else if !self.ended && !http_body::Body::is_end_stream(&self.inner) {
            self.shared.linger();
        }
    }
}

/// `{ "error": message }` with `status`, as the HTTP API answers.
fn json_error(status: StatusCode, message: &str) -> axum::response::Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}
