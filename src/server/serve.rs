//! The accept loop: HTTP/1.1 (with upgrades for WebSockets) straight on
//! hyper, so the per-connection read buffer can be held to hyper's minimum of
//! 8 KiB (axum::serve leaves it to grow, and idle WebSocket connections then
//! keep the larger buffer). TCP_NODELAY on every connection. Each connection
//! is admitted against the per-address cap and closed when it sends no
//! request head in time or sits idle between requests (see `conn`). Out of
//! file descriptors, the loop backs off (warning at most every 10 s) until
//! timeouts give some back. Stops accepting when `stop` fires, then waits for
//! in-flight HTTP requests. Upgraded (WebSocket) connections leave hyper at
//! the upgrade; ending them is the shutdown's job.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn::Connections;
use super::forward::Forwarding;
use super::service::ConnService;

/// hyper's smallest allowed read buffer.
const READ_BUFFER_MAX: usize = 8192;
/// Back-off after a failed accept, doubling up to the maximum.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(500);
/// At most one "accept failed" warning per this period.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: TcpListener,
    router: Router,
    connections: Arc<Connections>,
    forwarding: Option<Arc<Forwarding>>,
    stop: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    // Head and idle timeouts are `conn`'s (hyper's one timer would close idle keep-alives at the head timeout).
    builder
        .max_buf_size(READ_BUFFER_MAX)
        .keep_alive(true)
        .header_read_timeout(None);
    let tracker = TaskTracker::new();
    let mut accept_errors = AcceptErrors::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    accept_errors.succeeded();
                    accepted
                }
                Err(e) => {
                    connections.accept_errors.increment(1);
                    let pause = accept_errors.failed(&e);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => continue,
                        _ = stop.cancelled() => break,
                    }
                }
            },
            _ = stop.cancelled() => break,
        };
        let Some(io) = connections.admit(stream, peer.ip()) else {
            continue; // over the per-address cap: closed at once
        };
        let conn = io.registration();
        let service = ConnService {
            router: router.clone(),
            connections: connections.clone(),
            conn: conn.clone(),
            peer,
            forwarding: forwarding.clone(),
        };
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let stop = stop.clone();
        let connections = connections.clone();
        tracker.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let shared = conn.shared;
            tokio::select! {
                _ = connection.as_mut() => {}
                why = shared.expired(connections.timeouts) => connections.count_expired(why),
                _ = stop.cancelled() => {
                    // Finish the request in flight (a long-poll ends when transports close);
                    // a head or an idle connection still has its timeout.
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        why = shared.expired(connections.timeouts) => connections.count_expired(why),
                    }
                }
            }
            shared.done();
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Failed accepts (out of file descriptors and the like): how long to pause,
/// and a warning at most every `ACCEPT_WARN_EVERY` with how many were not logged.
#[derive(Default)]
struct AcceptErrors {
    backoff: Option<Duration>,
    last_warning: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn succeeded(&mut self) {
        self.backoff = None;
    }

    fn failed(&mut self, error: &std::io::Error) -> Duration {
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_WARN_EVERY)
        {
            tracing::warn!(error = %error, suppressed = self.unlogged, "accept failed; backing off");
            self.last_warning = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        let pause = self
            .backoff
            .map_or(ACCEPT_BACKOFF_MIN, |b| (b * 2).min(ACCEPT_BACKOFF_MAX));
        self.backoff = Some(pause);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failed_accepts_back_off_doubling_to_a_cap_and_reset_on_success() {
        let mut errors = AcceptErrors::default();
        let emfile = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..10).map(|_| errors.failed(&emfile)).collect();
        assert_eq!(pauses[0], ACCEPT_BACKOFF_MIN);
        assert_eq!(pauses[1], ACCEPT_BACKOFF_MIN * 2);
        assert_eq!(*pauses.last().unwrap(), ACCEPT_BACKOFF_MAX);
        assert_eq!(
            errors.unlogged, 9,
            "one warning, nine suppressed within the period"
        );
        tokio::time::advance(ACCEPT_WARN_EVERY).await;
        errors.failed(&emfile);
        assert_eq!(errors.unlogged, 0, "warned again after the period");
        errors.succeeded();
        assert_eq!(errors.failed(&emfile), ACCEPT_BACKOFF_MIN);
    }
}
