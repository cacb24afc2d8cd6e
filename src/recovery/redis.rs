//! The Redis backend: one stream per recoverable room,
//! `roomcast:rec:{<room>}` (the room, escaped, is the key's hash tag), trimmed
//! to about `max_events` entries and expiring `ttl` after its last event. The
//! stream id is the offset.
//!
//! Recording is one script per publish: XADD each event to each of its rooms'
//! streams, then PUBLISH one `recorded` envelope (every event with its
//! offsets) on the fanout channel. Being one script, the order of the
//! envelopes on the channel is the order of the offsets, and every node —
//! the publishing one too — delivers from that channel, so every node
//! delivers a room's events in offset order.
//!
//! The script may also claim a message that every node received from a
//! service channel (`roomcast:trades`, `roomcast:emit`): the first node to
//! claim it records it, the others skip it. (The claim key carries the first
//! room's hash tag.)
//!
//! On a Redis Cluster a script may only touch keys of one slot, so the rooms
//! are grouped by slot and each group is one script run (its own claim, its
//! own envelope, PUBLISHed, which a cluster forwards to every node). An event
//! for rooms on several slots goes out in one envelope per slot: the first
//! carries the rooms that are not recorded too, and each later one leaves out
//! the sockets in the rooms of the earlier ones (`except`), so a socket still
//! gets the event once. A room's events still come from one master in offset
//! order.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::conn::Commands;
use redis::cluster_routing::Slot;
use redis::{Script, Value};
use serde::Serialize;
use serde_json::value::RawValue;

use super::offset::Offset;
use super::{Entry, Limits, Pending, Replay, Stored};
use crate::cluster::fanout::FANOUT_CHANNEL;
use crate::cluster::health::RedisHealth;

/// Time allowed to one recording or read.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a claim on a service message is remembered.
pub const CLAIM_TTL_MS: u64 = 10_000;

const RECORD: &str = r#"
if ARGV[5] ~= '' then
  local tag = string.match(KEYS[1] or '', '{[^}]*}') or ''
  local claim = 'roomcast:rec:claim:' .. tag .. redis.sha1hex(ARGV[5]) .. ':' .. ARGV[6]
  if not redis.call('SET', claim, '1', 'NX', 'PX', ARGV[8]) then return false end
end
local ids, out = {}, {}
local k, a = 1, 9
for i = 1, tonumber(ARGV[7]) do
  local head, event, data, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  a = a + 4
  local parts = {}
  for j = 1, n do
    local id = redis.call('XADD', KEYS[k], 'MAXLEN', '~', ARGV[1], '*', 'e', event, 'd', data)
    redis.call('EXPIRE', KEYS[k], ARGV[2])
    parts[j] = ARGV[a] .. ':"' .. id .. '"'
    ids[#ids + 1] = id
    k, a = k + 1, a + 1
  end
  out[i] = head .. table.concat(parts, ',') .. '}}'
end
redis.call('PUBLISH', ARGV[3], ARGV[4] .. table.concat(out, ',') .. ']}')
return ids
"#;

const READ: &str = r#"
local first = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', 1)
if #first == 0 then return {} end
return {first[1][1], redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', ARGV[3])}
"#;

/// The `recorded` envelope as the script completes it: `origin` `*`, so every
/// node delivers it, the publishing one included.
const ENVELOPE_HEAD: &str = r#"{"origin":"*","kind":"recorded","items":["#;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer in time")]
    Timeout,
    #[error("redis is unreachable")]
    Down,
    #[error("unexpected reply from redis")]
    Reply,
}

/// A recorded event's head in the envelope, offsets left open for the script.
#[derive(Serialize)]
struct Head<'a> {
    rooms: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    except: &'a [String],
    event: &'a str,
    data: &'a RawValue,
}

/// The part of one pending event recorded by one script run.
struct Part<'a> {
    pending: &'a Pending,
    /// The rooms this part's envelope delivers to.
    rooms: Vec<String>,
    /// The rooms whose sockets an earlier part delivered to.
    except: Vec<String>,
    /// The rooms this run records the event in.
    recorded: Vec<&'a str>,
}

/// Every event whole, for one Redis.
fn whole(pending: &[Pending]) -> Vec<Part<'_>> {
    pending
        .iter()
        .map(|p| Part {
            pending: p,
            rooms: p.rooms.clone(),
            except: Vec::new(),
            recorded: p.recorded.iter().map(String::as_str).collect(),
        })
        .collect()
}

/// The parts of every event grouped by the slot of their recorded rooms, for a cluster.
fn by_slot(pending: &[Pending]) -> Vec<Vec<Part<'_>>> {
    let mut groups: Vec<(Slot, Vec<Part<'_>>)> = Vec::new();
    for p in pending {
        let mut slots: Vec<(Slot, Vec<&str>)> = Vec::new();
        for room in &p.recorded {
            let slot = Slot::for_key(stream_key(room));
            match slots.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, rooms)) => rooms.push(room),
                None => slots.push((slot, vec![room])),
            }
        }
        let plain: Vec<String> = p
            .rooms
            .iter()
            .filter(|r| !p.recorded.contains(r))
            .cloned()
            .collect();
        let mut earlier: Vec<String> = Vec::new();
        for (i, (slot, recorded)) in slots.into_iter().enumerate() {
            let mut rooms: Vec<String> = recorded.iter().map(|r| (*r).to_owned()).collect();
            if i == 0 {
                rooms.extend(plain.iter().cloned());
            }
            let part = Part {
                pending: p,
                except: earlier.clone(),
                recorded,
                rooms: rooms.clone(),
            };
            earlier.extend(rooms);
            match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, parts)) => parts.push(part),
                None => groups.push((slot, vec![part])),
            }
        }
    }
    groups.into_iter().map(|(_, parts)| parts).collect()
}

/// A claim on a message every node received: its bytes and how many identical
/// messages this node saw before it lately.
pub struct Claim<'a> {
    pub payload: &'a [u8],
    pub index: u32,
}

pub struct RedisHistory {
    conn: Commands,
    health: Arc<RedisHealth>,
    limits: Limits,
    record: Script,
    read: Script,
}

/// `roomcast:rec:{<room>}`: bytes outside `A-Z a-z 0-9 . _ - : / @` are
/// %-escaped, so a user id cannot close the hash tag or collide with another room.
pub fn stream_key(room: &str) -> String {
    let mut key = String::with_capacity(room.len() + 16);
    key.push_str("roomcast:rec:{");
    for b in room.bytes() {
        if b.is_ascii_alphanumeric() || b"._-:/@".contains(&b) {
            key.push(b as char);
        } else {
            key.push_str(&format!("%{b:02X}"));
        }
    }
    key.push('}');
    key
}

impl RedisHistory {
    pub fn new(conn: Commands, health: Arc<RedisHealth>, limits: Limits) -> Self {
        Self {
            conn,
            health,
            limits,
            record: Script::new(RECORD),
            read: Script::new(READ),
        }
    }

    async fn run<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, HistoryError> {
        if !self.health.is_up() {
            return Err(HistoryError::Down);
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(HistoryError::Timeout),
        }
    }

    /// Records `pending` and publishes it to every node; `Ok(false)` when
    /// another node had claimed it already.
    pub async fn record(&self, pending: &[Pending], claim: Option<Claim<'_>>) -> Result<bool, HistoryError> {
        if !self.conn.is_cluster() {
            return self.record_parts(&whole(pending), claim.as_ref()).await;
        }
        let mut recorded = false;
        for parts in by_slot(pending) {
            recorded |= self.record_parts(&parts, claim.as_ref()).await?;
        }
        Ok(recorded)
    }

    /// One script run: every key it names is in `parts`' recorded rooms.
    async fn record_parts(
        &self,
        parts: &[Part<'_>],
        claim: Option<&Claim<'_>>,
    ) -> Result<bool, HistoryError> {
        let mut invocation = self.record.prepare_invoke();
        let (claim_payload, claim_index): (&[u8], u32) = claim.map_or((b"", 0), |c| (c.payload, c.index));
        invocation
            .arg(self.limits.max_events)
            .arg(self.limits.ttl_ms.div_ceil(1000).max(1))
            .arg(FANOUT_CHANNEL)
            .arg(ENVELOPE_HEAD)
            .arg(claim_payload)
            .arg(claim_index)
            .arg(parts.len())
            .arg(CLAIM_TTL_MS);
        for part in parts {
            let p = part.pending;
            let mut head = serde_json::to_string(&Head {
                rooms: &part.rooms,
                except: &part.except,
                event: &p.stored.event,
                data: &p.stored.data,
            })
            .map_err(|_| HistoryError::Reply)?;
            head.pop();
            head.push_str(r#","offsets":{"#);
            invocation
                .arg(head)
                .arg(&p.stored.event)
                .arg(p.stored.data.get())
                .arg(part.recorded.len());
            for room in &part.recorded {
                invocation.key(stream_key(room));
                invocation.arg(serde_json::to_string(room).map_err(|_| HistoryError::Reply)?);
            }
        }
        let mut conn = self.conn.clone();
        let reply: Option<Vec<String>> = self.run(invocation.invoke_async(&mut conn)).await?;
        Ok(reply.is_some())
    }

    /// What `room` keeps after `after`; a gap when `after` is older than the
    /// oldest event kept (or nothing is kept).
    pub async fn after(&self, room: &str, after: Offset, now_ms: u64) -> Result<Replay, HistoryError> {
        let cutoff = now_ms.saturating_sub(self.limits.ttl_ms);
        let mut conn = self.conn.clone();
        let mut invocation = self.read.prepare_invoke();
        invocation
            .key(stream_key(room))
            .arg(cutoff)
            .arg(after.to_string())
            .arg(self.limits.max_events * 2);
        let reply: Value = self.run(invocation.invoke_async(&mut conn)).await?;
        let Value::Array(mut parts) = reply else {
            return Err(HistoryError::Reply);
        };
        if parts.is_empty() {
            return Ok(Replay::Gap);
        }
        if parts.len() != 2 {
            return Err(HistoryError::Reply);
        }
        let entries = parts.pop().ok_or(HistoryError::Reply)?;
        let first: String = redis::from_redis_value(parts.pop().ok_or(HistoryError::Reply)?)
            .map_err(|_| HistoryError::Reply)?;
        let first: Offset = first.parse().map_err(|_| HistoryError::Reply)?;
        if after < first {
            return Ok(Replay::Gap);
        }
        let entries: Vec<(String, Vec<String>)> =
            redis::from_redis_value(entries).map_err(|_| HistoryError::Reply)?;
        entries
            .into_iter()
            .map(|(id, fields)| decode(&id, fields))
            .collect::<Result<_, _>>()
            .map(Replay::Events)
    }
}

fn decode(id: &str, fields: Vec<String>) -> Result<Entry, HistoryError> {
    let offset: Offset = id.parse().map_err(|_| HistoryError::Reply)?;
    let (mut event, mut data) = (None, None);
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match name.as_str() {
            "e" => event = Some(value),
            "d" => data = Some(value),
            _ => {}
        }
    }
    let data = RawValue::from_string(data.ok_or(HistoryError::Reply)?).map_err(|_| HistoryError::Reply)?;
    Ok(Entry {
        offset,
        stored: Arc::new(Stored {
            event: event.ok_or(HistoryError::Reply)?,
            data,
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn pending(rooms: &[&str], recorded: &[&str]) -> Pending {
        Pending {
            rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            recorded: recorded.iter().map(|r| (*r).to_owned()).collect(),
            stored: Arc::new(Stored {
                event: "e".into(),
                data: RawValue::from_string("1".into()).unwrap(),
            }),
        }
    }

    #[test]
    fn on_a_cluster_each_run_touches_one_slot_and_a_socket_gets_an_event_once() {
        let users: Vec<String> = (0..20).map(|i| format!("user:{i}")).collect();
        let mut rooms: Vec<&str> = users.iter().map(String::as_str).collect();
        rooms.push("admin");
        let events = [
            pending(&rooms, &rooms[..20]),
            pending(&["trades:A"], &["trades:A"]),
        ];
        let groups = by_slot(&events);
        assert!(groups.len() > 2, "20 users spread over several slots");
        let mut delivered: Vec<String> = Vec::new();
        for parts in &groups {
            let slots: HashSet<Slot> = (parts.iter())
                .flat_map(|p| p.recorded.iter().map(|r| Slot::for_key(stream_key(r))))
                .collect();
            assert_eq!(slots.len(), 1, "one slot per script run");
            for part in parts.iter().filter(|p| p.pending.rooms.len() > 1) {
                assert!(part.except.iter().all(|r| delivered.contains(r)));
                assert!(
                    part.rooms.iter().all(|r| !delivered.contains(r)),
                    "each room in one envelope"
                );
                delivered.extend(part.rooms.iter().cloned());
            }
        }
        delivered.sort();
        let mut all: Vec<String> = rooms.iter().map(|r| (*r).to_owned()).collect();
        all.sort();
        assert_eq!(delivered, all);
    }

    #[test]
    fn stream_keys_escape_what_could_break_the_hash_tag() {
        assert_eq!(stream_key("trades:BTC/USD"), "roomcast:rec:{trades:BTC/USD}");
        assert_eq!(stream_key("user:a}b{c%"), "roomcast:rec:{user:a%7Db%7Bc%25}");
        assert_ne!(stream_key("user:a b"), stream_key("user:a%20b"));
    }
}
