//! roomcast-floor: the least a socketioxide server needs per connection,
//! served the way roomcast serves, as the reference for roomcast's memory per
//! connection (`load/bench.sh`, `connections` scenario).
//!
//! Same serving setup as roomcast: hyper's HTTP/1 builder with its read buffer
//! held to 8 KiB (`max_buf_size`), TCP_NODELAY, the same WebSocket read buffer
//! (`--ws-read-buffer`, default roomcast's), socketioxide on its default
//! LocalAdapter, and the head of an upgrade request cut down to what
//! engineioxide reads (the URI and `Sec-WebSocket-Key`; hyper's `OnUpgrade`),
//! so hyper's read buffer is not kept alive by the socket's stored request.
//! One handler per socket: `subscribe:price` joins `price:<symbol>` rooms and
//! acks `{ ok, rooms }` like roomcast; `blob` acks the byte length of its
//! string (for the read-buffer test, `roomcast-load --emit-bytes`).
//!
//!   roomcast-floor --listen 127.0.0.1:4400 [--ws-read-buffer 1024] [--keep-head]

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{SEC_WEBSOCKET_KEY, UPGRADE};
use axum::http::{HeaderMap, Uri};
use axum::routing::get;
use clap::Parser;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4400")]
    listen: SocketAddr,
    /// tungstenite's read buffer per WebSocket, bytes (roomcast: `WS_READ_BUFFER` in src/app/mod.rs).
    #[arg(long, default_value_t = 1024)]
    ws_read_buffer: usize,
    /// Keep the whole upgrade request head (and with it hyper's 8 KiB read buffer).
    #[arg(long)]
    keep_head: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let (layer, io) = SocketIo::builder()
        .max_payload(1 << 20)
        .ws_read_buffer_size(args.ws_read_buffer)
        .build_layer();
    io.ns("/", |socket: SocketRef| async move {
        socket.on(
            "subscribe:price",
            |s: SocketRef, Data(symbols): Data<Vec<String>>, ack: AckSender| async move {
                let rooms: Vec<String> = symbols.iter().map(|s| format!("price:{s}")).collect();
                s.join(rooms.clone());
                let _ = ack.send(&json!({ "ok": true, "rooms": rooms }));
            },
        );
        socket.on("blob", |Data(blob): Data<Value>, ack: AckSender| async move {
            let _ = ack.send(&blob.as_str().map_or(0, str::len));
        });
    });
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .layer(layer);
    if !args.keep_head {
        router = router.layer(axum::middleware::map_request(least_head));
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let mut builder = http1::Builder::new();
    builder.max_buf_size(8192).keep_alive(true);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::spawn(connection);
    }
}

/// An upgrade request reaches socketioxide with only what engineioxide reads:
/// its own copy of the URI, `Sec-WebSocket-Key`, and hyper's `OnUpgrade`.
async fn least_head(request: Request) -> Request {
    if !request.headers().contains_key(UPGRADE) {
        return request;
    }
    let (mut parts, body) = request.into_parts();
    let mut headers = HeaderMap::with_capacity(1);
    if let Some(key) = parts.headers.get(SEC_WEBSOCKET_KEY) {
        headers.insert(SEC_WEBSOCKET_KEY, copy(key.as_bytes()));
    }
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let mut request = Request::new(body);
    *request.method_mut() = parts.method;
    *request.version_mut() = parts.version;
    *request.uri_mut() = Uri::try_from(parts.uri.to_string()).unwrap_or_default();
    *request.headers_mut() = headers;
    if let Some(upgrade) = upgrade {
        request.extensions_mut().insert(upgrade);
    }
    request
}

fn copy(bytes: &[u8]) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_bytes(bytes).expect("a valid header value stays valid")
}
