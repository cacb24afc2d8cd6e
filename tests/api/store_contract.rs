//! One contract for both chat stores: every case below runs against the
//! memory store and against the Redis store (on a redis-server this test
//! starts on a free port). Then what only one of them has: eviction (memory),
//! the cost of an unread count in a big room and a paused server (Redis).

use std::sync::Arc;
use std::time::{Duration, Instant};

use roomcast::store::memory::{MemoryLimits, MemoryMetrics, MemoryStore};
use roomcast::store::redis::RedisStore;
use roomcast::store::{ChatMessage, ChatStore, MessageId, NewMessage, ReadState, StoreError};
use serde_json::json;

use crate::helpers::{RedisServer, sample, spawn_app_with};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Memory,
    Redis,
}

fn memory(max_len: usize) -> MemoryStore {
    MemoryStore::new(
        MemoryLimits {
            max_len,
            ..MemoryLimits::default()
        },
        MemoryMetrics::default(),
    )
}

async fn redis(server: &RedisServer, max_len: usize) -> RedisStore {
    RedisStore::connect(server.client(), max_len)
        .await
        .expect("connects")
}

/// Runs `case(store, kind)` once per store, each test with its own store
/// (and its own redis-server).
macro_rules! contract {
    ($($case:ident(max_len = $max_len:expr);)*) => {$(
        mod $case {
            use super::*;

            #[tokio::test]
            async fn memory_store() {
                super::$case(&super::memory($max_len), Kind::Memory).await;
            }

            #[tokio::test]
            async fn redis_store() {
                let server = RedisServer::start();
                super::$case(&super::redis(&server, $max_len).await, Kind::Redis).await;
            }
        }
    )*};
}

contract! {
    orders_pages_dedupes_and_reads(max_len = 1000);
    dedupes_per_sender_without_key_collisions(max_len = 1000);
    reads_move_forward_only_and_unread_counts_after_them(max_len = 1000);
    refuses_ids_that_are_not_messages_of_the_room(max_len = 1000);
    keeps_rooms_apart_whatever_their_names(max_len = 1000);
    edits_keep_the_place_and_record_edited_at(max_len = 1000);
    deletes_leave_a_tombstone_and_consistent_counts(max_len = 1000);
    inbox_lists_joined_rooms_most_recent_first(max_len = 1000);
    members_are_the_users_who_joined(max_len = 1000);
    trimming_keeps_counts_and_pages_consistent(max_len = 100);
}

fn msg(room: &str, sender: &str, text: &str, cmid: Option<&str>) -> NewMessage {
    NewMessage {
        room_id: room.into(),
        sender_id: sender.into(),
        message: text.into(),
        kind: "TEXT".into(),
        client_msg_id: cmid.map(Into::into),
    }
}

fn texts(messages: &[ChatMessage]) -> Vec<String> {
    messages.iter().map(|m| m.message.clone()).collect()
}

fn id_of(message: &ChatMessage) -> MessageId {
    MessageId::parse(&message.id).expect("a message id")
}

async fn send(store: &dyn ChatStore, room: &str, text: &str) -> MessageId {
    id_of(&store.append(msg(room, "u", text, None)).await.unwrap().0)
}

async fn unread(store: &dyn ChatStore, room: &str, user: &str) -> u64 {
    store.unread(room, user).await.unwrap().unread
}

/// What the Redis-only store test asserted before, now for both stores.
async fn orders_pages_dedupes_and_reads(store: &dyn ChatStore, _: Kind) {
    let mut ids = Vec::new();
    for i in 0..25 {
        let (m, new) = store
            .append(msg("room-1", "alice", &format!("m{i}"), None))
            .await
            .unwrap();
        assert!(new);
        ids.push(id_of(&m));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids strictly increase");

    let newest = store.history("room-1", None, 10).await.unwrap();
    assert_eq!(
        texts(&newest),
        (15..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    let older = store
        .history("room-1", Some(&id_of(&newest[0])), 10)
        .await
        .unwrap();
    assert_eq!(
        texts(&older),
        (5..15).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!(older[0].sender_id, "alice");
    assert_eq!(older[0].ts, id_of(&older[0]).ms);
    let oldest = store
        .history("room-1", Some(&id_of(&older[0])), 10)
        .await
        .unwrap();
    assert_eq!(
        texts(&oldest),
        (0..5).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert!(
        store
            .history("room-1", Some(&id_of(&oldest[0])), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing before the first message"
    );

    let (first, new) = store
        .append(msg("room-1", "bob", "dup", Some("c-1")))
        .await
        .unwrap();
    assert!(new);
    let (again, new) = store
        .append(msg("room-1", "bob", "dup (retry)", Some("c-1")))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again, first, "the first stored message comes back");
    assert!(
        store
            .append(msg("room-1", "carol", "dup", Some("c-1")))
            .await
            .unwrap()
            .1,
        "per sender"
    );

    assert_eq!(store.last_read("room-1", "dave").await.unwrap(), None);
    assert_eq!(
        store.unread("room-1", "dave").await.unwrap(),
        ReadState {
            last_read: None,
            unread: 27
        }
    );
    assert_eq!(
        store.mark_read("room-1", "dave", &ids[20]).await.unwrap(),
        ids[20]
    );
    assert_eq!(
        store.mark_read("room-1", "dave", &ids[3]).await.unwrap(),
        ids[20],
        "forward only"
    );
    assert_eq!(store.last_read("room-1", "dave").await.unwrap(), Some(ids[20]));
    assert_eq!(
        store.unread("room-1", "dave").await.unwrap(),
        ReadState {
            last_read: Some(ids[20]),
            unread: 6
        }
    );
    assert!(store.history("empty-room", None, 10).await.unwrap().is_empty());
    assert_eq!(unread(store, "empty-room", "dave").await, 0);
    assert_eq!(
        store.message("room-1", &ids[7]).await.unwrap().unwrap().message,
        "m7"
    );
}

async fn dedupes_per_sender_without_key_collisions(store: &dyn ChatStore, _: Kind) {
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
    assert!(
        store
            .append(msg("other", "alice", "hi", Some("c1")))
            .await
            .unwrap()
            .1,
        "per room"
    );
    // Sender `a\0b` sending `c` is not sender `a` sending `b\0c`; nor `a:b`/`c` vs `a`/`b:c`.
    for (one, two) in [(("a\0b", "c"), ("a", "b\0c")), (("a:b", "c"), ("a", "b:c"))] {
        let (m1, new1) = store.append(msg("r", one.0, "first", Some(one.1))).await.unwrap();
        let (m2, new2) = store
            .append(msg("r", two.0, "second", Some(two.1)))
            .await
            .unwrap();
        assert!(new1 && new2, "{one:?} / {two:?}");
        assert_ne!(m1.id, m2.id);
        assert_eq!((m2.sender_id.as_str(), m2.message.as_str()), (two.0, "second"));
    }
    assert_eq!(unread(store, "r", "nobody").await, 6);
}

async fn reads_move_forward_only_and_unread_counts_after_them(store: &dyn ChatStore, _: Kind) {
    let a = send(store, "r", "a").await;
    let b = send(store, "r", "b").await;
    send(store, "r", "c").await;
    assert_eq!(store.last_read("r", "v").await.unwrap(), None);
    assert_eq!(store.mark_read("r", "v", &b).await.unwrap(), b);
    assert_eq!(store.mark_read("r", "v", &a).await.unwrap(), b, "never backwards");
    assert_eq!(unread(store, "r", "v").await, 1);
    assert_eq!(unread(store, "r", "w").await, 3);
    let d = send(store, "r", "d").await;
    assert_eq!(unread(store, "r", "v").await, 2);
    assert_eq!(store.mark_read("r", "v", &d).await.unwrap(), d);
    assert_eq!(unread(store, "r", "v").await, 0);
}

async fn refuses_ids_that_are_not_messages_of_the_room(store: &dyn ChatStore, _: Kind) {
    let huge = MessageId::parse("18446744073709551615-18446744073709551615").unwrap();
    let zero = MessageId::parse("0-0").unwrap();
    // An empty room knows no message.
    for id in [&huge, &zero] {
        assert_eq!(
            store.mark_read("r", "eve", id).await.unwrap_err(),
            StoreError::UnknownMessage
        );
        assert_eq!(
            store.history("r", Some(id), 10).await.unwrap_err(),
            StoreError::UnknownMessage
        );
    }
    let first = send(store, "r", "one").await;
    let second = send(store, "r", "two").await;
    next_millisecond().await; // ids are per room in Redis: this one is r's by no chance
    let elsewhere = send(store, "other-room", "x").await;
    let between = MessageId {
        ms: first.ms,
        seq: first.seq + 1,
    };
    let between = if between == second {
        MessageId {
            ms: second.ms,
            seq: second.seq + 1,
        }
    } else {
        between
    };
    for id in [&huge, &elsewhere, &between] {
        let err = store.mark_read("r", "eve", id).await.unwrap_err();
        assert_eq!(err, StoreError::UnknownMessage, "{id}");
        assert_eq!(err.to_string(), "unknown messageId");
        assert_eq!(
            store.history("r", Some(id), 10).await.unwrap_err(),
            StoreError::UnknownMessage,
            "{id}"
        );
        assert_eq!(store.message("r", id).await.unwrap(), None);
        assert_eq!(
            store.edit("r", id, "x").await.unwrap_err(),
            StoreError::UnknownMessage
        );
        assert_eq!(
            store.delete("r", id).await.unwrap_err(),
            StoreError::UnknownMessage
        );
    }
    // Nothing was stored: the user's state is intact and counts work.
    assert_eq!(
        store.unread("r", "eve").await.unwrap(),
        ReadState {
            last_read: None,
            unread: 2
        }
    );
    assert_eq!(store.mark_read("r", "eve", &first).await.unwrap(), first);
    assert_eq!(unread(store, "r", "eve").await, 1);
    // Older than every message kept (it may have been trimmed): an empty page.
    assert!(store.history("r", Some(&zero), 10).await.unwrap().is_empty());
}

async fn keeps_rooms_apart_whatever_their_names(store: &dyn ChatStore, _: Kind) {
    // clientMsgId `c:messages` in room `y` used to take the key of room `y:cmid:7:mallory:c`.
    let (_, new) = store
        .append(msg("y", "mallory", "trap", Some("c:messages")))
        .await
        .unwrap();
    assert!(new);
    let rooms = [
        "y:cmid:7:mallory:c",
        "y:messages",
        "y}:stream",
        "{y}",
        "y:reads",
        "y%3A",
    ];
    for room in rooms {
        let (other, new) = store
            .append(msg(room, "bob", &format!("in {room}"), Some("c:messages")))
            .await
            .unwrap();
        assert!(new, "{room}");
        assert_eq!(other.message, format!("in {room}"));
        store.join(room, "bob").await.unwrap();
        assert_eq!(
            texts(&store.history(room, None, 10).await.unwrap()),
            [format!("in {room}")]
        );
        assert_eq!(unread(store, room, "carol").await, 1, "{room}");
    }
    assert_eq!(texts(&store.history("y", None, 10).await.unwrap()), ["trap"]);
    assert_eq!(store.rooms("bob", 100).await.unwrap().len(), rooms.len());
    assert!(
        store.rooms("y", 100).await.unwrap().is_empty(),
        "users are not rooms"
    );
}

async fn edits_keep_the_place_and_record_edited_at(store: &dyn ChatStore, _: Kind) {
    let a = send(store, "r", "a").await;
    let b = send(store, "r", "b").await;
    let c = send(store, "r", "c").await;
    let before = roomcast_millis();
    let edited = store.edit("r", &b, "b, fixed").await.unwrap();
    assert_eq!(edited.id, b.to_string());
    assert_eq!(edited.message, "b, fixed");
    assert_eq!(edited.sender_id, "u");
    assert!(edited.edited_at.is_some_and(|t| t >= before));
    let history = store.history("r", None, 10).await.unwrap();
    assert_eq!(texts(&history), ["a", "b, fixed", "c"]);
    assert_eq!(history[1], edited);
    let wire = serde_json::to_value(&history[1]).unwrap();
    assert_eq!(wire["editedAt"], json!(edited.edited_at.unwrap()));
    assert_eq!(wire["message"], "b, fixed");
    assert!(
        serde_json::to_value(&history[0])
            .unwrap()
            .get("editedAt")
            .is_none(),
        "unedited messages look as before"
    );
    assert_eq!(store.message("r", &b).await.unwrap(), Some(edited.clone()));
    let again = store.edit("r", &b, "b, fixed twice").await.unwrap();
    assert_eq!(again.message, "b, fixed twice");
    // Paging around it and counts are unchanged.
    assert_eq!(
        texts(&store.history("r", Some(&c), 1).await.unwrap()),
        ["b, fixed twice"]
    );
    store.mark_read("r", "v", &a).await.unwrap();
    assert_eq!(unread(store, "r", "v").await, 2);
}

async fn deletes_leave_a_tombstone_and_consistent_counts(store: &dyn ChatStore, _: Kind) {
    let (first, _) = store
        .append(msg("r", "alice", "secret", Some("k1")))
        .await
        .unwrap();
    let ids = [
        id_of(&first),
        send(store, "r", "2").await,
        send(store, "r", "3").await,
        send(store, "r", "4").await,
        send(store, "r", "5").await,
    ];
    store.mark_read("r", "v", &ids[1]).await.unwrap();
    assert_eq!(unread(store, "r", "v").await, 3);
    let gone = store.delete("r", &ids[3]).await.unwrap();
    assert!(gone.deleted);
    assert_eq!(
        serde_json::to_value(&gone).unwrap(),
        json!({"id": ids[3].to_string(), "roomId": "r", "deleted": true})
    );
    assert_eq!(unread(store, "r", "v").await, 2, "unread counts live messages");
    assert_eq!(unread(store, "r", "w").await, 4);
    let history = store.history("r", None, 10).await.unwrap();
    let wire: Vec<_> = history.iter().map(|m| serde_json::to_value(m).unwrap()).collect();
    assert_eq!(wire.len(), 5, "the tombstone keeps its place");
    assert_eq!(
        wire[3],
        json!({"id": ids[3].to_string(), "roomId": "r", "deleted": true})
    );
    assert_eq!(wire[4]["message"], "5");
    assert_eq!(
        store.history("r", Some(&ids[4]), 1).await.unwrap(),
        vec![gone.clone()],
        "paging counts the tombstone"
    );
    assert_eq!(store.history("r", Some(&ids[3]), 10).await.unwrap().len(), 3);
    // Deleting again is fine; editing a deleted message is not.
    assert_eq!(store.delete("r", &ids[3]).await.unwrap(), gone);
    assert_eq!(
        store.edit("r", &ids[3], "back").await.unwrap_err(),
        StoreError::Deleted
    );
    assert_eq!(store.message("r", &ids[3]).await.unwrap(), Some(gone.clone()));
    // A deleted message can be read past; reading it moves lastRead.
    assert_eq!(store.mark_read("r", "v", &ids[3]).await.unwrap(), ids[3]);
    assert_eq!(unread(store, "r", "v").await, 1);
    // A retry of a deleted message's clientMsgId does not bring it back.
    store.delete("r", &ids[0]).await.unwrap();
    let (retry, new) = store
        .append(msg("r", "alice", "secret (retry)", Some("k1")))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(retry.id, ids[0].to_string());
    assert!(retry.deleted);
    assert_eq!(
        serde_json::to_value(&retry).unwrap().get("message"),
        None,
        "a deleted text is gone"
    );
    assert_eq!(unread(store, "r", "w").await, 3);
}

fn roomcast_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Lets the millisecond clock move on, so activity times differ.
async fn next_millisecond() {
    let now = roomcast_millis();
    let deadline = Instant::now() + Duration::from_secs(1);
    while roomcast_millis() <= now {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn inbox_lists_joined_rooms_most_recent_first(store: &dyn ChatStore, _: Kind) {
    assert!(store.rooms("ann", 10).await.unwrap().is_empty());
    for room in ["a", "b", "c"] {
        store.join(room, "ann").await.unwrap();
        next_millisecond().await;
    }
    let b1 = send(store, "b", "b1").await;
    send(store, "b", "b2").await;
    next_millisecond().await;
    let a1 = send(store, "a", "a1").await;
    store.mark_read("b", "ann", &b1).await.unwrap();
    send(store, "not-joined", "x").await;

    let rooms = store.rooms("ann", 10).await.unwrap();
    let order: Vec<_> = rooms.iter().map(|r| r.room_id.as_str()).collect();
    assert_eq!(order, ["a", "b", "c"], "most recent activity first");
    assert_eq!((rooms[0].unread, rooms[0].last_read.as_deref()), (1, None));
    assert_eq!(rooms[0].last_message.as_ref().unwrap().id, a1.to_string());
    assert_eq!(rooms[1].unread, 1);
    assert_eq!(rooms[1].last_read, Some(b1.to_string()));
    assert_eq!(rooms[1].last_message.as_ref().unwrap().message, "b2");
    assert_eq!((rooms[2].unread, &rooms[2].last_message), (0, &None));
    assert_eq!(
        serde_json::to_value(&rooms[2]).unwrap(),
        json!({"roomId": "c", "unread": 0, "lastRead": null, "lastMessage": null})
    );

    let top = store.rooms("ann", 2).await.unwrap();
    assert_eq!(top, rooms[..2].to_vec(), "limit");
    // Joining again is activity too; a deleted last message shows as a tombstone.
    next_millisecond().await;
    store.join("c", "ann").await.unwrap();
    store.delete("a", &a1).await.unwrap();
    let rooms = store.rooms("ann", 10).await.unwrap();
    assert_eq!(rooms[0].room_id, "c");
    assert_eq!(rooms[1].room_id, "a");
    assert!(rooms[1].last_message.as_ref().unwrap().deleted);
    assert_eq!(rooms[1].unread, 0);
    assert!(store.rooms("bob", 10).await.unwrap().is_empty(), "per user");
}

async fn members_are_the_users_who_joined(store: &dyn ChatStore, _: Kind) {
    assert!(store.members("club").await.unwrap().is_empty());
    for user in ["zed", "amy", "amy", "u:{x}"] {
        store.join("club", user).await.unwrap();
    }
    store.join("club:2", "bob").await.unwrap();
    send(store, "club", "hi").await;
    assert_eq!(store.members("club").await.unwrap(), ["amy", "u:{x}", "zed"]);
    assert_eq!(store.members("club:2").await.unwrap(), ["bob"], "per room");
}

async fn trimming_keeps_counts_and_pages_consistent(store: &dyn ChatStore, kind: Kind) {
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(send(store, "r", &i.to_string()).await);
    }
    store.mark_read("r", "early", &ids[2]).await.unwrap();
    store.delete("r", &ids[5]).await.unwrap();
    for i in 10..250 {
        ids.push(send(store, "r", &i.to_string()).await);
    }
    let kept = store.history("r", None, 1000).await.unwrap();
    // Memory trims exactly, Redis by whole stream nodes (`MAXLEN ~`).
    match kind {
        Kind::Memory => assert_eq!(kept.len(), 100),
        Kind::Redis => assert!((100..250).contains(&kept.len()), "{}", kept.len()),
    }
    let n = kept.len();
    assert_eq!(
        texts(&kept),
        (250 - n..250).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert!(
        kept.iter().all(|m| !m.deleted),
        "the tombstone went with its place"
    );
    assert_eq!(unread(store, "r", "nobody").await, n as u64, "all kept messages");
    assert_eq!(
        store.unread("r", "early").await.unwrap(),
        ReadState {
            last_read: Some(ids[2]),
            unread: n as u64
        },
        "a trimmed last read counts only what is kept"
    );
    let trimmed = ids[0];
    assert_eq!(
        store.mark_read("r", "late", &trimmed).await.unwrap_err(),
        StoreError::UnknownMessage
    );
    assert!(store.history("r", Some(&trimmed), 10).await.unwrap().is_empty());
    assert_eq!(store.message("r", &trimmed).await.unwrap(), None);
    let last = ids[249];
    store.mark_read("r", "late", &ids[250 - n]).await.unwrap();
    assert_eq!(unread(store, "r", "late").await, n as u64 - 1);
    store.mark_read("r", "late", &last).await.unwrap();
    assert_eq!(unread(store, "r", "late").await, 0);
}

// ---- memory only: bounded in rooms and bytes ----

#[tokio::test]
async fn memory_store_evicts_the_least_recently_used_room() {
    let store = MemoryStore::new(
        MemoryLimits {
            max_rooms: 3,
            ..MemoryLimits::default()
        },
        MemoryMetrics::default(),
    );
    for room in ["r1", "r2", "r3"] {
        send(&store, room, room).await;
    }
    store.history("r1", None, 10).await.unwrap(); // r1 is used again: r2 is now the oldest
    send(&store, "r4", "r4").await;
    assert_eq!(store.usage().0, 3);
    assert!(
        store.history("r2", None, 10).await.unwrap().is_empty(),
        "r2 evicted"
    );
    for room in ["r1", "r3", "r4"] {
        assert_eq!(texts(&store.history(room, None, 10).await.unwrap()), [room]);
    }
}

#[tokio::test]
async fn memory_store_is_bounded_in_bytes() {
    let max_bytes = 1 << 20;
    let store = MemoryStore::new(
        MemoryLimits {
            max_bytes,
            ..MemoryLimits::default()
        },
        MemoryMetrics::default(),
    );
    let big = "x".repeat(16 * 1024);
    // 20 rooms × 10 messages × 16 KB = 3.2 MB offered.
    for room in 0..20 {
        for i in 0..10 {
            store
                .append(msg(&format!("room-{room}"), "u", &format!("{i}{big}"), None))
                .await
                .unwrap();
            assert!(store.usage().1 <= max_bytes, "within the bound at every step");
        }
    }
    let (rooms, bytes) = store.usage();
    assert!(
        rooms < 20 && bytes > max_bytes / 2,
        "{rooms} rooms, {bytes} bytes"
    );
    assert_eq!(store.history("room-19", None, 100).await.unwrap().len(), 10);
    assert!(store.history("room-0", None, 100).await.unwrap().is_empty());
    // One room alone over the bound is trimmed instead, newest kept.
    for i in 0..100 {
        store
            .append(msg("huge", "u", &format!("{i} {big}"), None))
            .await
            .unwrap();
    }
    assert!(store.usage().1 <= max_bytes);
    let kept = store.history("huge", None, 1000).await.unwrap();
    assert!(kept.len() < 64 && kept.len() > 10, "{}", kept.len());
    assert!(kept.last().unwrap().message.starts_with("99 "));
}

/// The bound as an operator sees it: flags, and the metrics that count it.
#[tokio::test]
async fn memory_eviction_is_counted_in_metrics() {
    let app = spawn_app_with(|c| c.chat_memory_max_rooms = 2).await;
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, "roomcast_chat_rooms_evicted_total"), Some(0.0));
    assert_eq!(sample(&metrics, "roomcast_chat_memory_bytes"), Some(0.0));
    let token = app.tokens.mint("42", None, 60);
    for room in ["one", "two", "three"] {
        let response = app
            .http
            .post(app.url(&format!("/api/v1/chat/{room}/messages")))
            .bearer_auth(&token)
            .body(json!({"message": "hi"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, "roomcast_chat_rooms_evicted_total"), Some(1.0));
    assert!(sample(&metrics, "roomcast_chat_memory_bytes").unwrap() > 0.0);
    app.stop().await;
}

// ---- Redis only ----

/// A `chat:join`'s unread count in a room of 5,000 × 16 KB messages, for a
/// user who read only the first: it used to pull the whole stream through a
/// Lua script (430–690 ms, stalling every other Redis user).
#[tokio::test]
async fn redis_unread_count_is_cheap_in_a_big_room() {
    let server = RedisServer::start();
    let store = Arc::new(redis(&server, 10_000).await);
    let body = "y".repeat(16 * 1024);
    let first = send(store.as_ref(), "big", "first").await;
    for chunk in 0..50 {
        let sends = (0..100).map(|i| {
            let store = store.clone();
            let text = format!("{chunk}-{i} {body}");
            async move { store.append(msg("big", "u", &text, None)).await }
        });
        for sent in futures_util::future::join_all(sends).await {
            sent.unwrap();
        }
    }
    store.mark_read("big", "reader", &first).await.unwrap();
    let mut took = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let state = store.unread("big", "reader").await.unwrap();
        took.push(start.elapsed());
        assert_eq!(state.unread, 5000);
    }
    took.sort();
    let median = took[took.len() / 2];
    eprintln!("unread count, 5,000 × 16 KB: median {median:?}, all {took:?}");
    assert!(median < Duration::from_millis(20), "median {median:?}");
}

/// A paused Redis gives errors within the store's timeouts, never a hang,
/// and never Redis's own words; the store works again once Redis is back.
#[tokio::test]
async fn redis_store_errors_while_redis_is_paused() {
    let server = RedisServer::start();
    let store = redis(&server, 100).await;
    let id = send(&store, "r", "before").await;
    server.pause();
    let start = Instant::now();
    let (sent, counted, read) = tokio::time::timeout(Duration::from_secs(20), async {
        (
            store.append(msg("r", "u", "during", None)).await,
            store.unread("r", "u").await,
            store.mark_read("r", "u", &id).await,
        )
    })
    .await
    .expect("errors, not a hang");
    server.resume();
    eprintln!(
        "three calls against a paused Redis failed in {:?}",
        start.elapsed()
    );
    for err in [sent.map(|_| ()), counted.map(|_| ()), read.map(|_| ())] {
        let err = err.unwrap_err();
        assert_eq!(err.to_string(), "chat store unavailable");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(state) = store.unread("r", "u").await {
            assert!(state.unread >= 1);
            break;
        }
        assert!(Instant::now() < deadline, "the store comes back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Through a real client: `chat:read` of an id that is no message of the
/// room is refused with a clear error, and `chat:join` keeps working (it
/// used to break for good in Redis mode, echoing "invalid start ID" and the
/// Lua script's hash).
#[tokio::test]
async fn chat_read_of_a_foreign_id_is_refused_and_join_keeps_working() {
    let server = RedisServer::start();
    let app = spawn_app_with(|c| {
        c.redis_url = Some(roomcast::config::Secret::new(server.url()));
    })
    .await;
    let token = app.tokens.mint("mallory", None, 60);
    let mut socket = app.socket(Some(json!({"token": token}))).await;
    assert_eq!(
        socket.ask("chat:join", json!({"roomId": "desk"})).await["ok"],
        true
    );
    let sent = socket
        .ask("chat:send", json!({"roomId": "desk", "message": "hi"}))
        .await;
    let id = sent["id"].as_str().unwrap().to_owned();
    for bad in ["18446744073709551615-18446744073709551615", "1-0"] {
        let ack = socket
            .ask("chat:read", json!({"roomId": "desk", "messageId": bad}))
            .await;
        assert_eq!(ack, json!({"error": "unknown messageId"}), "{bad}");
        let ack = socket
            .ask("chat:history", json!({"roomId": "desk", "before": bad}))
            .await;
        if bad == "1-0" {
            assert_eq!(ack["messages"], json!([]), "older than everything: an empty page");
        } else {
            assert_eq!(ack, json!({"error": "unknown messageId"}));
        }
    }
    let join = socket.ask("chat:join", json!({"roomId": "desk"})).await;
    assert_eq!(join["ok"], true, "{join}");
    assert_eq!(join["lastRead"], json!(id));
    assert_eq!(join["unread"], 0);
    app.stop().await;
}
