//! Chat packets for a Socket.IO client that falls behind. A socket's queue is
//! bounded in packets (price updates that do not fit are dropped and
//! counted); a chat packet that does not fit waits here instead, in order,
//! and is retried every few milliseconds until the socket has room again or
//! goes away. Later chat packets for that socket queue behind it so the order
//! holds. The wait is bounded in bytes (`--socket-max-queued-bytes`): a client
//! that falls further behind is not reading, and loses its transport — the
//! connection is closed under it, with no Socket.IO disconnect, so it
//! reconnects and pages what it missed with `chat:history` — rather than
//! holding the server's memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError, SocketIo, TransportType};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::server::conn::Registration;

const RETRY_EVERY: Duration = Duration::from_millis(20);

/// One chat packet and its size in bytes (as serialized).
type Packet = (&'static str, Arc<Value>, usize);

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Queued behind a full socket queue; it goes out when there is room.
    Held,
    /// The socket was this far behind: its transport was closed, what waited dropped.
    CutOff,
    /// The socket is gone.
    Closed,
}

/// What waits for one socket.
#[derive(Default)]
struct Waiting {
    packets: VecDeque<Packet>,
    bytes: usize,
}

pub struct ChatBacklog {
    waiting: Mutex<HashMap<Sid, Waiting>>,
    /// Bytes one socket may have waiting here.
    max_bytes: usize,
}

impl ChatBacklog {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            waiting: Mutex::default(),
            max_bytes,
        }
    }

    /// Emits to `socket` now, or after what already waits for it; `size` is
    /// the packet's size in bytes.
    pub fn send(&self, socket: &SocketRef, event: &'static str, data: &Arc<Value>, size: usize) -> Outcome {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = waiting.get_mut(&socket.id) {
            if queue.bytes + size > self.max_bytes {
                waiting.remove(&socket.id);
                drop(waiting);
                cut_off(socket);
                return Outcome::CutOff;
            }
            queue.packets.push_back((event, data.clone(), size));
            queue.bytes += size;
            return Outcome::Held;
        }
        match socket.emit(event, &**data) {
            Ok(()) => Outcome::Sent,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                let queue = Waiting {
                    packets: VecDeque::from([(event, data.clone(), size)]),
                    bytes: size,
                };
                waiting.insert(socket.id, queue);
                Outcome::Held
            }
            Err(_) => Outcome::Closed,
        }
    }

    /// Sends what waits, in order, as far as each socket has room; forgets
    /// sockets that are gone.
    fn retry(&self, io: &SocketIo) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|sid, queue| {
            let Some(socket) = io.get_socket(*sid) else {
                return false;
            };
            while let Some((event, data, size)) = queue.packets.front() {
                match socket.emit(*event, &**data) {
                    Ok(()) => {
                        queue.bytes -= size;
                        queue.packets.pop_front();
                    }
                    Err(SendError::Socket(SocketError::InternalChannelFull)) => return true,
                    Err(_) => return false,
                }
            }
            false
        });
    }

    /// Retries every `RETRY_EVERY` until `shutdown` fires.
    pub fn spawn_retry(self: Arc<Self>, io: SocketIo, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = clock::ticker(RETRY_EVERY);
            while clock::next_tick(&mut ticker, &shutdown).await {
                self.retry(&io);
            }
        })
    }
}

/// Ends the transport of a socket that stopped reading: a WebSocket's
/// connection is closed under it (the client sees the transport close and
/// reconnects); a long-polling session ends by itself when its client stops
/// polling (Engine.IO heartbeat), so there nothing more is queued for it.
fn cut_off(socket: &SocketRef) {
    tracing::warn!(sid = %socket.id, "Socket.IO client too far behind on chat: transport closed");
    if socket.transport_type() == TransportType::Websocket
        && let Some(connection) = socket.req_parts().extensions.get::<Registration>()
    {
        connection.sever();
    }
}
