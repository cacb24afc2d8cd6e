//! Market room names (`price:<symbol>`, `trades:<symbol>`), interned. A
//! socket's subscription is kept in three places: socketioxide's room map
//! (room → sockets), socketioxide's per-socket room set (socket → rooms, one
//! copy of the name per socket when it is an owned `String`), and the
//! socket's own subscription set. An interned name is a `&'static str`, so
//! every one of those holds a pointer, not a copy: memory per subscription
//! no longer carries the name.
//!
//! Interned names are never freed; the table is bounded
//! (`MAX_INTERNED` names, about 3 MiB at most): beyond it names are owned
//! strings again, which costs memory, never correctness.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

#[cfg(test)]
use crate::protocol::{price_room, trades_room};

/// The prefixes of `protocol::price_room` and `protocol::trades_room`.
const PRICE_ROOM_PREFIX: &str = "price:";
const TRADES_ROOM_PREFIX: &str = "trades:";

/// A room name as socketioxide takes it.
pub type Room = Cow<'static, str>;

/// Names interned at most, process-wide.
const MAX_INTERNED: usize = 65_536;

static INTERNED: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);

/// The interned `prefix` + `symbol`, or an owned one once the table is full.
/// Looked up without an allocation (the name is put together on the stack).
fn intern(prefix: &str, symbol: &str) -> Room {
    let mut buffer = [0u8; 64];
    let joined = buffer
        .get_mut(..prefix.len() + symbol.len())
        .map(|name| {
            name[..prefix.len()].copy_from_slice(prefix.as_bytes());
            name[prefix.len()..].copy_from_slice(symbol.as_bytes());
            &*name
        })
        .and_then(|name| std::str::from_utf8(name).ok());
    let mut names = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(interned) = joined.and_then(|name| names.get(name)) {
        return Cow::Borrowed(*interned);
    }
    let name = format!("{prefix}{symbol}");
    if names.len() >= MAX_INTERNED {
        return Cow::Owned(name);
    }
    let interned: &'static str = Box::leak(name.into_boxed_str());
    names.insert(interned);
    Cow::Borrowed(interned)
}

/// One market room of one symbol: the room name, its symbol a slice of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MarketRoom(Room);

impl MarketRoom {
    pub fn price(symbol: &str) -> Self {
        Self(intern(PRICE_ROOM_PREFIX, symbol))
    }

    pub fn trades(symbol: &str) -> Self {
        Self(intern(TRADES_ROOM_PREFIX, symbol))
    }

    /// The room's name, for socketioxide (a pointer copy when interned).
    pub fn room(&self) -> Room {
        self.0.clone()
    }

    #[cfg(test)]
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The symbol: what follows the room's `price:` or `trades:`.
    pub fn symbol(&self) -> &str {
        self.0.split_once(':').map_or(&*self.0, |(_, symbol)| symbol)
    }
}

/// A socket's market rooms of one feed: sorted, without duplicates, shared.
/// Sockets holding the same price set share one copy (the group's, see
/// `market::groups`); an empty set allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RoomSet(Option<Arc<[MarketRoom]>>);

impl RoomSet {
    fn from_sorted(rooms: Vec<MarketRoom>) -> Self {
        Self((!rooms.is_empty()).then(|| Arc::from(rooms)))
    }

    fn as_slice(&self) -> &[MarketRoom] {
        self.0.as_deref().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn contains(&self, room: &MarketRoom) -> bool {
        self.as_slice().binary_search(room).is_ok()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, MarketRoom> {
        self.as_slice().iter()
    }

    /// Whether both are the same copy (not only equal).
    #[cfg(test)]
    pub fn same_copy(&self, other: &RoomSet) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// This set with `rooms` added.
    pub fn with(&self, rooms: impl IntoIterator<Item = MarketRoom>) -> Self {
        let mut all: Vec<MarketRoom> = self.iter().cloned().chain(rooms).collect();
        all.sort_unstable();
        all.dedup();
        Self::from_sorted(all)
    }

    /// This set without `rooms`.
    pub fn without(&self, rooms: &[MarketRoom]) -> Self {
        Self::from_sorted(self.iter().filter(|r| !rooms.contains(r)).cloned().collect())
    }
}

impl FromIterator<MarketRoom> for RoomSet {
    fn from_iter<I: IntoIterator<Item = MarketRoom>>(rooms: I) -> Self {
        RoomSet::default().with(rooms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_sets_are_sorted_without_duplicates_and_empty_ones_hold_nothing() {
        let set: RoomSet = ["B", "A", "B"].map(MarketRoom::price).into_iter().collect();
        let symbols: Vec<&str> = set.iter().map(MarketRoom::symbol).collect();
        assert_eq!(symbols, ["A", "B"]);
        assert!(set.contains(&MarketRoom::price("A")));
        assert!(!set.contains(&MarketRoom::trades("A")));
        let fewer = set.without(&[MarketRoom::price("A"), MarketRoom::price("B")]);
        assert!(fewer.is_empty() && fewer == RoomSet::default());
    }

    #[test]
    fn prefixes_are_the_protocol_s() {
        assert_eq!(MarketRoom::price("X").name(), price_room("X"));
        assert_eq!(MarketRoom::trades("X").name(), trades_room("X"));
        let long = "L".repeat(80);
        assert_eq!(
            MarketRoom::price(&long).name(),
            price_room(&long),
            "longer than the stack buffer"
        );
    }

    #[test]
    fn names_are_interned_once_and_carry_their_symbol() {
        let a = MarketRoom::price("BTC-USD");
        let b = MarketRoom::price("BTC-USD");
        assert_eq!(a.name(), "price:BTC-USD");
        assert_eq!(a.symbol(), "BTC-USD");
        assert_eq!(
            MarketRoom::trades("A:B").symbol(),
            "A:B",
            "only the prefix is cut"
        );
        let (Cow::Borrowed(x), Cow::Borrowed(y)) = (a.room(), b.room()) else {
            panic!("interned names are borrowed");
        };
        assert!(std::ptr::eq(x, y), "one copy of the name");
    }
}
