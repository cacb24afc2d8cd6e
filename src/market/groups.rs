//! Price subscription groups: sockets that hold the same set of price
//! subscriptions share one group (and one internal room), so a `price:batch`
//! is serialized once per distinct set, not once per socket.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub type GroupId = u64;

/// Prefix of the internal rooms the batcher emits to; no symbol room can clash
/// with it (`$` is not a symbol character) and it is left out of room counts.
pub const GROUP_ROOM_PREFIX: &str = "$batch:";

pub fn group_room(id: GroupId) -> String {
    format!("{GROUP_ROOM_PREFIX}{id}")
}

struct Group {
    symbols: Arc<[String]>,
    members: usize,
}

#[derive(Default)]
struct Index {
    by_set: HashMap<Arc<[String]>, GroupId>,
    groups: HashMap<GroupId, Group>,
    by_symbol: HashMap<String, HashSet<GroupId>>,
    next_id: GroupId,
}

/// The node's price subscription groups.
#[derive(Default)]
pub struct PriceGroups {
    index: Mutex<Index>,
}

impl PriceGroups {
    /// Moves one socket out of group `old` (if any) into the group of `symbols`
    /// (none when `symbols` is empty) and returns that group.
    pub fn reassign(&self, old: Option<GroupId>, symbols: &BTreeSet<String>) -> Option<GroupId> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = old {
            index.leave(old);
        }
        if symbols.is_empty() {
            return None;
        }
        let key: Arc<[String]> = symbols.iter().cloned().collect();
        let id = match index.by_set.get(&key) {
            Some(id) => *id,
            None => index.create(key),
        };
        index
            .groups
            .get_mut(&id)
            .expect("group listed by set exists")
            .members += 1;
        Some(id)
    }

    /// For prices that changed in a window: what each affected group receives,
    /// in symbol order. Groups with no changed symbol are not listed.
    pub fn route<'a>(&self, changed: &'a BTreeMap<String, f64>) -> Vec<(GroupId, Vec<(&'a str, f64)>)> {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes: HashMap<GroupId, Vec<(&'a str, f64)>> = HashMap::new();
        for (symbol, price) in changed {
            for id in index.by_symbol.get(symbol).into_iter().flatten() {
                routes.entry(*id).or_default().push((symbol.as_str(), *price));
            }
        }
        routes.into_iter().collect()
    }

    /// Number of distinct subscription sets on this node.
    pub fn len(&self) -> usize {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Index {
    fn create(&mut self, symbols: Arc<[String]>) -> GroupId {
        let id = self.next_id;
        self.next_id += 1;
        for symbol in symbols.iter() {
            self.by_symbol.entry(symbol.clone()).or_default().insert(id);
        }
        self.by_set.insert(symbols.clone(), id);
        self.groups.insert(id, Group { symbols, members: 0 });
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
        self.by_set.remove(&group.symbols);
        for symbol in group.symbols.iter() {
            if let Some(ids) = self.by_symbol.get_mut(symbol) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_symbol.remove(symbol);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(symbols: &[&str]) -> BTreeSet<String> {
        symbols.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn same_sets_share_a_group_and_empty_groups_vanish() {
        let groups = PriceGroups::default();
        let a = groups.reassign(None, &set(&["BTC", "ETH"]));
        let b = groups.reassign(None, &set(&["ETH", "BTC"]));
        assert_eq!(a, b);
        let c = groups.reassign(None, &set(&["BTC"]));
        assert_ne!(a, c);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups.reassign(a, &set(&[])), None);
        assert_eq!(groups.len(), 2, "one member left in the BTC+ETH group");
        groups.reassign(b, &set(&[]));
        assert_eq!(groups.len(), 1);
    }

    #[test]
    fn routes_give_each_group_only_its_changed_symbols() {
        let groups = PriceGroups::default();
        let both = groups.reassign(None, &set(&["BTC", "ETH"])).unwrap();
        let eth = groups.reassign(None, &set(&["ETH"])).unwrap();
        let sol = groups.reassign(None, &set(&["SOL"])).unwrap();
        let changed: BTreeMap<String, f64> = [("BTC".into(), 1.0), ("ETH".into(), 2.0)].into();
        let routes: HashMap<_, _> = groups.route(&changed).into_iter().collect();
        assert_eq!(routes[&both], vec![("BTC", 1.0), ("ETH", 2.0)]);
        assert_eq!(routes[&eth], vec![("ETH", 2.0)]);
        assert!(!routes.contains_key(&sol), "nothing changed for SOL: no batch");
    }
}
