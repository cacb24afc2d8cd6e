//! In-memory chat store for a single node, lost at restart. Bounded per room
//! (`max_len` messages), in rooms and in bytes (an estimate of what it holds):
//! when over, the least recently used room (any operation on it counts as a
//! use) is forgotten whole — messages, read positions, memberships.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use futures_util::future::{BoxFuture, FutureExt};
use metrics::{Counter, Gauge};

use super::{
    ChatMessage, ChatStore, MAX_ROOMS_PER_USER, MessageId, NewMessage, ReadState, RoomSummary, StoreError,
};

/// Estimated fixed costs, in bytes, of what the store holds (struct sizes,
/// map slots, allocator overhead); the variable parts are the strings.
const ROOM_COST: usize = 512;
const ENTRY_COST: usize = 192;
const DEDUPE_COST: usize = 96;
const READ_COST: usize = 96;
const MEMBER_COST: usize = 160;

/// The bounds of a [`MemoryStore`].
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimits {
    /// Messages kept per room (older ones are dropped).
    pub max_len: usize,
    /// Rooms kept; one more evicts the least recently used.
    pub max_rooms: usize,
    /// Estimated bytes kept; over it, least recently used rooms are evicted
    /// (the room in use is trimmed instead when it is the only one left).
    pub max_bytes: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            max_len: 10_000,
            max_rooms: 10_000,
            max_bytes: 256 << 20,
        }
    }
}

/// Where the store reports its size.
#[derive(Clone)]
pub struct MemoryMetrics {
    pub rooms_evicted: Counter,
    pub bytes: Gauge,
}

impl Default for MemoryMetrics {
    fn default() -> Self {
        Self {
            rooms_evicted: Counter::noop(),
            bytes: Gauge::noop(),
        }
    }
}

/// A sender's `clientMsgId`: a pair, so no sender/id split can collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DedupeKey {
    sender: String,
    client_msg_id: String,
}

struct Entry {
    id: MessageId,
    /// As history shows it (edited text, or a tombstone).
    message: ChatMessage,
    /// Kept after a deletion, so a retry is still recognised.
    dedupe: Option<DedupeKey>,
    bytes: usize,
}

fn message_bytes(message: &ChatMessage) -> usize {
    message.id.len()
        + message.room_id.len()
        + message.sender_id.len()
        + message.message.len()
        + message.kind.len()
        + message.client_msg_id.as_ref().map_or(0, String::len)
}

impl Entry {
    fn new(id: MessageId, message: ChatMessage, dedupe: Option<DedupeKey>) -> Self {
        let mut entry = Self {
            id,
            message,
            dedupe,
            bytes: 0,
        };
        entry.bytes = entry.cost();
        entry
    }

    fn cost(&self) -> usize {
        ENTRY_COST
            + message_bytes(&self.message)
            + self
                .dedupe
                .as_ref()
                .map_or(0, |d| DEDUPE_COST + d.sender.len() + d.client_msg_id.len())
    }
}

struct Room {
    /// `entries[i]` has sequence number `first_seq + i`.
    entries: VecDeque<Entry>,
    first_seq: u64,
    client_ids: HashMap<DedupeKey, MessageId>,
    /// user → (last read id, its sequence number).
    reads: HashMap<String, (MessageId, u64)>,
    members: HashSet<String>,
    /// Sequence numbers of deleted messages still kept.
    deleted: BTreeSet<u64>,
    bytes: usize,
    tick: u64,
}

impl Room {
    fn new(room_id: &str) -> Self {
        Self {
            entries: VecDeque::new(),
            first_seq: 1,
            client_ids: HashMap::new(),
            reads: HashMap::new(),
            members: HashSet::new(),
            deleted: BTreeSet::new(),
            bytes: ROOM_COST + room_id.len(),
            tick: 0,
        }
    }

    fn index_of(&self, id: &MessageId) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.id.cmp(id))
    }

    fn push(&mut self, entry: Entry, max_len: usize) {
        if let Some(key) = &entry.dedupe {
            self.client_ids.insert(key.clone(), entry.id);
        }
        self.bytes += entry.bytes;
        self.entries.push_back(entry);
        while self.entries.len() > max_len {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(old) = self.entries.pop_front() {
            if let Some(key) = &old.dedupe {
                self.client_ids.remove(key);
            }
            self.deleted.remove(&self.first_seq);
            self.first_seq += 1;
            self.bytes -= old.bytes;
        }
    }

    fn read_state(&self, user_id: &str) -> ReadState {
        let read = self.reads.get(user_id);
        let next_seq = self.first_seq + self.entries.len() as u64;
        let from = read.map_or(self.first_seq, |(_, seq)| (seq + 1).max(self.first_seq));
        let unread = if from >= next_seq {
            0
        } else {
            next_seq - from - self.deleted.range(from..).count() as u64
        };
        ReadState {
            last_read: read.map(|(id, _)| *id),
            unread,
        }
    }
}

#[derive(Default)]
struct Inner {
    rooms: HashMap<String, Room>,
    /// tick of last use → room.
    lru: BTreeMap<u64, String>,
    /// user → room → when the user last joined it (ms).
    users: HashMap<String, HashMap<String, u64>>,
    bytes: usize,
    tick: u64,
    last_id: Option<MessageId>,
}

impl Inner {
    fn next_id(&mut self) -> MessageId {
        let now = crate::clock::unix_millis();
        let id = match self.last_id {
            Some(last) if now <= last.ms => MessageId {
                ms: last.ms,
                seq: last.seq + 1,
            },
            _ => MessageId { ms: now, seq: 0 },
        };
        self.last_id = Some(id);
        id
    }

    /// Runs `f` on the room (created first when `create`), marking it used
    /// and keeping the byte count; `None` when there is no such room.
    fn with_room<R>(&mut self, room_id: &str, create: bool, f: impl FnOnce(&mut Room) -> R) -> Option<R> {
        if create && !self.rooms.contains_key(room_id) {
            let room = Room::new(room_id);
            self.bytes += room.bytes;
            self.rooms.insert(room_id.to_owned(), room);
        }
        let room = self.rooms.get_mut(room_id)?;
        self.tick += 1;
        self.lru.remove(&room.tick);
        room.tick = self.tick;
        self.lru.insert(self.tick, room_id.to_owned());
        let before = room.bytes;
        let result = f(room);
        self.bytes = self.bytes + room.bytes - before;
        Some(result)
    }

    fn evict(&mut self, room_id: &str) {
        if let Some(room) = self.rooms.remove(room_id) {
            self.lru.remove(&room.tick);
            self.bytes -= room.bytes;
            for user in room.members {
                if let Some(rooms) = self.users.get_mut(&user) {
                    rooms.remove(room_id);
                    if rooms.is_empty() {
                        self.users.remove(&user);
                    }
                }
            }
        }
    }

    /// Evicts least recently used rooms until within `limits`; `in_use` (the
    /// most recently used) is trimmed instead when it is the only room left.
    /// Returns the number of rooms evicted.
    fn enforce(&mut self, limits: &MemoryLimits, in_use: &str) -> u64 {
        let mut evicted = 0;
        while self.rooms.len() > limits.max_rooms || self.bytes > limits.max_bytes {
            let Some(oldest) = self.lru.values().next().cloned() else {
                break;
            };
            if oldest == in_use {
                let trimmed = self.with_room(in_use, false, |room| {
                    let more = room.entries.len() > 1;
                    if more {
                        room.pop_oldest();
                    }
                    more
                });
                if trimmed != Some(true) {
                    break;
                }
            } else {
                self.evict(&oldest);
                evicted += 1;
            }
        }
        evicted
    }
}

pub struct MemoryStore {
    limits: MemoryLimits,
    metrics: MemoryMetrics,
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new(limits: MemoryLimits, metrics: MemoryMetrics) -> Self {
        metrics.rooms_evicted.increment(0);
        metrics.bytes.set(0.0);
        Self {
            limits: MemoryLimits {
                max_len: limits.max_len.max(1),
                max_rooms: limits.max_rooms.max(1),
                max_bytes: limits.max_bytes,
            },
            metrics,
            inner: Mutex::default(),
        }
    }

    /// Rooms held and their estimated bytes.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.rooms.len(), inner.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the bounds after a change to `in_use` and reports the size.
    fn settle(&self, inner: &mut Inner, in_use: &str) {
        let evicted = inner.enforce(&self.limits, in_use);
        if evicted > 0 {
            self.metrics.rooms_evicted.increment(evicted);
        }
        self.metrics.bytes.set(inner.bytes as f64);
    }

    fn append_now(&self, new: NewMessage) -> (ChatMessage, bool) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let dedupe = new.client_msg_id.as_ref().map(|c| DedupeKey {
            sender: new.sender_id.clone(),
            client_msg_id: c.clone(),
        });
        if let Some(key) = &dedupe {
            let first = inner.with_room(&new.room_id, false, |room| {
                let id = room.client_ids.get(key)?;
                let at = room.index_of(id).ok()?;
                Some(room.entries[at].message.clone())
            });
            if let Some(Some(first)) = first {
                return (first, false);
            }
        }
        let id = inner.next_id();
        let message = ChatMessage {
            id: id.to_string(),
            room_id: new.room_id,
            sender_id: new.sender_id,
            message: new.message,
            kind: new.kind,
            ts: id.ms,
            client_msg_id: new.client_msg_id,
            edited_at: None,
            deleted: false,
        };
        let entry = Entry::new(id, message.clone(), dedupe);
        let max_len = self.limits.max_len;
        inner.with_room(&message.room_id, true, |room| room.push(entry, max_len));
        self.settle(inner, &message.room_id);
        (message, true)
    }

    fn join_now(&self, room_id: &str, user_id: &str) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.with_room(room_id, true, |room| {
            if room.members.insert(user_id.to_owned()) {
                room.bytes += MEMBER_COST + 2 * user_id.len() + room_id.len();
            }
        });
        let rooms = inner.users.entry(user_id.to_owned()).or_default();
        rooms.insert(room_id.to_owned(), crate::clock::unix_millis());
        let forget = (rooms.len() > MAX_ROOMS_PER_USER)
            .then(|| {
                rooms
                    .iter()
                    .filter(|(room, _)| room.as_str() != room_id)
                    .min_by_key(|(room, joined)| (**joined, (*room).clone()))
                    .map(|(room, _)| room.clone())
            })
            .flatten();
        if let Some(old) = forget {
            rooms.remove(&old);
            if let Some(room) = inner.rooms.get_mut(&old)
                && room.members.remove(user_id)
            {
                let cost = MEMBER_COST + 2 * user_id.len() + old.len();
                room.bytes -= cost;
                inner.bytes -= cost;
            }
        }
        self.settle(inner, room_id);
    }

    fn rooms_now(&self, user_id: &str, limit: usize) -> Vec<RoomSummary> {
        let inner = self.lock();
        let Some(joined) = inner.users.get(user_id) else {
            return Vec::new();
        };
        let mut rooms: Vec<(u64, &str, &Room)> = joined
            .iter()
            .filter_map(|(room_id, joined)| {
                let room = inner.rooms.get(room_id)?;
                let last = room.entries.back().map_or(0, |e| e.id.ms);
                Some(((*joined).max(last), room_id.as_str(), room))
            })
            .collect();
        rooms.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        rooms
            .into_iter()
            .take(limit)
            .map(|(_, room_id, room)| {
                let state = room.read_state(user_id);
                RoomSummary {
                    room_id: room_id.to_owned(),
                    unread: state.unread,
                    last_read: state.last_read.map(|id| id.to_string()),
                    last_message: room.entries.back().map(|e| e.message.clone()),
                }
            })
            .collect()
    }
}

impl ChatStore for MemoryStore {
    fn append(&self, new: NewMessage) -> BoxFuture<'_, Result<(ChatMessage, bool), StoreError>> {
        let result = self.append_now(new);
        async move { Ok(result) }.boxed()
    }

    fn history<'a>(
        &'a self,
        room_id: &'a str,
        before: Option<&'a MessageId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        let result = self
            .lock()
            .with_room(room_id, false, |room| {
                let end = match before {
                    None => room.entries.len(),
                    Some(before) => match room.index_of(before) {
                        Ok(at) => at,
                        Err(0) if !room.entries.is_empty() => 0,
                        Err(_) => return Err(StoreError::UnknownMessage),
                    },
                };
                let start = end.saturating_sub(limit);
                Ok(room
                    .entries
                    .range(start..end)
                    .map(|e| e.message.clone())
                    .collect())
            })
            .unwrap_or_else(|| match before {
                Some(_) => Err(StoreError::UnknownMessage),
                None => Ok(Vec::new()),
            });
        async move { result }.boxed()
    }

    fn message<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<Option<ChatMessage>, StoreError>> {
        let found = self
            .lock()
            .with_room(room_id, false, |room| {
                room.index_of(id).ok().map(|at| room.entries[at].message.clone())
            })
            .flatten();
        async move { Ok(found) }.boxed()
    }

    fn last_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageId>, StoreError>> {
        let inner = self.lock();
        let read = inner
            .rooms
            .get(room_id)
            .and_then(|r| r.reads.get(user_id).map(|(id, _)| *id));
        async move { Ok(read) }.boxed()
    }

    fn mark_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<MessageId, StoreError>> {
        let mut guard = self.lock();
        let result = guard
            .with_room(room_id, false, |room| {
                let at = room.index_of(id).map_err(|_| StoreError::UnknownMessage)?;
                let seq = room.first_seq + at as u64;
                match room.reads.get_mut(user_id) {
                    Some(read) if read.1 >= seq => Ok(read.0),
                    Some(read) => {
                        *read = (*id, seq);
                        Ok(*id)
                    }
                    None => {
                        room.reads.insert(user_id.to_owned(), (*id, seq));
                        room.bytes += READ_COST + user_id.len();
                        Ok(*id)
                    }
                }
            })
            .unwrap_or(Err(StoreError::UnknownMessage));
        self.settle(&mut guard, room_id);
        async move { result }.boxed()
    }

    fn unread<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<ReadState, StoreError>> {
        let state = self
            .lock()
            .with_room(room_id, false, |room| room.read_state(user_id))
            .unwrap_or(ReadState {
                last_read: None,
                unread: 0,
            });
        async move { Ok(state) }.boxed()
    }

    fn edit<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
        text: &'a str,
    ) -> BoxFuture<'a, Result<ChatMessage, StoreError>> {
        let mut guard = self.lock();
        let result = guard
            .with_room(room_id, false, |room| {
                let at = room.index_of(id).map_err(|_| StoreError::UnknownMessage)?;
                let entry = &mut room.entries[at];
                if entry.message.deleted {
                    return Err(StoreError::Deleted);
                }
                entry.message.message = text.to_owned();
                entry.message.edited_at = Some(crate::clock::unix_millis());
                let cost = entry.cost();
                room.bytes = room.bytes + cost - entry.bytes;
                entry.bytes = cost;
                Ok(entry.message.clone())
            })
            .unwrap_or(Err(StoreError::UnknownMessage));
        self.settle(&mut guard, room_id);
        async move { result }.boxed()
    }

    fn delete<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<ChatMessage, StoreError>> {
        let mut guard = self.lock();
        let result = guard
            .with_room(room_id, false, |room| {
                let at = room.index_of(id).map_err(|_| StoreError::UnknownMessage)?;
                room.deleted.insert(room.first_seq + at as u64);
                let entry = &mut room.entries[at];
                entry.message = ChatMessage::tombstone(&entry.message.id, room_id);
                let cost = entry.cost();
                room.bytes = room.bytes + cost - entry.bytes;
                entry.bytes = cost;
                Ok(entry.message.clone())
            })
            .unwrap_or(Err(StoreError::UnknownMessage));
        self.settle(&mut guard, room_id);
        async move { result }.boxed()
    }

    fn join<'a>(&'a self, room_id: &'a str, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.join_now(room_id, user_id);
        async move { Ok(()) }.boxed()
    }

    fn members<'a>(&'a self, room_id: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        let mut members: Vec<String> = self
            .lock()
            .rooms
            .get(room_id)
            .map(|room| room.members.iter().cloned().collect())
            .unwrap_or_default();
        members.sort_unstable();
        async move { Ok(members) }.boxed()
    }

    fn rooms<'a>(
        &'a self,
        user_id: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RoomSummary>, StoreError>> {
        let rooms = self.rooms_now(user_id, limit);
        async move { Ok(rooms) }.boxed()
    }
}
