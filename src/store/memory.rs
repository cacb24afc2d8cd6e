//! In-memory chat store for a single node: bounded per room, lost at restart.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use futures_util::future::{BoxFuture, FutureExt};

use super::{ChatMessage, ChatStore, MessageId, NewMessage, StoreError};

#[derive(Default)]
struct Room {
    messages: VecDeque<ChatMessage>,
    ids: VecDeque<MessageId>,
    /// `sender \0 clientMsgId` → id, for messages still retained.
    client_ids: HashMap<String, MessageId>,
    reads: HashMap<String, MessageId>,
}

pub struct MemoryStore {
    max_len: usize,
    rooms: Mutex<HashMap<String, Room>>,
    last_id: Mutex<MessageId>,
}

impl MemoryStore {
    /// `max_len`: messages kept per room (older ones are dropped).
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.max(1),
            rooms: Mutex::default(),
            last_id: Mutex::new(MessageId { ms: 0, seq: 0 }),
        }
    }

    fn next_id(&self) -> MessageId {
        let now = crate::clock::unix_millis();
        let mut last = self.last_id.lock().unwrap_or_else(|e| e.into_inner());
        *last = if now > last.ms {
            MessageId { ms: now, seq: 0 }
        } else {
            MessageId {
                ms: last.ms,
                seq: last.seq + 1,
            }
        };
        *last
    }

    fn dedupe_key(sender: &str, client_msg_id: &str) -> String {
        format!("{sender}\0{client_msg_id}")
    }
}

impl ChatStore for MemoryStore {
    fn append(&self, new: NewMessage) -> BoxFuture<'_, Result<(ChatMessage, bool), StoreError>> {
        let result = (|| {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let room = rooms.entry(new.room_id.clone()).or_default();
            if let Some(cmid) = &new.client_msg_id
                && let Some(id) = room.client_ids.get(&Self::dedupe_key(&new.sender_id, cmid))
                && let Ok(pos) = room.ids.binary_search(id)
            {
                return Ok((room.messages[pos].clone(), false));
            }
            let id = self.next_id();
            let message = ChatMessage {
                id: id.to_string(),
                room_id: new.room_id,
                sender_id: new.sender_id,
                message: new.message,
                kind: new.kind,
                ts: id.ms,
                client_msg_id: new.client_msg_id,
            };
            if let Some(cmid) = &message.client_msg_id {
                room.client_ids
                    .insert(Self::dedupe_key(&message.sender_id, cmid), id);
            }
            room.messages.push_back(message.clone());
            room.ids.push_back(id);
            while room.messages.len() > self.max_len {
                if let Some(old) = room.messages.pop_front()
                    && let Some(cmid) = &old.client_msg_id
                {
                    room.client_ids.remove(&Self::dedupe_key(&old.sender_id, cmid));
                }
                room.ids.pop_front();
            }
            Ok((message, true))
        })();
        async move { result }.boxed()
    }

    fn history<'a>(
        &'a self,
        room_id: &'a str,
        before: Option<&'a MessageId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let messages = match rooms.get(room_id) {
            None => Vec::new(),
            Some(room) => {
                let end = match before {
                    Some(before) => room.ids.partition_point(|id| id < before),
                    None => room.ids.len(),
                };
                let start = end.saturating_sub(limit);
                room.messages.range(start..end).cloned().collect()
            }
        };
        async move { Ok(messages) }.boxed()
    }

    fn last_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageId>, StoreError>> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let read = rooms.get(room_id).and_then(|r| r.reads.get(user_id).copied());
        async move { Ok(read) }.boxed()
    }

    fn mark_read<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
        id: &'a MessageId,
    ) -> BoxFuture<'a, Result<MessageId, StoreError>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let reads = &mut rooms.entry(room_id.to_owned()).or_default().reads;
        let position = reads.entry(user_id.to_owned()).or_insert(*id);
        if *id > *position {
            *position = *id;
        }
        let in_force = *position;
        async move { Ok(in_force) }.boxed()
    }

    fn count_after<'a>(
        &'a self,
        room_id: &'a str,
        after: Option<&'a MessageId>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let count = rooms.get(room_id).map_or(0, |room| match after {
            None => room.ids.len(),
            Some(after) => room.ids.len() - room.ids.partition_point(|id| id <= after),
        });
        async move { Ok(count as u64) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(room: &str, sender: &str, text: &str, cmid: Option<&str>) -> NewMessage {
        NewMessage {
            room_id: room.into(),
            sender_id: sender.into(),
            message: text.into(),
            kind: "TEXT".into(),
            client_msg_id: cmid.map(Into::into),
        }
    }

    #[tokio::test]
    async fn history_pages_backwards_newest_last() {
        let store = MemoryStore::new(100);
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(
                store
                    .append(msg("r", "u", &format!("m{i}"), None))
                    .await
                    .unwrap()
                    .0
                    .id,
            );
        }
        let last3 = store.history("r", None, 3).await.unwrap();
        assert_eq!(
            last3.iter().map(|m| m.message.as_str()).collect::<Vec<_>>(),
            ["m7", "m8", "m9"]
        );
        let before = MessageId::parse(&last3[0].id).unwrap();
        let page = store.history("r", Some(&before), 4).await.unwrap();
        assert_eq!(
            page.iter().map(|m| m.message.as_str()).collect::<Vec<_>>(),
            ["m3", "m4", "m5", "m6"]
        );
        assert!(store.history("other", None, 3).await.unwrap().is_empty());
        let sorted = ids
            .iter()
            .map(|i| MessageId::parse(i).unwrap())
            .collect::<Vec<_>>();
        assert!(sorted.windows(2).all(|w| w[0] < w[1]), "ids strictly increase");
    }

    #[tokio::test]
    async fn client_msg_id_dedupes_per_sender() {
        let store = MemoryStore::new(100);
        let (first, new) = store.append(msg("r", "alice", "hi", Some("c1"))).await.unwrap();
        assert!(new);
        let (again, new) = store
            .append(msg("r", "alice", "hi (retry)", Some("c1")))
            .await
            .unwrap();
        assert!(!new);
        assert_eq!(again, first);
        let (bobs, new) = store.append(msg("r", "bob", "hi", Some("c1"))).await.unwrap();
        assert!(
            new && bobs.id != first.id,
            "another sender's clientMsgId is its own"
        );
        assert_eq!(store.count_after("r", None).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn reads_move_forward_only_and_unread_counts_after_them() {
        let store = MemoryStore::new(100);
        let a = store.append(msg("r", "u", "a", None)).await.unwrap().0;
        let b = store.append(msg("r", "u", "b", None)).await.unwrap().0;
        store.append(msg("r", "u", "c", None)).await.unwrap();
        assert_eq!(store.last_read("r", "v").await.unwrap(), None);
        let (ida, idb) = (MessageId::parse(&a.id).unwrap(), MessageId::parse(&b.id).unwrap());
        assert_eq!(store.mark_read("r", "v", &idb).await.unwrap(), idb);
        assert_eq!(
            store.mark_read("r", "v", &ida).await.unwrap(),
            idb,
            "never backwards"
        );
        assert_eq!(store.count_after("r", Some(&idb)).await.unwrap(), 1);
        assert_eq!(store.count_after("r", None).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn rooms_are_bounded() {
        let store = MemoryStore::new(5);
        for i in 0..12 {
            store
                .append(msg("r", "u", &i.to_string(), Some(&i.to_string())))
                .await
                .unwrap();
        }
        let all = store.history("r", None, 100).await.unwrap();
        assert_eq!(
            all.iter().map(|m| m.message.as_str()).collect::<Vec<_>>(),
            ["7", "8", "9", "10", "11"]
        );
    }
}
