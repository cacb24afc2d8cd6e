//! Every status of the publish API, and that a refused body emits nothing.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{PUBLISH_KEY, sample, spawn_app, spawn_app_with};

#[tokio::test]
async fn accepted_publishes_answer_202_with_the_item_count() {
    let app = spawn_app().await;
    assert_eq!(
        app.publish("prices", json!({"symbol": "BTC", "price": 1})).await,
        (202, json!({"accepted": 1}))
    );
    let prices = json!([{"symbol": "A", "price": 1}, {"symbol": "B", "price": 2, "ts": 5}]);
    assert_eq!(app.publish("prices", prices).await, (202, json!({"accepted": 2})));
    let trades = json!([{"symbol": "A", "qty": 1}, {"symbol": "A", "qty": 2}, {"symbol": "B"}]);
    assert_eq!(app.publish("trades", trades).await, (202, json!({"accepted": 3})));
    let emit = json!({"rooms": ["user:1", "user:2"], "event": "notification", "data": {"x": 1}});
    assert_eq!(app.publish("emit", emit).await, (202, json!({"accepted": 1})));
    app.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_key_is_401_and_emits_nothing() {
    let app = spawn_app().await;
    let mut socket = app.socket(None).await;
    socket.ask("subscribe:price", json!("BTC")).await;
    let body = json!({"symbol": "BTC", "price": 1}).to_string();
    for key in [None, Some("wrong"), Some(""), Some(&PUBLISH_KEY[..5])] {
        let (status, reply) = app.post_raw("prices", body.clone(), key).await;
        assert_eq!(status, 401, "{key:?}");
        assert!(reply["error"].is_string());
    }
    let (status, _) = app.post_raw("emit", "{}", Some("Basic abc")).await;
    assert_eq!(status, 401);
    assert!(!socket.receives("price:update", Duration::from_millis(300)).await);
    let metrics = app.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            r#"roomcast_publish_requests_total{endpoint="prices",status="401"}"#
        ),
        Some(4.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn invalid_bodies_are_400_with_an_error_and_nothing_is_emitted() {
    let app = spawn_app().await;
    let mut socket = app.socket(None).await;
    socket.ask("subscribe:price", json!(["BTC", "ETH"])).await;
    socket.ask("subscribe:trades", json!("BTC")).await;
    let cases = [
        ("prices", "{\"symbol\":\"BTC\",\"price\":", "malformed JSON"),
        ("prices", "", "empty body"),
        (
            "prices",
            r#"[{"symbol":"BTC","price":1},{"symbol":"ETH","price":"2"}]"#,
            "item 1",
        ),
        ("prices", r#"{"symbol":"B T C","price":1}"#, "invalid symbol"),
        ("prices", r#"[]"#, "empty array"),
        (
            "trades",
            r#"[{"symbol":"BTC"},{"qty":1}]"#,
            "missing field `symbol`",
        ),
        ("trades", r#"42"#, "expected a JSON object"),
        ("emit", r#"{"room":"user:1"}"#, "missing field `event`"),
        ("emit", r#"{"room":"user:1","event":"connect"}"#, "reserved"),
    ];
    for (route, body, needle) in cases {
        let (status, reply) = app.post_raw(route, body, Some(PUBLISH_KEY)).await;
        assert_eq!(status, 400, "{route} {body}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{route} {body}: {error}");
    }
    assert!(
        !socket.receives("price:update", Duration::from_millis(300)).await,
        "no partial publish"
    );
    assert!(!socket.receives("trade:new", Duration::from_millis(50)).await);
    assert!(
        !socket.receives("price:batch", Duration::from_millis(200)).await,
        "nothing reached the batcher"
    );
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_max_body_are_413() {
    let app = spawn_app_with(|c| c.max_body = 1024).await;
    let big = json!({"symbol": "BTC", "price": 1, "pad": "x".repeat(2000)}).to_string();
    let (status, reply) = app.post_raw("prices", big, Some(PUBLISH_KEY)).await;
    assert_eq!(status, 413);
    assert!(reply["error"].as_str().unwrap().contains("1024"));
    let small = json!({"symbol": "BTC", "price": 1}).to_string();
    assert_eq!(app.post_raw("prices", small, Some(PUBLISH_KEY)).await.0, 202);
    app.stop().await;
}

#[tokio::test]
async fn emit_reaches_every_named_room() {
    let app = spawn_app().await;
    let token = |sub: &str| app.tokens.mint(sub, None, 60);
    let mut alice = app.socket(Some(json!({"token": token("alice")}))).await;
    let mut bob = app.socket(Some(json!({"token": token("bob")}))).await;
    let mut carol = app.socket(Some(json!({"token": token("carol")}))).await;
    let emit = json!({"rooms": ["user:alice", "user:bob"], "event": "notification", "data": {"n": 1}});
    assert_eq!(app.publish("emit", emit).await.0, 202);
    assert_eq!(alice.next("notification").await, json!({"n": 1}));
    assert_eq!(bob.next("notification").await, json!({"n": 1}));
    assert!(!carol.receives("notification", Duration::from_millis(300)).await);
    app.stop().await;
}
