//! The Redis chat store against a real redis-server this test starts on a free port.

use roomcast::store::redis::RedisStore;
use roomcast::store::{ChatStore, MessageId, NewMessage};

use crate::helpers::RedisServer;

fn msg(text: &str, sender: &str, cmid: Option<&str>) -> NewMessage {
    NewMessage {
        room_id: "room-1".into(),
        sender_id: sender.into(),
        message: text.into(),
        kind: "TEXT".into(),
        client_msg_id: cmid.map(Into::into),
    }
}

#[tokio::test]
async fn redis_store_keeps_the_chat_contract() {
    let server = RedisServer::start();
    let store = RedisStore::connect(server.client(), 1000).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..25 {
        let (m, new) = store.append(msg(&format!("m{i}"), "alice", None)).await.unwrap();
        assert!(new);
        ids.push(MessageId::parse(&m.id).unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let newest = store.history("room-1", None, 10).await.unwrap();
    let texts =
        |ms: &[roomcast::store::ChatMessage]| ms.iter().map(|m| m.message.clone()).collect::<Vec<_>>();
    assert_eq!(
        texts(&newest),
        (15..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    let before = MessageId::parse(&newest[0].id).unwrap();
    let older = store.history("room-1", Some(&before), 10).await.unwrap();
    assert_eq!(
        texts(&older),
        (5..15).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!(older[0].sender_id, "alice");
    assert_eq!(older[0].ts, MessageId::parse(&older[0].id).unwrap().ms);

    let (first, new) = store.append(msg("dup", "bob", Some("c-1"))).await.unwrap();
    assert!(new);
    let (again, new) = store
        .append(msg("dup (retry)", "bob", Some("c-1")))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again, first, "the first stored message comes back");
    assert!(
        store.append(msg("dup", "carol", Some("c-1"))).await.unwrap().1,
        "per sender"
    );

    assert_eq!(store.last_read("room-1", "dave").await.unwrap(), None);
    assert_eq!(store.count_after("room-1", None).await.unwrap(), 27);
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
    assert_eq!(store.count_after("room-1", Some(&ids[20])).await.unwrap(), 6);
    assert!(store.history("empty-room", None, 10).await.unwrap().is_empty());
    assert_eq!(store.count_after("empty-room", None).await.unwrap(), 0);
}
