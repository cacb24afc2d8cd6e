//! The memory backend of one node: per room, the last `max_events` recorded
//! events of the last `ttl`, in a ring. Rooms with nothing left are dropped by
//! `sweep`, so memory follows what was recorded lately, not every room ever.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::offset::Offset;
use super::{Entry, Limits, Replay, Stored};

pub struct MemoryHistory {
    rooms: Mutex<HashMap<String, Room>>,
    limits: Limits,
}

struct Room {
    /// The newest offset given out in this room.
    last: Offset,
    entries: VecDeque<Entry>,
}

impl Room {
    fn expire(&mut self, limits: &Limits, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(limits.ttl_ms);
        while self.entries.len() > limits.max_events
            || self.entries.front().is_some_and(|e| e.offset.ms < cutoff)
        {
            self.entries.pop_front();
        }
    }
}

impl MemoryHistory {
    pub fn new(limits: Limits) -> Self {
        Self {
            rooms: Mutex::default(),
            limits,
        }
    }

    /// Keeps `stored` in `room` under the room's next offset and returns it.
    pub fn append(&self, room: &str, stored: &Arc<Stored>, now_ms: u64) -> Offset {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let entry = match rooms.get_mut(room) {
            Some(entry) => entry,
            None => rooms.entry(room.to_owned()).or_insert(Room {
                last: Offset { ms: 0, seq: 0 },
                entries: VecDeque::new(),
            }),
        };
        let offset = entry.last.next(now_ms);
        entry.last = offset;
        entry.entries.push_back(Entry {
            offset,
            stored: stored.clone(),
        });
        entry.expire(&self.limits, now_ms);
        offset
    }

    /// What `room` kept after `after`; a gap when `after` is older than the
    /// oldest event kept (or nothing is kept).
    pub fn after(&self, room: &str, after: Offset, now_ms: u64) -> Replay {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = rooms.get_mut(room) else {
            return Replay::Gap;
        };
        entry.expire(&self.limits, now_ms);
        match entry.entries.front() {
            Some(first) if first.offset <= after => Replay::Events(
                entry
                    .entries
                    .iter()
                    .filter(|e| e.offset > after)
                    .cloned()
                    .collect(),
            ),
            _ => Replay::Gap,
        }
    }

    /// Drops what is past the TTL, and rooms left empty.
    pub fn sweep(&self, now_ms: u64) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.retain(|_, room| {
            room.expire(&self.limits, now_ms);
            !room.entries.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn stored(n: u32) -> Arc<Stored> {
        Arc::new(Stored {
            event: "trade:new".into(),
            data: RawValue::from_string(n.to_string()).unwrap(),
        })
    }

    fn data(replay: Replay) -> Vec<String> {
        match replay {
            Replay::Events(e) => e.iter().map(|e| e.stored.data.get().to_owned()).collect(),
            Replay::Gap => vec!["gap".into()],
        }
    }

    #[test]
    fn replays_what_follows_an_offset_and_reports_a_gap_past_the_bounds() {
        let h = MemoryHistory::new(Limits {
            max_events: 3,
            ttl_ms: 1000,
        });
        let offsets: Vec<Offset> = (1..=5).map(|n| h.append("r", &stored(n), 100)).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(data(h.after("r", offsets[2], 100)), ["4", "5"]);
        assert_eq!(data(h.after("r", offsets[4], 100)), Vec::<String>::new());
        assert_eq!(
            data(h.after("r", offsets[1], 100)),
            ["gap"],
            "event 2 is no longer kept"
        );
        assert_eq!(data(h.after("other", offsets[1], 100)), ["gap"]);
        assert_eq!(data(h.after("r", offsets[3], 1200)), ["gap"], "past the TTL");
        h.sweep(1200);
        assert!(h.rooms.lock().unwrap().is_empty());
    }
}
