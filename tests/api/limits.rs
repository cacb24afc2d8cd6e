//! Every client is bounded: in CPU (a huge event is refused cheaply and does
//! not hold up others), per user across reconnects and REST, and in how long
//! an incomplete binary packet may hold memory.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{JWT_SECRET, spawn_app, spawn_app_with};

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
    let token = app.tokens.signer().mint("alice", None, 600);
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
    let token = app.tokens.signer().mint("bob", None, 600);
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
    assert!(
        metrics.contains("roomcast_events_received_total{event=\"chat:send\""),
        "REST sends are counted"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_binary_packet_that_never_completes_is_dropped_with_its_connection() {
    let app = spawn_app_with(|c| c.binary_packet_timeout_s = 1).await;
    let mut client = app.socket(None).await;
    // A binary event announcing one attachment that never comes.
    client
        .send_raw(r#"451-["upload",{"_placeholder":true,"num":0}]"#)
        .await;
    assert!(
        client.closed_within(Duration::from_secs(4)).await,
        "the half-sent packet is dropped and the connection closed"
    );
    let mut too_many = app.socket(None).await;
    let placeholders: Vec<String> = (0..17)
        .map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#))
        .collect();
    too_many
        .send_raw(&format!(r#"4517-["upload",{}]"#, placeholders.join(",")))
        .await;
    assert!(
        too_many.closed_within(Duration::from_secs(2)).await,
        "more attachments than --max-binary-attachments close the connection"
    );
    let _ = JWT_SECRET;
    app.stop().await;
}
