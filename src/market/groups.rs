//! Price subscription groups: sockets of one batch slice that hold the same
//! set of price subscriptions share one group (and one internal room), so a
//! `price:batch` is serialized once per distinct set, not once per socket.
//! Its members share the group's copy of the set (see [`PriceGroups::reassign`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::rooms::RoomSet;

/// A group's id; its internal room is `protocol::batch_room(id)`.
pub type GroupId = u64;

/// A group is one slice's sockets holding one set of price rooms.
type GroupKey = (usize, RoomSet);

struct Group {
    key: GroupKey,
    members: usize,
}

#[derive(Default)]
struct Index {
    by_key: HashMap<GroupKey, GroupId>,
    groups: HashMap<GroupId, Group>,
    /// Per slice: the groups holding each symbol (a list: a group is in it
    /// once, and a list costs less memory per subscription than a set).
    by_symbol: Vec<HashMap<String, Vec<GroupId>>>,
    /// Every set some group holds, with how many groups hold it: groups of
    /// different slices holding the same set share one copy.
    sets: HashMap<RoomSet, usize>,
    next_id: GroupId,
}

/// The node's price subscription groups, over `slices` batch slices.
pub struct PriceGroups {
    index: Mutex<Index>,
    next_slice: AtomicUsize,
}

impl PriceGroups {
    pub fn new(slices: usize) -> Self {
        let slices = slices.max(1);
        Self {
            index: Mutex::new(Index {
                by_symbol: (0..slices).map(|_| HashMap::new()).collect(),
                ..Index::default()
            }),
            next_slice: AtomicUsize::new(0),
        }
    }

    pub fn slices(&self) -> usize {
        self.index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_symbol
            .len()
    }

    /// The slice for a new socket: round robin, so slices stay even.
    pub fn next_slice(&self) -> usize {
        self.next_slice.fetch_add(1, Ordering::Relaxed) % self.slices()
    }

    /// Moves one socket of `slice` out of group `old` (if any) into the group
    /// of `rooms` (none when `rooms` is empty) and returns that group with its
    /// copy of the set, for the socket to keep instead of its own.
    pub fn reassign(
        &self,
        old: Option<GroupId>,
        slice: usize,
        rooms: &RoomSet,
    ) -> Option<(GroupId, RoomSet)> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = old {
            index.leave(old);
        }
        if rooms.is_empty() {
            return None;
        }
        let key: GroupKey = (slice % index.by_symbol.len(), rooms.clone());
        let id = match index.by_key.get(&key) {
            Some(id) => *id,
            None => index.create(key),
        };
        let group = index.groups.get_mut(&id).expect("group listed by set exists");
        group.members += 1;
        Some((id, group.key.1.clone()))
    }

    /// For prices that changed in a window: what each affected group of
    /// `slice` receives, in symbol order. Groups with no changed symbol are not listed.
    pub fn route<'a>(
        &self,
        changed: &'a BTreeMap<String, f64>,
        slice: usize,
    ) -> Vec<(GroupId, Vec<(&'a str, f64)>)> {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let Some(by_symbol) = index.by_symbol.get(slice) else {
            return Vec::new();
        };
        let mut routes: HashMap<GroupId, Vec<(&'a str, f64)>> = HashMap::new();
        for (symbol, price) in changed {
            for id in by_symbol.get(symbol).into_iter().flatten() {
                routes.entry(*id).or_default().push((symbol.as_str(), *price));
            }
        }
        routes.into_iter().collect()
    }
}

impl Index {
    fn create(&mut self, (slice, rooms): GroupKey) -> GroupId {
        let id = self.next_id;
        self.next_id += 1;
        let rooms = match self.sets.get_key_value(&rooms) {
            Some((shared, _)) => shared.clone(),
            None => rooms,
        };
        *self.sets.entry(rooms.clone()).or_insert(0) += 1;
        let key = (slice, rooms);
        let (slice, rooms) = &key;
        let by_symbol = &mut self.by_symbol[*slice];
        for room in rooms.rooms() {
            match by_symbol.get_mut(room.symbol()) {
                Some(ids) => ids.push(id),
                None => {
                    by_symbol.insert(room.symbol().to_owned(), vec![id]);
                }
            }
        }
        self.by_key.insert(key.clone(), id);
        self.groups.insert(id, Group { key, members: 0 });
        id
    }

    fn leave(&mut self, id: GroupId) {
        let Some(group) = self.groups.get_mut(&id) else {
            return;
        };
        group.members -= 1;
        if group.members > 0 {
            return;
        }
        let group = self.groups.remove(&id).expect("checked above");
        self.by_key.remove(&group.key);
        if let Some(holders) = self.sets.get_mut(&group.key.1) {
            *holders -= 1;
            if *holders == 0 {
                self.sets.remove(&group.key.1);
            }
        }
        let (slice, rooms) = &group.key;
        let by_symbol = &mut self.by_symbol[*slice];
        for room in rooms.rooms() {
            if let Some(ids) = by_symbol.get_mut(room.symbol()) {
                ids.retain(|group| *group != id);
                if ids.is_empty() {
                    by_symbol.remove(room.symbol());
                }
            }
        }
    }
}

#[cfg(test)]
impl PriceGroups {
    fn len(&self) -> usize {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::market::rooms::MarketRoom;

    fn set(symbols: &[&str]) -> RoomSet {
        symbols.iter().map(|s| MarketRoom::price(s)).collect()
    }

    fn id(group: Option<(GroupId, RoomSet)>) -> Option<GroupId> {
        group.map(|(id, _)| id)
    }

    #[test]
    fn same_sets_share_a_group_and_empty_groups_vanish() {
        let groups = PriceGroups::new(1);
        let a = groups.reassign(None, 0, &set(&["BTC", "ETH"]));
        let b = groups.reassign(None, 0, &set(&["ETH", "BTC"]));
        let (Some((_, a_set)), Some((_, b_set))) = (&a, &b) else {
            panic!("both have a group");
        };
        assert!(a_set.same_copy(b_set), "members share the group's set");
        let (a, b) = (id(a), id(b));
        assert_eq!(a, b);
        let c = id(groups.reassign(None, 0, &set(&["BTC"])));
        assert_ne!(a, c);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups.reassign(a, 0, &set(&[])), None);
        assert_eq!(groups.len(), 2, "one member left in the BTC+ETH group");
        groups.reassign(b, 0, &set(&[]));
        assert_eq!(groups.len(), 1);
    }

    #[test]
    fn routes_give_each_group_only_its_changed_symbols() {
        let groups = PriceGroups::new(1);
        let both = id(groups.reassign(None, 0, &set(&["BTC", "ETH"]))).unwrap();
        let eth = id(groups.reassign(None, 0, &set(&["ETH"]))).unwrap();
        let sol = id(groups.reassign(None, 0, &set(&["SOL"]))).unwrap();
        let changed: BTreeMap<String, f64> = [("BTC".into(), 1.0), ("ETH".into(), 2.0)].into();
        let routes: HashMap<_, _> = groups.route(&changed, 0).into_iter().collect();
        assert_eq!(routes[&both], vec![("BTC", 1.0), ("ETH", 2.0)]);
        assert_eq!(routes[&eth], vec![("ETH", 2.0)]);
        assert!(!routes.contains_key(&sol), "nothing changed for SOL: no batch");
    }

    #[test]
    fn slices_are_dealt_round_robin_and_route_only_their_own_groups() {
        let groups = PriceGroups::new(3);
        assert_eq!(groups.slices(), 3);
        let dealt: Vec<usize> = (0..6).map(|_| groups.next_slice()).collect();
        assert_eq!(dealt, vec![0, 1, 2, 0, 1, 2]);
        let first = id(groups.reassign(None, 0, &set(&["BTC"]))).unwrap();
        let second = id(groups.reassign(None, 1, &set(&["BTC"]))).unwrap();
        assert_ne!(first, second, "one group per slice for the same set");
        let index = groups.index.lock().unwrap();
        assert!(
            index.groups[&first].key.1.same_copy(&index.groups[&second].key.1),
            "one copy of the set for both"
        );
        drop(index);
        let changed: BTreeMap<String, f64> = [("BTC".into(), 1.0)].into();
        let route =
            |slice| -> Vec<GroupId> { groups.route(&changed, slice).into_iter().map(|r| r.0).collect() };
        assert_eq!(route(0), vec![first]);
        assert_eq!(route(1), vec![second]);
        assert!(route(2).is_empty());
    }
}
