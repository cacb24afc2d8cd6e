//! What presence costs in a 10,000-member room (figures quoted in the
//! README): a join (count in, the shared script, the `online` list) and a
//! presence change (the last connection out), with a real redis-server and
//! with the memory backend; plus one node's heartbeat for 10,000 users.
//! Run with `--nocapture` to see the figures.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use roomcast::presence::{Presence, SharedPresence};

use crate::helpers::RedisServer;

const MEMBERS: usize = 10_000;
const SAMPLES: usize = 100;

async fn fill(presence: &Presence, room: &str) {
    for chunk in (0..MEMBERS).collect::<Vec<_>>().chunks(500) {
        join_all(chunk.iter().map(|i| async move {
            let user = format!("member-{i:05}");
            assert!(presence.arrive(room, &user));
            assert!(presence.came_online(room, &user).await);
        }))
        .await;
    }
}

/// (mean join, mean `online` alone, mean presence change), each over SAMPLES.
async fn measure(presence: &Presence, room: &str) -> (Duration, Duration, Duration) {
    fill(presence, room).await;
    assert_eq!(presence.online(room).await.len(), MEMBERS);
    let started = Instant::now();
    for i in 0..SAMPLES {
        let user = format!("joiner-{i:03}");
        if presence.arrive(room, &user) {
            presence.came_online(room, &user).await;
        }
        let online = presence.online(room).await;
        assert_eq!(online.len(), MEMBERS + i + 1);
    }
    let join = started.elapsed() / SAMPLES as u32;
    let started = Instant::now();
    for _ in 0..SAMPLES {
        presence.online(room).await;
    }
    let online = started.elapsed() / SAMPLES as u32;
    let started = Instant::now();
    for i in 0..SAMPLES {
        let user = format!("joiner-{i:03}");
        assert!(presence.depart(room, &user));
        assert!(presence.went_offline(room, &user).await);
    }
    let change = started.elapsed() / SAMPLES as u32;
    (join, online, change)
}

/// Microseconds Redis itself spends on the `online` script (its slow log).
async fn redis_time_of_online(server: &RedisServer, presence: &Presence) -> i64 {
    let mut conn = server.client().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async(&mut conn)
        .await
        .unwrap();
    presence.online("big").await;
    let log: Vec<(i64, i64, i64, Vec<String>)> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg("10")
        .query_async::<Vec<redis::Value>>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|entry| match entry {
            redis::Value::Array(fields) if fields.len() >= 4 => Some((
                redis::from_redis_value(fields[0].clone()).ok()?,
                redis::from_redis_value(fields[1].clone()).ok()?,
                redis::from_redis_value(fields[2].clone()).ok()?,
                redis::from_redis_value(fields[3].clone()).ok()?,
            )),
            _ => None,
        })
        .collect();
    log.iter()
        .filter(|(_, _, _, args)| args.first().is_some_and(|c| c.eq_ignore_ascii_case("evalsha")))
        .map(|(_, _, micros, _)| *micros)
        .max()
        .unwrap_or(-1)
}

#[tokio::test]
async fn presence_in_a_10000_member_room_is_cheap() {
    let server = RedisServer::start();
    let conn = redis::aio::ConnectionManager::new(server.client())
        .await
        .expect("connects");
    let shared = Presence::shared(SharedPresence::new(
        roomcast::Commands::Single(conn),
        "node-a".into(),
        Duration::from_secs(30),
    ));
    let (join, online, change) = measure(&shared, "big").await;
    let started = Instant::now();
    assert!(shared.heartbeat().await.is_empty(), "nothing changed");
    let heartbeat = started.elapsed();
    let redis_side = redis_time_of_online(&server, &shared).await;
    eprintln!(
        "presence, Redis, {MEMBERS} online: join {join:?} (of which online list {online:?}, \
         {redis_side}us of it inside Redis), presence change {change:?}, \
         heartbeat of {MEMBERS} local users {heartbeat:?}"
    );
    let local = Presence::local();
    let (m_join, m_online, m_change) = measure(&local, "big").await;
    eprintln!(
        "presence, memory, {MEMBERS} online: join {m_join:?} (of which online list {m_online:?}), \
         presence change {m_change:?}"
    );
    // Loose bounds (debug build, shared machine): what must not happen is a
    // cost that grows with anything but the room's online users.
    assert!(join < Duration::from_millis(250), "join {join:?}");
    assert!(change < Duration::from_millis(20), "presence change {change:?}");
    assert!(heartbeat < Duration::from_secs(2), "heartbeat {heartbeat:?}");
}
