//! One accepted TCP connection: its IO (which outlives hyper when the
//! connection is upgraded to a WebSocket), the per-address count it holds, and
//! the clock that closes it when it sends no request head in time or sits idle
//! between requests. Also the node-wide [`Connections`]: per-address caps, the
//! Socket.IO WebSocket connections to end at shutdown, and their counters.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Shutdown};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use metrics::{Counter, Label};
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ACCEPT_ERRORS, CONNECTIONS_CLOSED, CONNECTIONS_REFUSED, Metrics};

/// After answering a request whose body was not read (413 on the declared
/// length, a handler that did not need it), the connection reads and discards
/// what the client is still sending before closing, so the client reads the
/// answer instead of a reset (nginx's lingering close). Bounded in bytes and
/// time: at most this many bytes,
const LINGER_MAX_BYTES: u64 = 16 << 20;
/// for at most this long in all,
const LINGER_MAX_TIME: Duration = Duration::from_secs(10);
/// and no longer than this without a byte.
const LINGER_GAP: Duration = Duration::from_secs(2);

/// The time bounds of a connection, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A request head must be complete this long after the connection opened
    /// (or after its first byte, for later requests).
    pub header: Duration,
    /// A connection with no request in flight is closed after this long.
    pub idle: Duration,
    /// A request body must be complete this long after its head.
    pub body: Duration,
}

/// Why a connection was closed by the server before the client closed it.
#[derive(Debug, Clone, Copy)]
pub enum Expired {
    Header,
    Idle,
}

/// The node's connections: the per-address cap, the Socket.IO WebSocket
/// connections (ended at shutdown without an Engine.IO `close` packet), counters.
pub struct Connections {
    pub timeouts: Timeouts,
    /// Largest request body in bytes (413 above, checked on the declared length).
    pub max_body: u64,
    /// Concurrent connections per client address; 0: no cap.
    per_ip_limit: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    socket_io_ws: Mutex<HashMap<u64, SocketIoWs>>,
    /// Notified when a Socket.IO WebSocket connection goes.
    socket_io_ws_gone: Notify,
    next_id: AtomicU64,
    /// Fires at shutdown: Socket.IO transports end (WebSockets, long-polls).
    pub sever: CancellationToken,
    refused_per_ip: Counter,
    closed_header: Counter,
    closed_idle: Counter,
    pub closed_body: Counter,
    pub accept_errors: Counter,
}

impl Connections {
    pub fn new(timeouts: Timeouts, max_body: u64, per_ip_limit: usize, metrics: &Metrics) -> Self {
        let closed =
            |reason: &'static str| metrics.counter(CONNECTIONS_CLOSED, vec![Label::new("reason", reason)]);
        Self {
            timeouts,
            max_body,
            per_ip_limit,
            per_ip: Mutex::default(),
            socket_io_ws: Mutex::default(),
            socket_io_ws_gone: Notify::new(),
            next_id: AtomicU64::new(0),
            sever: CancellationToken::new(),
            refused_per_ip: metrics.counter(CONNECTIONS_REFUSED, vec![Label::new("reason", "per_ip_limit")]),
            closed_header: closed("header_timeout"),
            closed_idle: closed("idle_timeout"),
            closed_body: closed("body_timeout"),
            accept_errors: metrics.counter(ACCEPT_ERRORS, vec![]),
        }
    }

    /// Takes a slot for `peer`, or `None` (counted) when it holds the cap already.
    pub fn admit(self: &Arc<Self>, stream: TcpStream, peer: IpAddr) -> Option<ConnIo> {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_canonical(),
            v4 => v4,
        };
        {
            let mut counts = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let count = counts.entry(peer).or_insert(0);
            if self.per_ip_limit > 0 && *count >= self.per_ip_limit {
                drop(counts);
                self.refused_per_ip.increment(1);
                return None;
            }
            *count += 1;
        }
        let shared = Arc::new(ConnShared {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            phase: Mutex::new(Phase::Head(Instant::now())),
            idle: AtomicBool::new(false),
            linger: AtomicBool::new(false),
            severed: AtomicBool::new(false),
            changed: Notify::new(),
        });
        Some(ConnIo {
            stream: Arc::new(stream),
            shared,
            slot: Some(Slot {
                connections: self.clone(),
                peer,
            }),
            written_whole: true,
        })
    }

    /// Ends every Socket.IO WebSocket connection the way Node socket.io's
    /// `io.close()` does: the transport ends (its queued packets are still
    /// written, then a WebSocket close frame), with no Engine.IO `close`
    /// packet, which python-socketio reads as "do not reconnect". Closing the
    /// read side makes engineioxide see the end of the stream. Pending
    /// long-polls are answered 503 (see `service`).
    pub fn sever_socket_io(&self) {
        self.sever.cancel();
        let streams: Vec<_> = self
            .socket_io_ws
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|(stream, shared)| {
                shared.severed.store(true, Ordering::Relaxed);
                stream.upgrade()
            })
            .collect();
        for stream in streams {
            let _ = SockRef::from(&*stream).shutdown(Shutdown::Read);
        }
    }

    /// Resolves once no Socket.IO WebSocket connection is open.
    pub async fn socket_io_ws_closed(&self) {
        loop {
            let gone = self.socket_io_ws_gone.notified();
            let mut gone = std::pin::pin!(gone);
            gone.as_mut().enable();
            if self
                .socket_io_ws
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
            {
                return;
            }
            gone.await;
        }
    }

    pub fn count_expired(&self, why: Expired) {
        match why {
            Expired::Header => self.closed_header.increment(1),
            Expired::Idle => self.closed_idle.increment(1),
        }
    }
}

/// A Socket.IO WebSocket connection, as the shutdown list holds it.
type SocketIoWs = (Weak<TcpStream>, Arc<ConnShared>);

/// A connection's place in its address's count (and, for a Socket.IO
/// WebSocket, in the shutdown list); given back on drop.
struct Slot {
    connections: Arc<Connections>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.connections.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head; the first byte (or the accept) came at this instant.
    Head(Instant),
    /// This many requests in flight (a held long-poll counts): no connection timeout.
    Busy(u32),
    /// No request in flight since this instant.
    Idle(Instant),
    /// Left hyper (upgraded, or finished): nobody is watching.
    Done,
}

/// What the IO, the request service and the connection's watchdog share.
pub struct ConnShared {
    id: u64,
    phase: Mutex<Phase>,
    /// `phase` is `Idle` (read without the lock on every read).
    idle: AtomicBool,
    /// A request body was left unread: read the rest before closing.
    linger: AtomicBool,
    /// A Socket.IO WebSocket ended by shutdown: gets a close frame (1001) as it goes.
    severed: AtomicBool,
    changed: Notify,
}

impl ConnShared {
    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
        self.idle
            .store(matches!(phase, Phase::Idle(_)), Ordering::Release);
        self.changed.notify_one();
    }

    /// The first bytes of a new request head arrived on an idle connection.
    fn head_begins(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.idle.store(false, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// A request head arrived: the connection is busy until the returned
    /// guard (held by the response body) is dropped.
    pub fn request_started(self: &Arc<Self>) -> BusyGuard {
        {
            let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
            *phase = match *phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                Phase::Done => Phase::Done,
                _ => Phase::Busy(1),
            };
        }
        self.idle.store(false, Ordering::Release);
        // The previous request's body was read to its end, or this head could not have been read.
        self.linger.store(false, Ordering::Relaxed);
        BusyGuard(self.clone())
    }

    /// Read and discard what the client still sends before closing.
    pub fn linger(&self) {
        self.linger.store(true, Ordering::Relaxed);
    }

    /// Do not linger: the client is too slow to wait for.
    pub fn no_linger(&self) {
        self.linger.store(false, Ordering::Relaxed);
    }

    /// The connection left hyper: no more timeouts.
    pub fn done(&self) {
        self.set(Phase::Done);
    }

    /// Resolves when the connection has been waiting too long for a request
    /// head, or idle too long between requests.
    pub async fn expired(&self, timeouts: Timeouts) -> Expired {
        loop {
            let phase = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
            let deadline = match phase {
                Phase::Head(since) => Some((since + timeouts.header, Expired::Header)),
                Phase::Idle(since) => Some((since + timeouts.idle, Expired::Idle)),
                Phase::Busy(_) | Phase::Done => None,
            };
            match deadline {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// Ends a request's busy time when dropped (with its response body).
pub struct BusyGuard(Arc<ConnShared>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut phase = self.0.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Busy(n) = *phase {
            *phase = if n > 1 {
                Phase::Busy(n - 1)
            } else {
                Phase::Idle(Instant::now())
            };
            let idle = matches!(*phase, Phase::Idle(_));
            drop(phase);
            self.0.idle.store(idle, Ordering::Release);
            self.0.changed.notify_one();
        }
    }
}

/// The IO of one accepted connection, as hyper (and after an upgrade, the
/// WebSocket) reads and writes it.
pub struct ConnIo {
    stream: Arc<TcpStream>,
    shared: Arc<ConnShared>,
    slot: Option<Slot>,
    /// Everything handed to the last write went out: the writer's buffer
    /// is empty, so the stream is between two WebSocket frames.
    written_whole: bool,
}

impl ConnIo {
    /// A handle for registering this connection later (from the request service).
    pub fn registration(&self) -> Registration {
        Registration {
            shared: self.shared.clone(),
            stream: Arc::downgrade(&self.stream),
            connections: self.slot.as_ref().map(|s| s.connections.clone()),
        }
    }
}

/// What the request service needs to list its connection as a Socket.IO WebSocket.
#[derive(Clone)]
pub struct Registration {
    pub shared: Arc<ConnShared>,
    stream: Weak<TcpStream>,
    connections: Option<Arc<Connections>>,
}

impl Registration {
    /// Ends this connection's Socket.IO transport the way `sever_socket_io`
    /// ends all of them (read side closed; no Engine.IO `close` packet), for
    /// a client that stopped reading.
    pub fn sever(&self) {
        if let Some(stream) = self.stream.upgrade() {
            self.shared.severed.store(true, Ordering::Relaxed);
            let _ = SockRef::from(&*stream).shutdown(Shutdown::Read);
        }
    }

    /// Lists the connection as a Socket.IO WebSocket (ended by `sever_socket_io`).
    pub fn socket_io_ws(&self) {
        if let Some(connections) = &self.connections {
            connections
                .socket_io_ws
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(self.shared.id, (self.stream.clone(), self.shared.clone()));
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    if n > 0 && self.shared.idle.load(Ordering::Acquire) {
                        self.shared.head_begins();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.written_whole = false;
        loop {
            ready!(this.stream.poll_write_ready(cx))?;
            match this.stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => {
                    this.written_whole = result.as_ref().is_ok_and(|&n| n == buf.len());
                    return Poll::Ready(result);
                }
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.written_whole = false;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        loop {
            ready!(this.stream.poll_write_ready(cx))?;
            match this.stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => {
                    this.written_whole = result.as_ref().is_ok_and(|&n| n == total);
                    return Poll::Ready(result);
                }
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(SockRef::from(&*self.stream).shutdown(Shutdown::Write))
    }
}

/// A WebSocket close frame from the server: code 1001, going away.
const CLOSE_GOING_AWAY: [u8; 4] = [0x88, 0x02, 0x03, 0xE9];

impl Drop for ConnIo {
    fn drop(&mut self) {
        // The WebSocket library stops writing once the read side ended, so the
        // close frame that tells the client the server is going comes from here.
        if self.written_whole && self.shared.severed.load(Ordering::Relaxed) {
            let _ = self.stream.try_write(&CLOSE_GOING_AWAY);
        }
        let slot = self.slot.take();
        if let Some(slot) = &slot {
            let removed = slot
                .connections
                .socket_io_ws
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.shared.id);
            if removed.is_some() {
                slot.connections.socket_io_ws_gone.notify_waiters();
            }
        }
        if self.shared.linger.load(Ordering::Relaxed)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(linger(self.stream.clone(), slot));
        }
    }
}

/// Half-closes, then reads and discards what the client still sends, within
/// the linger bounds; the connection (and its slot) goes when this returns.
async fn linger(stream: Arc<TcpStream>, _slot: Option<Slot>) {
    let _ = SockRef::from(&*stream).shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER_MAX_TIME;
    let mut discarded = 0u64;
    let mut sink = [0u8; 8192];
    while discarded < LINGER_MAX_BYTES {
        let wait = deadline.min(Instant::now() + LINGER_GAP);
        match tokio::time::timeout_at(wait, stream.readable()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        match stream.try_read(&mut sink) {
            Ok(0) => return,
            Ok(n) => discarded += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// The default per-address cap: half the process's open-file limit, so one
/// address can never take the descriptors every other client needs.
pub fn default_per_ip_limit() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    (soft.unwrap_or(1024) / 2).max(16)
}
