//! /healthz, /readyz, /metrics and the console page.

use serde_json::json;

use crate::helpers::{RawSocket, sample, spawn_app};

#[tokio::test]
async fn health_and_readiness_are_200_while_serving() {
    let app = spawn_app().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    let console = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(console.status(), 200);
    assert!(console.text().await.unwrap().contains("roomcast"));
    app.stop().await;
}

#[tokio::test]
async fn metrics_report_what_happened() {
    let app = spawn_app().await;
    let mut socket = app.socket(None).await;
    socket.ask("subscribe:price", json!("BTC")).await;
    socket.ask("made:up", json!(1)).await;
    app.publish(
        "prices",
        json!([{"symbol": "BTC", "price": 1}, {"symbol": "ETH", "price": 2}]),
    )
    .await;
    socket.next("price:batch").await;
    let refused = RawSocket::connect(app.addr, Some(json!({"token": "forged"}))).await;
    assert_eq!(refused.err().as_deref(), Some("Authentication failed"));
    let metrics = app.metrics().await;
    let expect = [
        (r#"roomcast_connections{transport="websocket"}"#, 1.0),
        (r#"roomcast_connections{transport="polling"}"#, 0.0),
        (r#"roomcast_events_received_total{event="subscribe:price"}"#, 1.0),
        (r#"roomcast_events_received_total{event="unknown"}"#, 1.0),
        (r#"roomcast_emits_total{event="price:update"}"#, 2.0),
        (r#"roomcast_emits_total{event="price:batch"}"#, 1.0),
        (
            r#"roomcast_publish_requests_total{endpoint="prices",status="202"}"#,
            1.0,
        ),
        ("roomcast_publish_to_emit_seconds_count", 2.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&metrics, series), Some(value), "{series}\n{metrics}");
    }
    // Every batch slice that flushed since the publish saw both symbols change.
    let flushes = sample(&metrics, "roomcast_batch_symbols_count").unwrap();
    assert!(flushes >= 1.0, "{metrics}");
    assert_eq!(
        sample(&metrics, "roomcast_batch_symbols_sum"),
        Some(2.0 * flushes)
    );
    assert_eq!(sample(&metrics, "roomcast_auth_failures_total"), Some(1.0));
    assert!(sample(&metrics, "roomcast_process_resident_memory_bytes").unwrap() > 1e6);
    assert!(sample(&metrics, "roomcast_rooms").unwrap() >= 1.0);
    app.stop().await;
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> Option<String> {
    let response = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            app.url("/socket.io/?EIO=4&transport=polling"),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.cors_origin = "https://app.example,https://admin.example".parse().unwrap()
    })
    .await;
    assert_eq!(
        preflight(&app, "https://app.example").await.as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        preflight(&app, "https://admin.example").await.as_deref(),
        Some("https://admin.example")
    );
    assert_eq!(preflight(&app, "https://evil.example").await, None);
    app.stop().await;

    // `*` answers any origin with `*`, without credentials (CONTRACT §7).
    let open = spawn_app().await;
    assert_eq!(
        preflight(&open, "https://anything.example").await.as_deref(),
        Some("*")
    );
    open.stop().await;
}
