//! Redis key names of the chat store. Every user-supplied part is escaped
//! (any byte but `A-Z a-z 0-9 . _ -` becomes `%XX`), so no two different
//! inputs give the same key and no input can add a `:`, `{` or `}`; every key
//! of one room carries the room as its hash tag (`{...}`), so a room lives on
//! one Redis Cluster slot.

use std::fmt::Write;

const PREFIX: &str = "roomcast:chat";

/// Percent-escapes every byte outside `A-Z a-z 0-9 . _ -` (injective).
pub fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The keys of one room.
pub struct RoomKeys {
    base: String,
}

impl RoomKeys {
    pub fn new(room_id: &str) -> Self {
        Self {
            base: format!("{PREFIX}:{{{}}}", escape(room_id)),
        }
    }

    /// Stream: one entry per message (field `s`: its sequence number); gives ids and order.
    pub fn stream(&self) -> String {
        format!("{}:stream", self.base)
    }

    /// Hash: sequence number → message JSON (edited in place, tombstone once deleted).
    pub fn bodies(&self) -> String {
        format!("{}:bodies", self.base)
    }

    /// Hash: `seq` (last sequence number), `first` (oldest kept), `last` (last id).
    pub fn meta(&self) -> String {
        format!("{}:meta", self.base)
    }

    /// Sorted set: deleted message ids scored by sequence number.
    pub fn deleted(&self) -> String {
        format!("{}:deleted", self.base)
    }

    /// Hash: user id → `<last read id> <its sequence number>`.
    pub fn reads(&self) -> String {
        format!("{}:reads", self.base)
    }

    /// Set: the users who joined the room.
    pub fn members(&self) -> String {
        format!("{}:members", self.base)
    }

    /// String: the id first stored for this sender's `clientMsgId`.
    pub fn dedupe(&self, sender: &str, client_msg_id: &str) -> String {
        format!("{}:cmid:{}:{}", self.base, escape(sender), escape(client_msg_id))
    }
}

/// Sorted set: the rooms a user joined, scored by the last join (ms).
pub fn user_rooms(user_id: &str) -> String {
    format!("{PREFIX}:user:{{{}}}:rooms", escape(user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parts_cannot_collide_or_escape_the_hash_tag() {
        assert_eq!(escape("desk-1.a_b"), "desk-1.a_b");
        assert_eq!(escape("a:b{c}%\0"), "a%3Ab%7Bc%7D%25%00");
        // clientMsgId `c:messages` in room `y` against room `y:cmid:7:mallory:c`.
        let a = RoomKeys::new("y").dedupe("mallory", "c:messages");
        let b = RoomKeys::new("y:cmid:7:mallory:c");
        assert!(
            ![
                b.stream(),
                b.bodies(),
                b.meta(),
                b.deleted(),
                b.reads(),
                b.members()
            ]
            .contains(&a)
        );
        assert_ne!(
            RoomKeys::new("r").dedupe("a:b", "c"),
            RoomKeys::new("r").dedupe("a", "b:c")
        );
        let keys = RoomKeys::new("x}{y");
        for key in [keys.stream(), keys.reads(), keys.dedupe("u}", "{c")] {
            let tag = &key[key.find('{').unwrap() + 1..key.find('}').unwrap()];
            assert_eq!(tag, "x%7D%7By", "{key}");
        }
        assert_ne!(user_rooms("{x}"), RoomKeys::new("x").meta());
    }
}
