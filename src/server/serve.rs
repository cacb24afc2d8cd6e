//! The accept loop: HTTP/1.1 (with upgrades for WebSockets) straight on
//! hyper, so the per-connection read buffer can be held to hyper's minimum of
//! 8 KiB (axum::serve leaves it to grow, and idle WebSocket connections then
//! keep the larger buffer). TCP_NODELAY on every connection. Stops accepting
//! when `stop` fires, then waits for in-flight HTTP requests. Upgraded
//! (WebSocket) connections leave hyper at the upgrade; closing them is
//! `io.close()`'s job.

use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// hyper's smallest allowed read buffer.
const READ_BUFFER_MAX: usize = 8192;

pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    let mut builder = http1::Builder::new();
    builder.max_buf_size(READ_BUFFER_MAX).keep_alive(true);
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving the rest.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        // The peer address, for handlers that show it (the Admin UI's socket list).
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower::Service::call(&mut router.clone(), request)
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.cancelled() => {
                    // Finish the request in flight (a long-poll ends when transports close).
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}
