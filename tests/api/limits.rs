//! Every client is bounded: in CPU (a huge event is refused cheaply and does
//! not hold up others), per user across reconnects and REST, and in how long
//! an incomplete binary packet may hold memory.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{sample, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_hundred_thousand_symbols_are_refused_at_once_and_others_are_not_held_up() {
    let app = spawn_app().await;
    let mut attacker = app.socket(None).await;
    let mut bystander = app.socket(None).await;
    let symbols: Vec<String> = (0..100_000).map(|i| format!("S{i}")).collect();
    let started = Instant::now();
    let ack = attacker.ask("subscribe:price", json!(symbols)).await;
    let refused_after = started.elapsed();
    assert!(
        ack["error"].as_str().unwrap().contains("too many symbols"),
        "{ack}"
    );
    let started = Instant::now();
    let pong = bystander.ask("ping", json!(null)).await;
    assert_eq!(pong["ok"], true);
    println!(
        "100,000 symbols refused after {refused_after:?}; bystander ping answered in {:?}",
        started.elapsed()
    );
    assert!(refused_after < Duration::from_secs(2), "{refused_after:?}");
    app.stop().await;
}

#[tokio::test]
async fn reconnecting_does_not_reset_a_users_rate_limit() {
    let app = spawn_app_with(|c| c.user_rate_limit = "chat:send=6/s".parse().unwrap()).await;
    let token = app.tokens.mint("alice", None, 600);
    let mut accepted = 0;
    let mut refused = 0;
    // Four sockets of one user, each within its own per-socket limit (5/s).
    for _ in 0..4 {
        let mut socket = app.socket(Some(json!({ "token": token }))).await;
        let joined = socket.ask("chat:join", json!({ "roomId": "limits" })).await;
        assert_eq!(joined["ok"], true, "{joined}");
        for i in 0..4 {
            let ack = socket
                .ask(
                    "chat:send",
                    json!({ "roomId": "limits", "message": format!("m{i}") }),
                )
                .await;
            if ack["ok"] == true {
                accepted += 1;
            } else {
                assert_eq!(ack["error"], "Rate limit exceeded", "{ack}");
                refused += 1;
            }
        }
    }
    assert!(
        accepted <= 7,
        "the user's 6/s held across sockets: {accepted} accepted"
    );
    assert!(refused >= 9, "{refused} refused");
    app.stop().await;
}

#[tokio::test]
async fn the_chat_rest_api_is_rate_limited_per_user_with_429() {
    let app = spawn_app_with(|c| c.user_rate_limit = "chat:send=3/s".parse().unwrap()).await;
    let token = app.tokens.mint("bob", None, 600);
    let mut statuses = Vec::new();
    let mut last = json!(null);
    for i in 0..6 {
        let response = app
            .http
            .post(app.url("/api/v1/chat/rest-limits/messages"))
            .bearer_auth(&token)
            .json(&json!({ "message": format!("hello {i}") }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        last = response.json().await.unwrap();
    }
    assert_eq!(&statuses[..3], &[201, 201, 201], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(last["error"], "Rate limit exceeded");
    assert!(last["retryAfterMs"].as_u64().unwrap() > 0, "{last}");
    let metrics = app.metrics().await;
    let counted = sample(&metrics, r#"roomcast_events_received_total{event="chat:send"}"#);
    assert_eq!(counted, Some(6.0), "REST sends are counted");
    app.stop().await;
}

/// A binary event announcing `count` attachments.
fn binary_header(count: usize) -> String {
    let placeholders: Vec<String> = (0..count)
        .map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#))
        .collect();
    format!(r#"45{count}-["upload",{}]"#, placeholders.join(","))
}

#[tokio::test]
async fn incomplete_binary_packets_are_bounded_in_count_bytes_and_time() {
    let app = spawn_app_with(|c| c.binary_packet_timeout_s = 1).await;
    let mut too_many = app.socket(None).await;
    too_many.send_raw(&binary_header(17)).await;
    assert!(
        too_many.closed_within(Duration::from_secs(2)).await,
        "more attachments than --max-binary-attachments (16) close the connection"
    );

    let mut too_big = app.socket(None).await;
    too_big.send_raw(&binary_header(3)).await;
    too_big.send_binary(vec![7; 700_000]).await;
    too_big.send_binary(vec![7; 700_000]).await;
    assert!(
        too_big.closed_within(Duration::from_secs(2)).await,
        "attachments over --max-payload together (1 MiB) close the connection"
    );

    let mut too_slow = app.socket(None).await;
    too_slow.send_raw(&binary_header(2)).await;
    too_slow.send_binary(vec![1; 10]).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await; // past --binary-packet-timeout-s
    too_slow.send_binary(vec![2; 10]).await;
    assert!(
        too_slow.closed_within(Duration::from_secs(2)).await,
        "a packet completed after --binary-packet-timeout-s is dropped with its connection"
    );

    let mut fine = app.socket(None).await;
    assert_eq!(
        fine.ask("ping", json!(null)).await["ok"],
        true,
        "others unaffected"
    );
    app.stop().await;
}
