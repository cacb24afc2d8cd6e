//! Socket behaviour seen through the raw protocol: auth at the handshake and
//! a price:batch fan-out to many sockets at once.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{JWT_SECRET, RawSocket, spawn_app, spawn_app_with};

#[tokio::test]
async fn handshake_tokens_are_checked() {
    let app = spawn_app().await;
    let other = roomcast::auth::token::TokenSigner::hs256(b"not-the-secret");
    let err = RawSocket::connect(app.addr, Some(json!({"token": other.mint("1", None, 60)})))
        .await
        .err();
    assert_eq!(err.as_deref(), Some("Authentication failed"));
    assert_ne!(JWT_SECRET, "not-the-secret");
    let mut admin = app
        .socket(Some(json!({"token": app.tokens.mint("ops", Some("admin"), 60)})))
        .await;
    let emit = json!({"room": "admin", "event": "notice", "data": "hi"});
    app.publish("emit", emit).await;
    assert_eq!(admin.next("notice").await, json!("hi"));
    admin.emit("subscribe:price", json!({"not": "a symbol"})).await;
    let error = admin.next("error").await;
    assert_eq!(error["event"], "subscribe:price");
    assert!(error["message"].as_str().unwrap().contains("expected a symbol"));
    app.stop().await;
}

/// 500 sockets in 25 distinct subscription sets all get their own batch.
#[tokio::test]
async fn one_window_reaches_every_subscribed_socket_with_its_own_symbols() {
    let app = spawn_app_with(|c| c.rate_limit = "*=1000/s".parse().unwrap()).await;
    let mut sockets = Vec::new();
    for i in 0..500 {
        let mut socket = app.socket(None).await;
        let symbols = json!([format!("S{}", i % 25), "COMMON"]);
        assert_eq!(socket.ask("subscribe:price", symbols).await["ok"], true);
        sockets.push(socket);
    }
    let prices: Vec<_> = (0..25)
        .map(|i| json!({"symbol": format!("S{i}"), "price": i}))
        .collect();
    let mut body = prices;
    body.push(json!({"symbol": "COMMON", "price": 100}));
    let started = Instant::now();
    assert_eq!(app.publish("prices", json!(body)).await.0, 202);
    for (i, socket) in sockets.iter_mut().enumerate() {
        let batch = socket.next("price:batch").await;
        let mut got: Vec<(String, f64)> = serde_json::from_value(batch).unwrap();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                ("COMMON".into(), 100.0),
                (format!("S{}", i % 25), (i % 25) as f64)
            ]
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    app.stop().await;
}

/// An event sent the moment the connection is confirmed is handled, never
/// dropped (handlers are registered before the server confirms the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_right_behind_the_connect_packet_is_answered() {
    let app = spawn_app().await;
    for _ in 0..300 {
        let ack = RawSocket::connect_and_ping_at_once(app.addr).await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    app.stop().await;
}

/// A client that stops reading loses packets once its bounded queue is full;
/// the drops are counted and nobody else is held up.
#[tokio::test]
async fn a_client_that_cannot_keep_up_is_dropped_from_not_waited_for() {
    let app = spawn_app_with(|c| {
        c.rate_limit = "*=1000/s".parse().unwrap();
        c.max_body = 4 << 20;
    })
    .await;
    let mut slow = app.socket(None).await;
    slow.ask("subscribe:price", json!("FLOOD")).await;
    let mut reader = app.socket(None).await;
    reader.ask("subscribe:price", json!("CALM")).await;
    // 3,000 packets of 10 KB: more than loopback buffers plus its 1,024-packet queue hold.
    let emit = json!({"room": "price:FLOOD", "event": "bulk", "data": "x".repeat(10_000)});
    let hundred = json!(vec![emit; 100]);
    for _ in 0..30 {
        assert_eq!(app.publish("emit", hundred.clone()).await.0, 202);
    }
    let metrics = app.metrics().await;
    let dropped = crate::helpers::sample(&metrics, r#"roomcast_dropped_packets_total{event="custom"}"#);
    assert!(dropped.unwrap_or(0.0) > 0.0, "drops are counted: {dropped:?}");
    app.publish("prices", json!({"symbol": "CALM", "price": 7})).await;
    assert_eq!(reader.next("price:update").await["price"], 7.0);
    drop(slow);
    app.stop().await;
}

/// A client that stops reading loses no chat message: what does not fit its
/// queue waits, and arrives in order once it reads again.
#[tokio::test]
async fn chat_messages_wait_for_a_client_that_cannot_keep_up() {
    let app = spawn_app_with(|c| {
        c.rate_limit = "chat:send=100000/s,*=100000/s".parse().unwrap();
        c.user_rate_limit = "chat:send=100000/s,*=100000/s".parse().unwrap();
        c.socket_max_queued_bytes = 64 << 20;
    })
    .await;
    let user = |id: &str| Some(json!({"token": app.tokens.mint(id, None, 600)}));
    let mut slow = app.socket(user("slow")).await;
    let mut sender = app.socket(user("sender")).await;
    for socket in [&mut slow, &mut sender] {
        assert_eq!(
            socket.ask("chat:join", json!({"roomId": "flood"})).await["ok"],
            true
        );
    }
    // 6,000 messages of ~4 KB: more than loopback buffers plus a 1,024-packet queue hold.
    const COUNT: usize = 6_000;
    let text = "x".repeat(3_900);
    for i in 0..COUNT {
        let message = format!("{i} {text}");
        sender
            .emit("chat:send", json!({"roomId": "flood", "message": message}))
            .await;
    }
    for i in 0..COUNT {
        let got = slow.next("chat:message").await;
        let number = got["message"]
            .as_str()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(number, i.to_string(), "in order, none missing");
    }
    let metrics = app.metrics().await;
    let dropped = crate::helpers::sample(
        &metrics,
        r#"roomcast_dropped_packets_total{event="chat:message"}"#,
    );
    assert_eq!(dropped.unwrap_or(0.0), 0.0, "no chat packet dropped");
    app.stop().await;
}

/// A Socket.IO chat member that stops reading does not hold the server's
/// memory: past `--socket-max-queued-bytes` it loses its transport (no
/// Socket.IO disconnect, so a real client reconnects) and pages what it
/// missed from history.
#[tokio::test]
async fn a_chat_member_that_stops_reading_loses_its_transport_not_the_servers_memory() {
    let app = spawn_app_with(|c| {
        c.rate_limit = "chat:send=100000/s,*=100000/s".parse().unwrap();
        c.user_rate_limit = "chat:send=100000/s,*=100000/s".parse().unwrap();
        c.socket_max_queued_bytes = 256 * 1024;
    })
    .await;
    let user = |id: &str| Some(json!({"token": app.tokens.mint(id, None, 600)}));
    let mut slow = app.socket(user("stalled")).await;
    assert_eq!(
        slow.ask("chat:join", json!({"roomId": "bytes"})).await["ok"],
        true
    );
    // 2,000 messages of ~4,000 characters of 4-byte UTF-8 (~32 MB) over REST:
    // far more than loopback buffers, the socket's packet queue and the byte
    // bound hold.
    let token = app.tokens.mint("flooder", None, 600);
    let text = "😀".repeat(3_990);
    crate::helpers::flood_chat(&app, "bytes", &token, 2_000, &text).await;
    let frames = slow
        .frames_until_closed(Duration::from_secs(20))
        .await
        .expect("the member that stopped reading lost its transport");
    assert!(
        !frames.iter().any(|f| f == "41"),
        "no Socket.IO disconnect: a client reconnects"
    );
    let metrics = app.metrics().await;
    let cut = crate::helpers::sample(
        &metrics,
        r#"roomcast_dropped_packets_total{event="chat:message"}"#,
    );
    assert!(cut.unwrap_or(0.0) >= 1.0, "counted");
    let mut back = app.socket(user("stalled")).await;
    assert_eq!(
        back.ask("chat:join", json!({"roomId": "bytes"})).await["ok"],
        true
    );
    let page = back
        .ask("chat:history", json!({"roomId": "bytes", "limit": 200}))
        .await;
    assert_eq!(
        page["messages"].as_array().unwrap().len(),
        200,
        "what it missed is in history"
    );
    app.stop().await;
}
