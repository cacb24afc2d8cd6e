//! Nothing lost across a reconnect (CONTRACT §8): recoverable events (trades
//! in `trades:<symbol>`, emits to `user:<id>`) get an offset where they are
//! published, are kept per room (memory ring on one node, or a Redis stream
//! per room), reach `recover` sockets with the offset as one extra argument,
//! and are replayed to a socket that sends `resume`.
//!
//! Sockets that connected without `recover` get the plain broadcast, as
//! before; while no `recover` socket is on the node it is the very same
//! broadcast. `recover` sockets of a room are also in its internal
//! `$rec:<room>` room, which the plain broadcast leaves out, and are listed
//! here, so that each gets the event with its offset — or, while it resumes,
//! has it held until the replay is written (see [`Recovery::resume`]).
//!
//! Every delivery of a recorded event on this node, and every change to a
//! held socket, happens under one lock (`order`), so a room's events reach a
//! socket in offset order, and a resuming socket misses none and gets none
//! twice.

mod members;
pub mod memory;
pub mod offset;
pub mod redis;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::metrics::{Metrics, RECOVERY_REPLAYED, RECOVERY_UNRECORDED};
use crate::protocol::recover_room;
pub use members::Hold;
use members::Members;
use memory::MemoryHistory;
use offset::Offset;
use redis::{Claim, RedisHistory};

/// How long a replay may wait for a slow socket's queue before giving up.
const REPLAY_PATIENCE: Duration = Duration::from_secs(5);
/// Service-message counts kept before old ones are swept (at most once a second).
const SEEN_SWEEP_ABOVE: usize = 10_000;
/// Rounds of writing held live events outside the lock before the last round under it.
const DRAIN_ROUNDS: usize = 8;

/// What is kept per room.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `--recovery-max-events`.
    pub max_events: usize,
    /// `--recovery-ttl-s`, in milliseconds.
    pub ttl_ms: u64,
}

/// One event as kept: its name and its payload, serialized once.
#[derive(Debug)]
pub struct Stored {
    pub event: String,
    pub data: Box<RawValue>,
}

/// A kept event and its offset in one room.
#[derive(Debug, Clone)]
pub struct Entry {
    pub offset: Offset,
    pub stored: Arc<Stored>,
}

/// What a room kept after an offset.
#[derive(Debug)]
pub enum Replay {
    /// The offset is older than what is kept: nothing is replayed.
    Gap,
    Events(Vec<Entry>),
}

/// An event to publish: to `rooms`; kept (and given an offset) in `recorded`,
/// the recoverable ones among them.
pub struct Pending {
    pub rooms: Vec<String>,
    pub recorded: Vec<String>,
    pub stored: Arc<Stored>,
}

/// An event with its offsets, ready for this node's sockets.
struct Recorded {
    rooms: Vec<String>,
    except: Vec<String>,
    stored: Arc<Stored>,
    offsets: Vec<(String, Offset)>,
}

/// A `recorded` envelope item (see `redis::RECORD`).
#[derive(Deserialize)]
struct Wire {
    rooms: Vec<String>,
    /// Sockets in these rooms had the event from an earlier envelope (a Redis
    /// Cluster records rooms of different slots in separate runs).
    #[serde(default)]
    except: Vec<String>,
    event: String,
    data: Box<RawValue>,
    offsets: HashMap<String, String>,
}

/// Where recorded events are kept, chosen once at start-up.
pub enum History {
    Memory(MemoryHistory),
    Redis(RedisHistory),
}

pub struct Recovery {
    io: SocketIo,
    history: History,
    members: Members,
    order: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
    seen: Mutex<Seen>,
}

/// Service messages seen lately: hash → (times seen, last seen).
struct Seen {
    messages: HashMap<u64, (u32, Instant)>,
    swept: Instant,
}

impl Recovery {
    pub fn new(io: SocketIo, history: History, metrics: Arc<Metrics>) -> Self {
        Self {
            io,
            history,
            members: Members::default(),
            order: tokio::sync::Mutex::new(()),
            metrics,
            seen: Mutex::new(Seen {
                messages: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Publishes `pending` to every node, with offsets. With Redis the events
    /// reach this node's sockets too through the fanout channel (in offset
    /// order); while Redis is away they reach this node's sockets at once,
    /// without offsets (counted in `roomcast_recovery_unrecorded_total`).
    pub async fn publish(&self, pending: Vec<Pending>) {
        match &self.history {
            History::Memory(memory) => {
                let _order = self.order.lock().await;
                let now = clock::unix_millis();
                for p in pending {
                    let offsets = p
                        .recorded
                        .into_iter()
                        .map(|room| {
                            let offset = memory.append(&room, &p.stored, now);
                            (room, offset)
                        })
                        .collect();
                    self.deliver(Recorded {
                        rooms: p.rooms,
                        except: Vec::new(),
                        stored: p.stored,
                        offsets,
                    })
                    .await;
                }
            }
            History::Redis(redis) => {
                if let Err(e) = redis.record(&pending, None).await {
                    tracing::warn!(error = %e, "events not recorded: delivered to this node only");
                    self.deliver_unrecorded(pending).await;
                }
            }
        }
    }

    /// A service message every node received (`roomcast:trades`,
    /// `roomcast:emit`): the first node to claim it records and publishes it.
    pub async fn publish_claimed(&self, pending: Vec<Pending>, payload: &[u8]) {
        let History::Redis(redis) = &self.history else {
            return self.publish(pending).await;
        };
        let claim = Claim {
            payload,
            index: self.times_seen(payload),
        };
        if let Err(e) = redis.record(&pending, Some(claim)).await {
            tracing::warn!(error = %e, "service events not recorded: delivered to this node only");
            self.deliver_unrecorded(pending).await;
        }
    }

    /// How many identical messages this node saw before this one lately;
    /// every node counts the same, as Redis delivers a channel's messages to
    /// every subscriber in the same order. The count starts again only after
    /// twice the claim's lifetime without an identical message, when every
    /// claim key of that message has expired.
    fn times_seen(&self, payload: &[u8]) -> u32 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        payload.hash(&mut hasher);
        let key = hasher.finish();
        let now = Instant::now();
        let window = Duration::from_millis(2 * redis::CLAIM_TTL_MS);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.messages.len() > SEEN_SWEEP_ABOVE && now.duration_since(seen.swept) > Duration::from_secs(1) {
            seen.messages
                .retain(|_, (_, at)| now.duration_since(*at) < window);
            seen.swept = now;
        }
        let slot = seen.messages.entry(key).or_insert((0, now));
        if now.duration_since(slot.1) >= window {
            *slot = (0, now);
        }
        let index = slot.0;
        slot.0 += 1;
        slot.1 = now;
        index
    }

    async fn deliver_unrecorded(&self, pending: Vec<Pending>) {
        self.metrics
            .counter(RECOVERY_UNRECORDED, vec![])
            .increment(pending.len() as u64);
        let _order = self.order.lock().await;
        for p in pending {
            let sent = self
                .io
                .local()
                .to(p.rooms)
                .emit(&p.stored.event, &p.stored.data)
                .await;
            self.metrics.record_broadcast(&p.stored.event, sent);
        }
    }

    /// Delivers a `recorded` envelope (from any node, this one included).
    pub async fn deliver_envelope(&self, items: &[u8]) -> Result<(), String> {
        let wires: Vec<Wire> = serde_json::from_slice(items).map_err(|e| e.to_string())?;
        let _order = self.order.lock().await;
        for wire in wires {
            let offsets = wire
                .offsets
                .into_iter()
                .map(|(room, offset)| Ok((room, offset.parse::<Offset>().map_err(|e| e.to_string())?)))
                .collect::<Result<_, String>>()?;
            let stored = Arc::new(Stored {
                event: wire.event,
                data: wire.data,
            });
            self.deliver(Recorded {
                rooms: wire.rooms,
                except: wire.except,
                stored,
                offsets,
            })
            .await;
        }
        Ok(())
    }

    /// To this node's sockets: the plain broadcast, and each `recover`
    /// member its offset (or into its hold). Called under `order`.
    async fn deliver(&self, recorded: Recorded) {
        let Recorded {
            rooms,
            except,
            stored,
            offsets,
        } = recorded;
        if !self.members.any() || offsets.is_empty() {
            let sent = self
                .io
                .local()
                .to(rooms)
                .except(except)
                .emit(&stored.event, &stored.data)
                .await;
            return self.metrics.record_broadcast(&stored.event, sent);
        }
        let mut marked: Vec<String> = offsets.iter().map(|(room, _)| recover_room(room)).collect();
        marked.extend(except);
        let sent = self
            .io
            .local()
            .to(rooms)
            .except(marked)
            .emit(&stored.event, &stored.data)
            .await;
        self.metrics.record_broadcast(&stored.event, sent);
        for (room, offset) in &offsets {
            self.members.deliver(room, *offset, &stored);
        }
    }

    /// A `recover` socket is (or goes) into `room`: it gets the room's events
    /// with offsets, straight away or held as `hold` says.
    pub fn join(&self, socket: &SocketRef, room: &str, hold: Hold) {
        self.members.add(socket, room, hold);
        socket.join([recover_room(room), room.to_owned()]);
    }

    /// Lets through what waits for the socket's first `resume` (see [`Hold::UntilResume`]).
    pub async fn release_waiting(&self, sid: Sid) {
        let _order = self.order.lock().await;
        self.members.release_waiting(sid);
    }

    pub fn leave(&self, socket: &SocketRef, room: &str) {
        socket.leave([room.to_owned(), recover_room(room)]);
        self.members.remove(socket.id, room);
    }

    /// The socket is gone.
    pub fn forget(&self, sid: Sid) {
        self.members.forget(sid);
    }

    /// Joins `socket` to each room and sends the room's events after the
    /// given offset in order, then lets live events through again. Returns
    /// the count replayed and the rooms with a gap.
    ///
    /// Per room: (1) under `order`, join and hold live events; (2) read what
    /// the room kept after the offset; (3) write it; (4) write the held live
    /// events after the last one written (an event both read and held is
    /// written once), and stop holding. An event published at any point is
    /// either read, or held, or both.
    pub async fn resume(&self, socket: &SocketRef, rooms: Vec<(String, Offset)>) -> (usize, Vec<String>) {
        let mut replayed = 0;
        let mut gaps = Vec::new();
        for (room, after) in rooms {
            {
                let _order = self.order.lock().await;
                self.members.add(socket, &room, Hold::Replaying);
                socket.join([recover_room(&room), room.clone()]);
            }
            let now = clock::unix_millis();
            let read = match &self.history {
                History::Memory(memory) => Ok(memory.after(&room, after, now)),
                History::Redis(redis) => redis.after(&room, after, now).await,
            };
            let mut last = after;
            match read {
                Ok(Replay::Events(entries)) => {
                    for entry in entries {
                        if !emit_patiently(socket, &entry.stored, entry.offset).await {
                            break;
                        }
                        last = entry.offset;
                        replayed += 1;
                    }
                }
                Ok(Replay::Gap) => gaps.push(room.clone()),
                Err(e) => {
                    tracing::warn!(sid = %socket.id, room = ?room, error = %e, "history unavailable: reported as a gap");
                    gaps.push(room.clone());
                }
            }
            self.release(socket, &room, last).await;
        }
        self.release_waiting(socket.id).await;
        self.metrics
            .counter(RECOVERY_REPLAYED, vec![])
            .increment(replayed as u64);
        (replayed, gaps)
    }

    /// Writes what was held for `socket` in `room` after `last`, then lets live events through.
    async fn release(&self, socket: &SocketRef, room: &str, mut last: Offset) {
        for round in 0..=DRAIN_ROUNDS {
            let order = self.order.lock().await;
            let last_round = round == DRAIN_ROUNDS;
            let held = self.members.take_held(socket.id, room, last_round);
            if held.is_empty() {
                return;
            }
            if last_round {
                for entry in held.into_iter().filter(|e| e.offset > last) {
                    let _ = emit_with_offset(socket, &entry.stored, entry.offset);
                }
                return;
            }
            drop(order);
            for entry in held {
                if entry.offset > last {
                    emit_patiently(socket, &entry.stored, entry.offset).await;
                    last = entry.offset;
                }
            }
        }
    }

    /// Drops kept events past their TTL (memory backend; Redis expires its own).
    pub fn spawn_sweeper(self: Arc<Self>, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = clock::ticker(every);
            while clock::next_tick(&mut ticker, &shutdown).await {
                if let History::Memory(memory) = &self.history {
                    memory.sweep(clock::unix_millis());
                }
            }
        })
    }
}

fn emit_with_offset(socket: &SocketRef, stored: &Stored, offset: Offset) -> Result<(), SendError> {
    socket.emit(&stored.event, &(&stored.data, offset.to_string()))
}

/// Emits, waiting while the socket's queue is full (a replay can be longer
/// than the queue); `false` when the socket is gone or stayed full too long.
async fn emit_patiently(socket: &SocketRef, stored: &Stored, offset: Offset) -> bool {
    let deadline = Instant::now() + REPLAY_PATIENCE;
    loop {
        match emit_with_offset(socket, stored, offset) {
            Ok(()) => return true,
            Err(SendError::Socket(SocketError::InternalChannelFull)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(_) => return false,
        }
    }
}
