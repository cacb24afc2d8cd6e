//! Redis chat store: one stream per room (`roomcast:chat:<room>:messages`,
//! trimmed to about `max_len` entries), read positions in a hash
//! (`roomcast:chat:<room>:reads`), and `clientMsgId` de-duplication keys that
//! live 24 h. History and unread counts survive any node's restart and are the
//! same from every node.

use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::{ChatMessage, ChatStore, MessageId, NewMessage, StoreError};

/// How long a retried `clientMsgId` is recognised.
const DEDUPE_TTL_SECS: u64 = 24 * 3600;

const APPEND: &str = r#"
if ARGV[3] == '1' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {existing, 0} end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[2], id, 'EX', ARGV[4]) end
return {id, 1}
"#;

const MARK_READ: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local cms, cseq = string.match(cur, '^(%d+)-(%d+)$')
  local nms, nseq = string.match(ARGV[2], '^(%d+)-(%d+)$')
  if cms and (tonumber(cms) > tonumber(nms) or (tonumber(cms) == tonumber(nms) and tonumber(cseq) >= tonumber(nseq))) then
    return cur
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ARGV[2]
"#;

const COUNT_AFTER: &str = r#"
if ARGV[1] == '' then return redis.call('XLEN', KEYS[1]) end
return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')
"#;

/// What is stored per entry besides the stream id (which gives `id` and `ts`).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    room_id: String,
    sender_id: String,
    message: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_msg_id: Option<String>,
}

pub struct RedisStore {
    conn: ConnectionManager,
    max_len: usize,
    append: Script,
    mark_read: Script,
    count_after: Script,
}

impl RedisStore {
    pub async fn connect(client: redis::Client, max_len: usize) -> Result<Self, StoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| StoreError::Unavailable("timed out connecting".into()))?
        .map_err(unavailable)?;
        Ok(Self {
            conn,
            max_len: max_len.max(1),
            append: Script::new(APPEND),
            mark_read: Script::new(MARK_READ),
            count_after: Script::new(COUNT_AFTER),
        })
    }

    fn stream_key(room_id: &str) -> String {
        format!("roomcast:chat:{room_id}:messages")
    }

    fn reads_key(room_id: &str) -> String {
        format!("roomcast:chat:{room_id}:reads")
    }

    fn dedupe_key(room_id: &str, sender: &str, client_msg_id: &str) -> String {
        format!(
            "roomcast:chat:{room_id}:cmid:{}:{sender}:{client_msg_id}",
            sender.len()
        )
    }

    fn decode(room_id: &str, reply: StreamRangeReply) -> Result<Vec<ChatMessage>, StoreError> {
        reply
            .ids
            .into_iter()
            .map(|entry| {
                let id = MessageId::parse(&entry.id).ok_or_else(|| corrupt(&entry.id))?;
                let raw: String = entry.get("m").ok_or_else(|| corrupt(&entry.id))?;
                let stored: Stored = serde_json::from_str(&raw).map_err(|_| corrupt(&entry.id))?;
                Ok(ChatMessage {
                    id: entry.id,
                    room_id: room_id.to_owned(),
                    sender_id: stored.sender_id,
                    message: stored.message,
                    kind: stored.kind,
                    ts: id.ms,
                    client_msg_id: stored.client_msg_id,
                })
            })
            .collect()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(id: &str) -> StoreError {
    StoreError::Corrupt(format!("unreadable entry {id}"))
}

impl ChatStore for RedisStore {
    fn append(&self, new: NewMessage) -> BoxFuture<'_, Result<(ChatMessage, bool), StoreError>> {
        async move {
            let mut conn = self.conn.clone();
            let stream = Self::stream_key(&new.room_id);
            let dedupe = new
                .client_msg_id
                .as_deref()
                .map(|c| Self::dedupe_key(&new.room_id, &new.sender_id, c));
            let stored = Stored {
                room_id: new.room_id.clone(),
                sender_id: new.sender_id.clone(),
                message: new.message.clone(),
                kind: new.kind.clone(),
                client_msg_id: new.client_msg_id.clone(),
            };
            let json = serde_json::to_string(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let (id, is_new): (String, u8) = self
                .append
                .key(&stream)
                .key(dedupe.as_deref().unwrap_or(&stream))
                .arg(self.max_len)
                .arg(json)
                .arg(if dedupe.is_some() { "1" } else { "0" })
                .arg(DEDUPE_TTL_SECS)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let parsed = MessageId::parse(&id).ok_or_else(|| corrupt(&id))?;
            if is_new == 0 {
                let reply: StreamRangeReply = conn.xrange(&stream, &id, &id).await.map_err(unavailable)?;
                if let Some(original) = Self::decode(&new.room_id, reply)?.pop() {
                    return Ok((original, false));
                }
            }
            let message = ChatMessage {
                id,
                room_id: new.room_id,
                sender_id: new.sender_id,
                message: new.message,
                kind: new.kind,
                ts: parsed.ms,
                client_msg_id: new.client_msg_id,
            };
            Ok((message, is_new == 1))
        }
        .boxed()
    }

    fn history<'a>(
        &'a self,
        room_id: &'a str,
        before: Option<&'a MessageId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        async move {
            let mut conn = self.conn.clone();
            let end = before.map_or_else(|| "+".to_owned(), |b| format!("({b}"));
            let reply: StreamRangeReply = conn
                .xrevrange_count(Self::stream_key(room_id), end, "-", limit)
                .await
                .map_err(unavailable)?;
            let mut messages = Self::decode(room_id, reply)?;
            messages.reverse();
            Ok(messages)
        }
        .boxed()
    }

    fn last_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageId>, StoreError>> {
        async move {
            let mut conn = self.conn.clone();
            let read: Option<String> = conn
                .hget(Self::reads_key(room_id), user_id)
                .await
                .map_err(unavailable)?;
            Ok(read.as_deref().and_then(MessageId::parse))
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
            let mut conn = self.conn.clone();
            let in_force: String = self
                .mark_read
                .key(Self::reads_key(room_id))
                .arg(user_id)
                .arg(id.to_string())
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            MessageId::parse(&in_force).ok_or_else(|| corrupt(&in_force))
        }
        .boxed()
    }

    fn count_after<'a>(
        &'a self,
        room_id: &'a str,
        after: Option<&'a MessageId>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        async move {
            let mut conn = self.conn.clone();
            self.count_after
                .key(Self::stream_key(room_id))
                .arg(after.map(ToString::to_string).unwrap_or_default())
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)
        }
        .boxed()
    }
}
