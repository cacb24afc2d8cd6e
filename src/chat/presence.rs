//! Who is online in a chat room (CONTRACT §9): users with at least one live
//! connection (Socket.IO or plain WebSocket) in the room, on any node.
//!
//! Each node counts its own connections per room and user ([`Presence::arrive`]
//! / [`Presence::depart`], synchronous, under the caller's lock). Only a
//! user's first connection in and last connection out of a room on this node
//! reach the shared part: with Redis, one hash per room
//! (`roomcast:presence:{room}`, field = user id, value =
//! `<latest expiry ms>:<JSON { "<node>": <expiry ms> }>`, the prefix so that
//! reads need not decode the JSON), changed by one script each, so exactly one
//! node sees a user come online or go offline and announces it. Every node
//! refreshes its own entries each `timeout / 3` and sweeps the rooms it has
//! members in: the entries of a node that died expire, the sweep that removes
//! a user's last one announces the user offline (one node wins, the script is
//! atomic). Reads skip expired entries. The memory backend is this node alone.
//!
//! Costs (see README): arriving and departing are O(1) in Redis (one field),
//! `online` is O(users online in the room), a refresh is O(this node's users
//! in the room), a sweep O(users online in the room).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::cluster::conn::Commands;
use redis::Script;

use super::out::PresenceChange;
use crate::store::keys::escape;

/// How often entries are refreshed and rooms swept, as a part of the timeout.
pub const HEARTBEATS_PER_TIMEOUT: u32 = 3;

const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(raw)
  local nodes, any = {}, false
  if raw then
    local ok, decoded = pcall(cjson.decode, string.match(raw, '^%d+:(.*)$') or '')
    if ok and type(decoded) == 'table' then
      for node, exp in pairs(decoded) do
        if tonumber(exp) and tonumber(exp) > now then nodes[node] = tonumber(exp); any = true end
      end
    end
  end
  return nodes, any
end
local function encode(nodes)
  local latest = 0
  for _, exp in pairs(nodes) do if exp > latest then latest = exp end end
  return string.format('%d:', latest) .. cjson.encode(nodes)
end
local function alive(raw)
  local latest = tonumber(string.match(raw, '^(%d+):'))
  return latest ~= nil and latest > now
end
";

/// KEYS: room hash. ARGV: user, node, ttl ms. 1 when the user was offline.
const ARRIVE: &str = r"
local nodes, was = live(redis.call('HGET', KEYS[1], ARGV[1]))
nodes[ARGV[2]] = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], encode(nodes))
redis.call('PEXPIRE', KEYS[1], 3 * tonumber(ARGV[3]))
if was then return 0 end
return 1
";

/// KEYS: room hash. ARGV: user, node. 1 when the user is now offline.
const DEPART: &str = r"
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local nodes, _ = live(raw)
nodes[ARGV[2]] = nil
if next(nodes) == nil then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
redis.call('HSET', KEYS[1], ARGV[1], encode(nodes))
return 0
";

/// KEYS: room hash. ARGV: node, ttl ms, users... The users that were offline
/// (their entries had expired or been swept): they are online again.
const REFRESH: &str = r"
local back = {}
for i = 3, #ARGV do
  local nodes, was = live(redis.call('HGET', KEYS[1], ARGV[i]))
  nodes[ARGV[1]] = now + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], ARGV[i], encode(nodes))
  if not was then back[#back + 1] = ARGV[i] end
end
redis.call('PEXPIRE', KEYS[1], 3 * tonumber(ARGV[2]))
return back
";

/// KEYS: room hash. Removes expired entries; returns the users now offline.
const SWEEP: &str = r"
local all = redis.call('HGETALL', KEYS[1])
local gone = {}
for i = 1, #all, 2 do
  if not alive(all[i + 1]) then
    redis.call('HDEL', KEYS[1], all[i])
    gone[#gone + 1] = all[i]
  end
end
return gone
";

/// KEYS: room hash. The users with a live entry.
const ONLINE: &str = r"
local all = redis.call('HGETALL', KEYS[1])
local users = {}
for i = 1, #all, 2 do
  if alive(all[i + 1]) then users[#users + 1] = all[i] end
end
return users
";

fn script(body: &str) -> Script {
    Script::new(&format!("{NOW}{body}"))
}

/// The Redis hash of a room's presence (same hash tag as the room's chat keys).
pub fn presence_key(room_id: &str) -> String {
    format!("roomcast:presence:{{{}}}", escape(room_id))
}

/// The part shared by every node, in Redis.
pub struct SharedPresence {
    conn: Commands,
    /// This node instance (unique per process).
    node: String,
    ttl_ms: u64,
    arrive: Script,
    depart: Script,
    refresh: Script,
    sweep: Script,
    online: Script,
}

impl SharedPresence {
    pub fn new(conn: Commands, node: String, timeout: Duration) -> Self {
        Self {
            conn,
            node,
            ttl_ms: timeout.as_millis().max(1) as u64,
            arrive: script(ARRIVE),
            depart: script(DEPART),
            refresh: script(REFRESH),
            sweep: script(SWEEP),
            online: script(ONLINE),
        }
    }
}

pub struct Presence {
    /// room → user → this node's connections.
    local: Mutex<HashMap<String, HashMap<String, usize>>>,
    shared: Option<SharedPresence>,
}

impl Presence {
    /// This node alone (memory backend).
    pub fn local() -> Self {
        Self {
            local: Mutex::default(),
            shared: None,
        }
    }

    pub fn shared(shared: SharedPresence) -> Self {
        Self {
            local: Mutex::default(),
            shared: Some(shared),
        }
    }

    /// Counts one connection of `user_id` into `room_id`; `true` when it is
    /// the user's first on this node (then call [`Presence::came_online`]).
    pub fn arrive(&self, room_id: &str, user_id: &str) -> bool {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let count = local
            .entry(room_id.to_owned())
            .or_default()
            .entry(user_id.to_owned())
            .or_default();
        *count += 1;
        *count == 1
    }

    /// Counts one connection out; `true` when it was the user's last on this
    /// node (then call [`Presence::went_offline`]).
    pub fn depart(&self, room_id: &str, user_id: &str) -> bool {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let Some(users) = local.get_mut(room_id) else {
            return false;
        };
        let Some(count) = users.get_mut(user_id) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        users.remove(user_id);
        if users.is_empty() {
            local.remove(room_id);
        }
        true
    }

    /// After `arrive` said first: whether the user was offline everywhere.
    pub async fn came_online(&self, room_id: &str, user_id: &str) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let result: Result<u8, _> = shared
            .arrive
            .key(presence_key(room_id))
            .arg(user_id)
            .arg(&shared.node)
            .arg(shared.ttl_ms)
            .invoke_async(&mut shared.conn.clone())
            .await;
        match result {
            Ok(was_offline) => was_offline == 1,
            Err(e) => {
                tracing::warn!(room = room_id, error = %e, "presence: Redis unavailable, deciding on this node alone");
                true
            }
        }
    }

    /// After `depart` said last: whether the user is now offline everywhere.
    pub async fn went_offline(&self, room_id: &str, user_id: &str) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let result: Result<u8, _> = shared
            .depart
            .key(presence_key(room_id))
            .arg(user_id)
            .arg(&shared.node)
            .invoke_async(&mut shared.conn.clone())
            .await;
        match result {
            Ok(offline) => offline == 1,
            Err(e) => {
                tracing::warn!(room = room_id, error = %e, "presence: Redis unavailable, deciding on this node alone");
                true
            }
        }
    }

    /// The users online in `room_id`, sorted.
    pub async fn online(&self, room_id: &str) -> Vec<String> {
        let local_users = || {
            let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            local
                .get(room_id)
                .map(|users| users.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let mut users = match &self.shared {
            None => local_users(),
            Some(shared) => {
                let result: Result<Vec<String>, _> = shared
                    .online
                    .key(presence_key(room_id))
                    .invoke_async(&mut shared.conn.clone())
                    .await;
                match result {
                    Ok(users) => users,
                    Err(e) => {
                        tracing::warn!(room = room_id, error = %e, "presence: Redis unavailable, this node's users only");
                        local_users()
                    }
                }
            }
        };
        users.sort_unstable();
        users
    }

    /// Whether `user_id` has a connection in `room_id` on this node.
    pub fn is_here(&self, room_id: &str, user_id: &str) -> bool {
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local
            .get(room_id)
            .is_some_and(|users| users.contains_key(user_id))
    }

    /// Refreshes this node's entries and sweeps its rooms; returns the
    /// changes to announce (users back online after a lapse, users of dead
    /// nodes gone offline). Nothing to do on the memory backend.
    pub async fn heartbeat(&self) -> Vec<PresenceChange> {
        let Some(shared) = &self.shared else {
            return Vec::new();
        };
        let rooms: Vec<(String, Vec<String>)> = {
            let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            local
                .iter()
                .map(|(room, users)| (room.clone(), users.keys().cloned().collect()))
                .collect()
        };
        let mut changes = Vec::new();
        for (room_id, users) in rooms {
            let key = presence_key(&room_id);
            for chunk in users.chunks(1000) {
                let mut call = shared.refresh.key(&key);
                call.arg(&shared.node).arg(shared.ttl_ms).arg(chunk);
                match call.invoke_async::<Vec<String>>(&mut shared.conn.clone()).await {
                    Ok(back) => changes.extend(back.into_iter().filter(|u| self.is_here(&room_id, u)).map(
                        |user_id| PresenceChange {
                            room_id: room_id.clone(),
                            user_id,
                            online: true,
                        },
                    )),
                    Err(e) => {
                        tracing::warn!(room = %room_id, error = %e, "presence: refresh failed");
                        return changes;
                    }
                }
            }
            match shared
                .sweep
                .key(&key)
                .invoke_async::<Vec<String>>(&mut shared.conn.clone())
                .await
            {
                Ok(gone) => changes.extend(gone.into_iter().map(|user_id| PresenceChange {
                    room_id: room_id.clone(),
                    user_id,
                    online: false,
                })),
                Err(e) => tracing::warn!(room = %room_id, error = %e, "presence: sweep failed"),
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_counts_say_first_in_and_last_out() {
        let p = Presence::local();
        assert!(p.arrive("r", "u"));
        assert!(!p.arrive("r", "u"));
        assert!(p.arrive("r", "v"));
        assert!(!p.depart("r", "u"));
        assert!(p.depart("r", "u"));
        assert!(!p.depart("r", "u"), "no connection left to count out");
        assert!(p.is_here("r", "v"));
        assert!(!p.is_here("r", "u"));
    }
}
