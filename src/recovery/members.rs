//! This node's `recover` sockets per recoverable room, and what is held for
//! the ones that are resuming.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;

use super::offset::Offset;
use super::{Entry, Stored, emit_with_offset};

/// Live events held for one resuming socket in one room, at most this many;
/// past it the oldest are dropped (the replay itself is bounded by the same count).
const HOLD_MAX: usize = 10_000;

struct Member {
    socket: SocketRef,
    /// `Some` while live events of this room wait for the socket (see [`Hold`]).
    held: Option<Vec<Entry>>,
    /// The socket is replaying this room; only the replay releases what is held.
    replaying: bool,
}

/// Whether a member's live events go straight out or wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Straight out.
    No,
    /// Wait for the socket's first `resume` (or a short time): its own user
    /// room from the handshake, so that no live event overtakes the replay.
    UntilResume,
    /// Wait until the replay of this room is written.
    Replaying,
}

#[derive(Default)]
pub struct Members {
    rooms: Mutex<Rooms>,
    /// Memberships on this node; 0 means the plain broadcast reaches everyone.
    count: AtomicUsize,
}

#[derive(Default)]
struct Rooms {
    by_room: HashMap<String, Vec<Member>>,
    by_socket: HashMap<Sid, Vec<String>>,
}

impl Members {
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists `socket` in `room` (once), its live events held as `hold` says
    /// (what is held already stays held).
    pub fn add(&self, socket: &SocketRef, room: &str, hold: Hold) {
        let mut rooms = self.lock();
        let list = rooms.by_room.entry(room.to_owned()).or_default();
        match list.iter_mut().find(|m| m.socket.id == socket.id) {
            Some(member) => {
                if hold != Hold::No && member.held.is_none() {
                    member.held = Some(Vec::new());
                }
                member.replaying |= hold == Hold::Replaying;
            }
            None => {
                list.push(Member {
                    socket: socket.clone(),
                    held: (hold != Hold::No).then(Vec::new),
                    replaying: hold == Hold::Replaying,
                });
                rooms
                    .by_socket
                    .entry(socket.id)
                    .or_default()
                    .push(room.to_owned());
                self.count.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    pub fn remove(&self, sid: Sid, room: &str) {
        let mut rooms = self.lock();
        if Self::unlist(&mut rooms, sid, room) {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(held) = rooms.by_socket.get_mut(&sid) {
            held.retain(|r| r != room);
            if held.is_empty() {
                rooms.by_socket.remove(&sid);
            }
        }
    }

    pub fn forget(&self, sid: Sid) {
        let mut rooms = self.lock();
        for room in rooms.by_socket.remove(&sid).unwrap_or_default() {
            if Self::unlist(&mut rooms, sid, &room) {
                self.count.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    fn unlist(rooms: &mut Rooms, sid: Sid, room: &str) -> bool {
        let Some(list) = rooms.by_room.get_mut(room) else {
            return false;
        };
        let before = list.len();
        list.retain(|m| m.socket.id != sid);
        let removed = list.len() != before;
        if list.is_empty() {
            rooms.by_room.remove(room);
        }
        removed
    }

    /// Sends the event with its offset to each member of `room`, or holds it.
    pub fn deliver(&self, room: &str, offset: Offset, stored: &Arc<Stored>) {
        let mut rooms = self.lock();
        let Some(list) = rooms.by_room.get_mut(room) else {
            return;
        };
        for member in list {
            match &mut member.held {
                Some(held) => {
                    if held.len() >= HOLD_MAX {
                        held.remove(0);
                    }
                    held.push(Entry {
                        offset,
                        stored: stored.clone(),
                    });
                }
                None => {
                    let _ = emit_with_offset(&member.socket, stored, offset);
                }
            }
        }
    }

    /// Takes what is held for `sid` in `room`; stops holding when nothing was
    /// held, or when `last` says so.
    pub fn take_held(&self, sid: Sid, room: &str, last: bool) -> Vec<Entry> {
        let mut rooms = self.lock();
        let Some(member) = rooms
            .by_room
            .get_mut(room)
            .and_then(|list| list.iter_mut().find(|m| m.socket.id == sid))
        else {
            return Vec::new();
        };
        let held = member.held.as_mut().map(std::mem::take).unwrap_or_default();
        if held.is_empty() || last {
            member.held = None;
            member.replaying = false;
        }
        held
    }

    /// Sends what waits for `sid`'s first `resume` in every room, and lets
    /// live events through there (rooms being replayed are left alone).
    pub fn release_waiting(&self, sid: Sid) {
        let mut rooms = self.lock();
        let Rooms { by_room, by_socket } = &mut *rooms;
        for room in by_socket.get(&sid).into_iter().flatten() {
            let member = by_room
                .get_mut(room)
                .and_then(|list| list.iter_mut().find(|m| m.socket.id == sid));
            if let Some(member) = member
                && !member.replaying
                && let Some(held) = member.held.take()
            {
                for entry in held {
                    let _ = emit_with_offset(&member.socket, &entry.stored, entry.offset);
                }
            }
        }
    }
}
