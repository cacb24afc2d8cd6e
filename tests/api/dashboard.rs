//! Every metric the shipped Grafana dashboard queries exists in /metrics.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use std::time::Duration;

use crate::helpers::{RedisServer, spawn_app_with, until};

fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/dashboards/roomcast.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("roomcast_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.insert(name);
            }
        }
    }
    names
}

#[tokio::test]
async fn every_dashboard_metric_is_exported() {
    let names = dashboard_metrics();
    assert!(
        names.len() >= 15,
        "the dashboard queries the core metrics: {names:?}"
    );
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = spawn_app_with(|c| c.redis_url = Some(roomcast::config::Secret::new(url))).await;

    // A little of everything, so that every labelled series has appeared.
    let mut socket = app.socket(None).await;
    socket.ask("subscribe:price", json!("BTC")).await;
    app.publish("prices", json!({"symbol": "BTC", "price": 1})).await;
    socket.next("price:batch").await;
    let mut conn = redis.client().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("PUBLISH")
        .arg("roomcast:prices")
        .arg("[]")
        .query_async(&mut conn)
        .await
        .unwrap();
    let metrics = until(
        "the Redis message to be counted",
        Duration::from_secs(5),
        || async {
            let metrics = app.metrics().await;
            metrics
                .contains("roomcast_redis_messages_total")
                .then_some(metrics)
        },
    )
    .await;
    let exported: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = names.iter().filter(|n| !exported.contains(n.as_str())).collect();
    assert!(
        missing.is_empty(),
        "queried by the dashboard but not in /metrics: {missing:?}"
    );
    app.stop().await;
}
