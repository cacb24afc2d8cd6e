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
use std::collections::HashMap;
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

/// The interned names, each with a number (its place in `names`): a set of
/// interned rooms is kept as numbers, 4 bytes a room.
#[derive(Default)]
struct Interner {
    ids: HashMap<&'static str, u32>,
    names: Vec<&'static str>,
}

static INTERNED: LazyLock<Mutex<Interner>> = LazyLock::new(Mutex::default);

fn interner() -> std::sync::MutexGuard<'static, Interner> {
    INTERNED.lock().unwrap_or_else(|e| e.into_inner())
}

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
    let mut interner = interner();
    if let Some((interned, _)) = joined.and_then(|name| interner.ids.get_key_value(name)) {
        return Cow::Borrowed(*interned);
    }
    let name = format!("{prefix}{symbol}");
    if interner.names.len() >= MAX_INTERNED {
        return Cow::Owned(name);
    }
    let interned: &'static str = Box::leak(name.into_boxed_str());
    let id = interner.names.len() as u32;
    interner.names.push(interned);
    interner.ids.insert(interned, id);
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

/// A socket's market rooms of one feed: without duplicates, shared. Sockets
/// holding the same price set share one copy (the group's, see
/// `market::groups`); an empty set allocates nothing; a set of interned
/// rooms is kept as their numbers (4 bytes a room instead of 24).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RoomSet(Option<Entries>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Entries {
    /// Interned rooms, by number, ascending.
    Ids(Arc<[u32]>),
    /// Some room is not interned (the table was full): names, ascending.
    Names(Arc<[MarketRoom]>),
}

impl RoomSet {
    /// The set of `rooms` (any order, duplicates allowed).
    fn of(mut rooms: Vec<MarketRoom>) -> Self {
        if rooms.is_empty() {
            return Self(None);
        }
        let ids: Option<Vec<u32>> = {
            let interner = interner();
            rooms
                .iter()
                .map(|room| interner.ids.get(&*room.0).copied())
                .collect()
        };
        Self(Some(match ids {
            Some(mut ids) => {
                ids.sort_unstable();
                ids.dedup();
                Entries::Ids(Arc::from(ids))
            }
            None => {
                rooms.sort_unstable();
                rooms.dedup();
                Entries::Names(Arc::from(rooms))
            }
        }))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            None => 0,
            Some(Entries::Ids(ids)) => ids.len(),
            Some(Entries::Names(names)) => names.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn contains(&self, room: &MarketRoom) -> bool {
        match &self.0 {
            None => false,
            Some(Entries::Ids(ids)) => {
                let id = interner().ids.get(&*room.0).copied();
                id.is_some_and(|id| ids.binary_search(&id).is_ok())
            }
            Some(Entries::Names(names)) => names.binary_search(room).is_ok(),
        }
    }

    /// The rooms (a copy: numbers are turned back into names).
    pub fn rooms(&self) -> Vec<MarketRoom> {
        match &self.0 {
            None => Vec::new(),
            Some(Entries::Ids(ids)) => {
                let interner = interner();
                ids.iter()
                    .map(|id| MarketRoom(Cow::Borrowed(interner.names[*id as usize])))
                    .collect()
            }
            Some(Entries::Names(names)) => names.to_vec(),
        }
    }

    /// Whether both are the same copy (not only equal).
    #[cfg(test)]
    pub fn same_copy(&self, other: &RoomSet) -> bool {
        match (&self.0, &other.0) {
            (Some(Entries::Ids(a)), Some(Entries::Ids(b))) => Arc::ptr_eq(a, b),
            (Some(Entries::Names(a)), Some(Entries::Names(b))) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// This set with `rooms` added.
    pub fn with(&self, rooms: impl IntoIterator<Item = MarketRoom>) -> Self {
        let mut all = self.rooms();
        all.extend(rooms);
        Self::of(all)
    }

    /// This set without `rooms`.
    pub fn without(&self, rooms: &[MarketRoom]) -> Self {
        Self::of(self.rooms().into_iter().filter(|r| !rooms.contains(r)).collect())
    }
}

impl FromIterator<MarketRoom> for RoomSet {
    fn from_iter<I: IntoIterator<Item = MarketRoom>>(rooms: I) -> Self {
        RoomSet::of(rooms.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_sets_hold_each_room_once_and_empty_ones_hold_nothing() {
        let set: RoomSet = ["B", "A", "B"].map(MarketRoom::price).into_iter().collect();
        let rooms = set.rooms();
        let mut symbols: Vec<&str> = rooms.iter().map(MarketRoom::symbol).collect();
        symbols.sort_unstable();
        assert_eq!(symbols, ["A", "B"]);
        assert!(set.contains(&MarketRoom::price("A")));
        assert!(!set.contains(&MarketRoom::trades("A")));
        let fewer = set.without(&[MarketRoom::price("A"), MarketRoom::price("B")]);
        assert!(fewer.is_empty() && fewer == RoomSet::default());
    }

    #[test]
    fn a_set_of_rooms_that_are_not_interned_works_the_same() {
        let owned = |s: &str| MarketRoom(Cow::Owned(format!("price:{s}")));
        let set = RoomSet::of(vec![
            owned("never-interned-b"),
            MarketRoom::price("A"),
            owned("never-interned-b"),
        ]);
        assert!(matches!(set.0, Some(Entries::Names(_))));
        assert_eq!(set.len(), 2);
        assert!(set.contains(&owned("never-interned-b")) && set.contains(&MarketRoom::price("A")));
        let fewer = set.without(&[owned("never-interned-b")]);
        assert!(
            matches!(fewer.0, Some(Entries::Ids(_))),
            "back to numbers once all are interned"
        );
        assert_eq!(fewer, RoomSet::of(vec![MarketRoom::price("A")]));
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
