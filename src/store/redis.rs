//! Redis chat store. Per room (every key tagged with the room, see `keys`):
//! a stream giving ids and order (each entry holds only the message's
//! sequence number, trimmed to about `max_len` entries), a hash of message
//! bodies by sequence number (edited in place, a tombstone once deleted), a
//! sorted set of deleted ids by sequence number, a meta hash (last sequence
//! number, oldest kept, last id), read positions (id and sequence number per
//! user), and `clientMsgId` keys that live 24 h. Per user: a sorted set of the
//! rooms joined. Unread is `last seq - max(read seq, oldest kept - 1) -
//! deleted in between`: a few O(log n) commands, never a scan.

use futures_util::future::{BoxFuture, FutureExt, try_join_all};
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::keys::{RoomKeys, user_rooms};
use super::{
    ChatMessage, ChatStore, MAX_ROOMS_PER_USER, MessageId, NewMessage, ReadState, RoomSummary, StoreError,
};
use crate::cluster::conn::{Commands, Target};

/// How long a retried `clientMsgId` is recognised.
const DEDUPE_TTL_SECS: u64 = 24 * 3600;
/// Attempts of an edit racing other edits of the same message.
const EDIT_ATTEMPTS: usize = 5;

/// KEYS: stream, bodies, meta, deleted, dedupe (or the stream when none).
/// ARGV: max_len, body, has dedupe ('1'/'0'), dedupe ttl.
/// Returns {id, 1} for a new message, {first id, 0} for a retry.
const APPEND: &str = r#"
if ARGV[3] == '1' then
  local existing = redis.call('GET', KEYS[5])
  if existing then return {existing, 0} end
end
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 's', seq)
redis.call('HSET', KEYS[2], seq, ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[5], id, 'EX', ARGV[4]) end
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local first = tonumber(oldest[1][2][2])
local kept = tonumber(redis.call('HGET', KEYS[3], 'first') or first)
if first > kept then
  local gone = {}
  for s = kept, first - 1 do
    gone[#gone + 1] = s
    if #gone == 500 then
      redis.call('HDEL', KEYS[2], unpack(gone))
      gone = {}
    end
  end
  if #gone > 0 then redis.call('HDEL', KEYS[2], unpack(gone)) end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. first)
end
redis.call('HSET', KEYS[3], 'first', first, 'last', id)
return {id, 1}
"#;

/// KEYS: stream, bodies. ARGV: id. Returns {seq, body} or nil.
const LOOKUP: &str = r#"
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return false end
local seq = e[1][2][2]
return {seq, redis.call('HGET', KEYS[2], seq) or ''}
"#;

/// KEYS: stream, reads. ARGV: user, id. Returns the id in force, or nil
/// when `id` is not a message kept in the room.
const MARK_READ: &str = r#"
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #e == 0 then return false end
local seq = tonumber(e[1][2][2])
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local cid, cseq = string.match(cur, '^(%S+) (%d+)$')
  if cseq and tonumber(cseq) >= seq then return cid end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. seq)
return ARGV[2]
"#;

/// KEYS: reads, meta, deleted. ARGV: user. Returns {last read id or nil, unread}.
const UNREAD: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local meta = redis.call('HMGET', KEYS[2], 'seq', 'first')
local last = tonumber(meta[1] or 0)
local from = tonumber(meta[2] or 1)
local read = false
if cur then
  local cid, cseq = string.match(cur, '^(%S+) (%d+)$')
  if cseq then
    read = cid
    if tonumber(cseq) + 1 > from then from = tonumber(cseq) + 1 end
  end
end
if from > last then return {read, 0} end
return {read, last - from + 1 - redis.call('ZCOUNT', KEYS[3], from, last)}
"#;

/// KEYS: bodies. ARGV: seq, body read, new body. 1 when replaced, 0 when it changed meanwhile.
const REPLACE: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"#;

/// KEYS: stream, bodies, deleted. ARGV: id, tombstone body. 1, or 0 when unknown.
const DELETE: &str = r#"
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local seq = e[1][2][2]
redis.call('HSET', KEYS[2], seq, ARGV[2])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return 1
"#;

/// A message body (the stream id gives `id` and `ts`).
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(default)]
    sender_id: String,
    #[serde(default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_msg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edited_at: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

impl Stored {
    fn parse(id: &str, body: &str) -> Result<Self, StoreError> {
        serde_json::from_str(body).map_err(|_| corrupt(id))
    }

    fn into_message(self, id: &str, room_id: &str) -> Result<ChatMessage, StoreError> {
        let parsed = MessageId::parse(id).ok_or_else(|| corrupt(id))?;
        if self.deleted {
            return Ok(ChatMessage::tombstone(id, room_id));
        }
        Ok(ChatMessage {
            id: id.to_owned(),
            room_id: room_id.to_owned(),
            sender_id: self.sender_id,
            message: self.message,
            kind: self.kind,
            ts: parsed.ms,
            client_msg_id: self.client_msg_id,
            edited_at: self.edited_at,
            deleted: false,
        })
    }
}

fn tombstone_body() -> String {
    serde_json::to_string(&Stored {
        deleted: true,
        ..Stored::default()
    })
    .unwrap_or_default()
}

pub struct RedisStore {
    conn: Commands,
    max_len: usize,
    append: Script,
    lookup: Script,
    mark_read: Script,
    unread: Script,
    replace: Script,
    delete: Script,
}

impl RedisStore {
    /// The store on `conn` (one Redis or a cluster: every multi-key command
    /// names keys of one room, hence of one slot).
    pub fn new(conn: Commands, max_len: usize) -> Self {
        Self {
            conn,
            max_len: max_len.max(1),
            append: Script::new(APPEND),
            lookup: Script::new(LOOKUP),
            mark_read: Script::new(MARK_READ),
            unread: Script::new(UNREAD),
            replace: Script::new(REPLACE),
            delete: Script::new(DELETE),
        }
    }

    /// Connects to one Redis (tests).
    pub async fn connect(client: redis::Client, max_len: usize) -> Result<Self, StoreError> {
        let conn = Target::Single(client).commands().await.map_err(|e| {
            tracing::warn!(error = %e, "chat store: cannot connect to Redis");
            StoreError::Unavailable
        })?;
        Ok(Self::new(conn, max_len))
    }

    /// Sequence number and body of message `id`, if the room keeps it.
    async fn lookup(&self, keys: &RoomKeys, id: &str) -> Result<Option<(String, String)>, StoreError> {
        self.lookup
            .key(keys.stream())
            .key(keys.bodies())
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn find(&self, room_id: &str, id: &str) -> Result<Option<ChatMessage>, StoreError> {
        match self.lookup(&RoomKeys::new(room_id), id).await? {
            Some((_, body)) => Ok(Some(Stored::parse(id, &body)?.into_message(id, room_id)?)),
            None => Ok(None),
        }
    }

    async fn append_now(&self, new: NewMessage) -> Result<(ChatMessage, bool), StoreError> {
        let keys = RoomKeys::new(&new.room_id);
        let dedupe = new
            .client_msg_id
            .as_deref()
            .map(|c| keys.dedupe(&new.sender_id, c));
        let body = serde_json::to_string(&Stored {
            sender_id: new.sender_id.clone(),
            message: new.message.clone(),
            kind: new.kind.clone(),
            client_msg_id: new.client_msg_id.clone(),
            edited_at: None,
            deleted: false,
        })
        .map_err(|_| StoreError::Corrupt)?;
        let stream = keys.stream();
        let (id, is_new): (String, u8) = self
            .append
            .key(&stream)
            .key(keys.bodies())
            .key(keys.meta())
            .key(keys.deleted())
            .key(dedupe.as_deref().unwrap_or(&stream))
            .arg(self.max_len)
            .arg(body)
            .arg(if dedupe.is_some() { "1" } else { "0" })
            .arg(DEDUPE_TTL_SECS)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let parsed = MessageId::parse(&id).ok_or_else(|| corrupt(&id))?;
        if is_new == 0
            && let Some(first) = self.find(&new.room_id, &id).await?
        {
            return Ok((first, false));
        }
        let message = ChatMessage {
            id,
            room_id: new.room_id,
            sender_id: new.sender_id,
            message: new.message,
            kind: new.kind,
            ts: parsed.ms,
            client_msg_id: new.client_msg_id,
            edited_at: None,
            deleted: false,
        };
        Ok((message, is_new == 1))
    }

    async fn history_now(
        &self,
        room_id: &str,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = RoomKeys::new(room_id);
        let stream = keys.stream();
        let (end, count) = match before {
            Some(before) => (before.to_string(), limit + 1),
            None => ("+".to_owned(), limit),
        };
        let (page, exists): (StreamRangeReply, bool) = redis::pipe()
            .atomic()
            .xrevrange_count(&stream, &end, "-", count)
            .exists(&stream)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let mut entries = page.ids;
        if before.is_some() {
            match entries.first() {
                Some(newest) if newest.id == end => {
                    entries.remove(0);
                }
                // Entries older than `before` but not `before` itself.
                Some(_) => return Err(StoreError::UnknownMessage),
                // Older than every message kept: an empty page.
                None if exists => {}
                None => return Err(StoreError::UnknownMessage),
            }
            entries.truncate(limit);
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let seqs = entries
            .iter()
            .map(|e| e.get::<String>("s").ok_or_else(|| corrupt(&e.id)))
            .collect::<Result<Vec<_>, _>>()?;
        let bodies: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys.bodies())
            .arg(&seqs)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let mut messages = entries
            .iter()
            .zip(bodies)
            // A body trimmed since the page was read: that message is gone.
            .filter_map(|(entry, body)| Some((entry, body?)))
            .map(|(entry, body)| Stored::parse(&entry.id, &body)?.into_message(&entry.id, room_id))
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    async fn unread_now(&self, room_id: &str, user_id: &str) -> Result<ReadState, StoreError> {
        let keys = RoomKeys::new(room_id);
        let (read, unread): (Option<String>, i64) = self
            .unread
            .key(keys.reads())
            .key(keys.meta())
            .key(keys.deleted())
            .arg(user_id)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(ReadState {
            last_read: read.as_deref().and_then(MessageId::parse),
            unread: unread.max(0) as u64,
        })
    }

    async fn edit_now(&self, room_id: &str, id: &MessageId, text: &str) -> Result<ChatMessage, StoreError> {
        let keys = RoomKeys::new(room_id);
        let id = id.to_string();
        for _ in 0..EDIT_ATTEMPTS {
            let (seq, body) = self.lookup(&keys, &id).await?.ok_or(StoreError::UnknownMessage)?;
            let mut stored = Stored::parse(&id, &body)?;
            if stored.deleted {
                return Err(StoreError::Deleted);
            }
            stored.message = text.to_owned();
            stored.edited_at = Some(crate::clock::unix_millis());
            let new_body = serde_json::to_string(&stored).map_err(|_| StoreError::Corrupt)?;
            let replaced: u8 = self
                .replace
                .key(keys.bodies())
                .arg(&seq)
                .arg(&body)
                .arg(&new_body)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            if replaced == 1 {
                return stored.into_message(&id, room_id);
            }
        }
        tracing::warn!(
            room = room_id,
            id,
            "chat store: edit lost {EDIT_ATTEMPTS} races in a row"
        );
        Err(StoreError::Unavailable)
    }

    async fn rooms_now(&self, user_id: &str, limit: usize) -> Result<Vec<RoomSummary>, StoreError> {
        let joined: Vec<(String, f64)> = self
            .conn
            .clone()
            .zrevrange_withscores(user_rooms(user_id), 0, -1)
            .await
            .map_err(unavailable)?;
        if joined.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let lasts: Vec<Option<String>> = if self.conn.is_cluster() {
            // Rooms live on different slots: one HGET each, concurrently.
            try_join_all(joined.iter().map(|(room_id, _)| async move {
                self.conn
                    .clone()
                    .hget(RoomKeys::new(room_id).meta(), "last")
                    .await
                    .map_err(unavailable)
            }))
            .await?
        } else {
            let mut pipe = redis::pipe();
            for (room_id, _) in &joined {
                pipe.hget(RoomKeys::new(room_id).meta(), "last");
            }
            pipe.query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?
        };
        let mut rooms: Vec<(u64, String, Option<String>)> = joined
            .into_iter()
            .zip(lasts)
            .map(|((room_id, joined_ms), last)| {
                let last_ms = last.as_deref().and_then(MessageId::parse).map_or(0, |id| id.ms);
                ((joined_ms as u64).max(last_ms), room_id, last)
            })
            .collect();
        rooms.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        rooms.truncate(limit);
        try_join_all(rooms.into_iter().map(|(_, room_id, last)| async move {
            let state = self.unread_now(&room_id, user_id).await?;
            let last_message = match last {
                Some(last) => self.find(&room_id, &last).await?,
                None => None,
            };
            Ok(RoomSummary {
                room_id,
                unread: state.unread,
                last_read: state.last_read.map(|id| id.to_string()),
                last_message,
            })
        }))
        .await
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    tracing::warn!(error = %e, "chat store: Redis command failed");
    StoreError::Unavailable
}

fn corrupt(id: &str) -> StoreError {
    tracing::error!(id, "chat store: unreadable entry");
    StoreError::Corrupt
}

impl ChatStore for RedisStore {
    fn append(&self, new: NewMessage) -> BoxFuture<'_, Result<(ChatMessage, bool), StoreError>> {
        self.append_now(new).boxed()
    }

    fn history<'a>(
        &'a self,
        room_id: &'a str,
        before: Option<&'a MessageId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        self.history_now(room_id, before, limit).boxed()
    }

    fn message<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<Option<ChatMessage>, StoreError>> {
        async move { self.find(room_id, &id.to_string()).await }.boxed()
    }

    fn last_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageId>, StoreError>> {
        async move {
            let read: Option<String> = self
                .conn
                .clone()
                .hget(RoomKeys::new(room_id).reads(), user_id)
                .await
                .map_err(unavailable)?;
            Ok(read
                .as_deref()
                .and_then(|r| r.split_once(' '))
                .and_then(|(id, _)| MessageId::parse(id)))
        }
        .boxed()
    }

    fn mark_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<MessageId, StoreError>> {
        async move {
            let keys = RoomKeys::new(room_id);
            let in_force: Option<String> = self
                .mark_read
                .key(keys.stream())
                .key(keys.reads())
                .arg(user_id)
                .arg(id.to_string())
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            let in_force = in_force.ok_or(StoreError::UnknownMessage)?;
            MessageId::parse(&in_force).ok_or_else(|| corrupt(&in_force))
        }
        .boxed()
    }

    fn unread<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<ReadState, StoreError>> {
        self.unread_now(room_id, user_id).boxed()
    }

    fn edit<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
        text: &'a str,
    ) -> BoxFuture<'a, Result<ChatMessage, StoreError>> {
        self.edit_now(room_id, id, text).boxed()
    }

    fn delete<'a>(
        &'a self,
        room_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<ChatMessage, StoreError>> {
        async move {
            let keys = RoomKeys::new(room_id);
            let id = id.to_string();
            let found: u8 = self
                .delete
                .key(keys.stream())
                .key(keys.bodies())
                .key(keys.deleted())
                .arg(&id)
                .arg(tombstone_body())
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            match found {
                1 => Ok(ChatMessage::tombstone(&id, room_id)),
                _ => Err(StoreError::UnknownMessage),
            }
        }
        .boxed()
    }

    fn join<'a>(&'a self, room_id: &'a str, user_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let key = user_rooms(user_id);
            let keep = MAX_ROOMS_PER_USER as isize;
            let () = redis::pipe()
                .atomic()
                .zadd(&key, room_id, crate::clock::unix_millis())
                .ignore()
                .zremrangebyrank(&key, 0, -(keep + 1))
                .ignore()
                .query_async(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
            // Another hash slot than the user's rooms: a command of its own.
            let () = self
                .conn
                .clone()
                .sadd(RoomKeys::new(room_id).members(), user_id)
                .await
                .map_err(unavailable)?;
            Ok(())
        }
        .boxed()
    }

    fn members<'a>(&'a self, room_id: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        async move {
            let mut members: Vec<String> = self
                .conn
                .clone()
                .smembers(RoomKeys::new(room_id).members())
                .await
                .map_err(unavailable)?;
            members.sort_unstable();
            Ok(members)
        }
        .boxed()
    }

    fn rooms<'a>(
        &'a self,
        user_id: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RoomSummary>, StoreError>> {
        self.rooms_now(user_id, limit).boxed()
    }
}
