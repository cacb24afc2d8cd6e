//! Chat packets are never dropped for a Socket.IO client that falls behind.
//! A socket's queue is bounded (price updates that do not fit are dropped and
//! counted); a chat packet that does not fit waits here instead, in order,
//! and is retried every few milliseconds until the socket has room again or
//! goes away. Later chat packets for that socket queue behind it so the order
//! holds. The wait is bounded too: past `PER_SOCKET_MAX` packets the socket
//! is not reading at all, and further chat packets for it are dropped and
//! counted (the client can still page them in with `chat:history`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock;

/// Chat packets held for one socket before further ones are dropped.
pub const PER_SOCKET_MAX: usize = 10_000;
const RETRY_EVERY: Duration = Duration::from_millis(20);

type Packet = (&'static str, Arc<Value>);

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Queued behind a full socket queue; it goes out when there is room.
    Held,
    /// The socket has `PER_SOCKET_MAX` packets waiting already.
    Dropped,
    /// The socket is gone.
    Closed,
}

#[derive(Default)]
pub struct ChatBacklog {
    waiting: Mutex<HashMap<Sid, VecDeque<Packet>>>,
}

impl ChatBacklog {
    /// Emits to `socket` now, or after what already waits for it.
    pub fn send(&self, socket: &SocketRef, event: &'static str, data: &Arc<Value>) -> Outcome {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = waiting.get_mut(&socket.id) {
            if queue.len() >= PER_SOCKET_MAX {
                return Outcome::Dropped;
            }
            queue.push_back((event, data.clone()));
            return Outcome::Held;
        }
        match socket.emit(event, &**data) {
            Ok(()) => Outcome::Sent,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                waiting.insert(socket.id, VecDeque::from([(event, data.clone())]));
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
            while let Some((event, data)) = queue.front() {
                match socket.emit(*event, &**data) {
                    Ok(()) => {
                        queue.pop_front();
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
