//! One load client: Socket.IO v4 over a raw WebSocket, minimal parsing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

use crate::Args;
use crate::stats::Stats;

/// Connects and subscribes every client; returns the reader tasks of those that made it.
pub async fn connect_all(args: &Args, stats: Arc<Stats>) -> Vec<JoinHandle<()>> {
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let ws_urls: Vec<String> = args.url.iter().map(|u| ws_url(u)).collect();
    let mut pending = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let symbols: Vec<usize> = (0..args.per_client.min(args.symbols))
            .map(|j| (i + j) % args.symbols)
            .collect();
        let (gate, url, stats) = (gate.clone(), ws_urls[i % ws_urls.len()].clone(), stats.clone());
        pending.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            tokio::time::timeout(Duration::from_secs(20), connect_one(&url, &symbols, stats))
                .await
                .ok()?
                .ok()
        }));
    }
    let mut clients = Vec::new();
    for task in pending {
        if let Ok(Some(client)) = task.await {
            clients.push(client);
        }
    }
    clients
}

/// tungstenite zero-fills its whole read buffer before every read; at the
/// default 128 KiB that memset was a third of this tool's CPU. Frames here are
/// small, so 8 KiB keeps reads cheap without splitting them.
const READ_BUFFER: usize = 8 * 1024;

async fn connect(url: &str) -> anyhow::Result<WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>> {
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) = connect_async_with_config(url, Some(config), true).await?;
    Ok(ws)
}

fn ws_url(base: &str) -> String {
    format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http", "ws", 1)
    )
}

/// Churn: every second, `--churn` clients connect, subscribe, receive for a
/// moment and leave. Returns connects done, failed, and connect→ack latency.
pub fn spawn_churn(args: &Args, run: Duration) -> JoinHandle<serde_json::Value> {
    let urls: Vec<String> = args.url.iter().map(|u| ws_url(u)).collect();
    let (per_sec, symbols) = (args.churn, args.symbols);
    tokio::spawn(async move {
        let deadline = std::time::Instant::now() + run;
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_sec.max(1));
        let mut tasks = Vec::new();
        let mut i = 0usize;
        while std::time::Instant::now() < deadline {
            ticker.tick().await;
            let url = urls[i % urls.len()].clone();
            let symbol = i % symbols;
            i += 1;
            tasks.push(tokio::spawn(async move {
                let started = std::time::Instant::now();
                let mut ws = connect(&url).await.ok()?;
                expect(&mut ws, "0").await.ok()?;
                ws.send(Message::text("40")).await.ok()?;
                expect(&mut ws, "40").await.ok()?;
                let list = format!("420[\"subscribe:price\",[\"S{symbol}\"]]");
                ws.send(Message::text(list)).await.ok()?;
                expect(&mut ws, "430").await.ok()?;
                let took = started.elapsed();
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = ws.close(None).await;
                Some(took)
            }));
        }
        let (mut ok, mut failed, mut times) = (0u64, 0u64, Vec::new());
        for task in tasks {
            match task.await {
                Ok(Some(took)) => {
                    ok += 1;
                    times.push(took.as_secs_f64() * 1000.0);
                }
                _ => failed += 1,
            }
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let pct = |q: f64| {
            times
                .get(((times.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or(0.0)
        };
        serde_json::json!({
            "per_sec_target": per_sec, "completed": ok, "failed": failed,
            "completed_per_sec": ok as f64 / run.as_secs_f64(),
            "connect_to_subscribed_ms": { "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0) },
        })
    })
}

/// The inbound test: `--emit-clients` more connections each emit a `blob` of
/// `--emit-bytes` bytes and wait for its ack, again and again, until `run` is
/// over. Returns how many were acknowledged.
pub fn spawn_blobs(args: &Args, run: Duration) -> JoinHandle<u64> {
    let url = ws_url(&args.url[0]);
    let (clients, bytes) = (args.emit_clients.max(1), args.emit_bytes);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + run;
        let blob = format!("42[\"blob\",\"{}\"]", "x".repeat(bytes));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (url, blob) = (url.clone(), blob.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = 0u64;
                let Ok(mut ws) = connect(&url).await else { return 0 };
                if expect(&mut ws, "0").await.is_err() || ws.send(Message::text("40")).await.is_err() {
                    return 0;
                }
                if expect(&mut ws, "40").await.is_err() {
                    return 0;
                }
                for id in 0u64.. {
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    let frame = blob.replacen("42", &format!("42{id}"), 1);
                    let ack = tokio::time::timeout_at(deadline, async {
                        ws.send(Message::text(frame)).await.ok()?;
                        expect(&mut ws, &format!("43{id}")).await.ok()
                    });
                    match ack.await {
                        Ok(Some(())) => acked += 1,
                        _ => break,
                    }
                }
                acked
            }));
        }
        let mut acked = 0;
        for task in tasks {
            acked += task.await.unwrap_or(0);
        }
        acked
    })
}

async fn connect_one(url: &str, symbols: &[usize], stats: Arc<Stats>) -> anyhow::Result<JoinHandle<()>> {
    let mut ws = connect(url).await?;
    expect(&mut ws, "0").await?;
    ws.send(Message::text("40")).await?;
    expect(&mut ws, "40").await?;
    let list: Vec<String> = symbols.iter().map(|s| format!("\"S{s}\"")).collect();
    ws.send(Message::text(format!(
        "420[\"subscribe:price\",[{}]]",
        list.join(",")
    )))
    .await?;
    expect(&mut ws, "430").await?;
    for s in symbols {
        stats.subscribers[*s].fetch_add(1, Ordering::Relaxed);
    }
    Ok(tokio::spawn(read_loop(ws, stats)))
}

/// Reads until a text frame starting with `prefix`, answering pings meanwhile
/// (engine.io servers may ping right after the open packet).
async fn expect<S>(ws: &mut S, prefix: &str) -> anyhow::Result<()>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + SinkExt<Message> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                let _ = ws.send(Message::text("3")).await;
            }
            Some(Ok(Message::Text(t))) if t.starts_with(prefix) => return Ok(()),
            Some(Ok(_)) => continue,
            _ => anyhow::bail!("closed before {prefix}"),
        }
    }
}

async fn read_loop<S>(mut ws: S, stats: Arc<Stats>)
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + SinkExt<Message> + Unpin,
{
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        let text = text.as_str();
        if text == "2" {
            let _ = ws.send(Message::text("3")).await;
        } else if let Some(rest) = text.strip_prefix("42[\"price:update\",") {
            stats.updates.fetch_add(1, Ordering::Relaxed);
            if let Some(sent_us) = number_after(rest, "\"price\":") {
                stats.record_latency_us(now_us().saturating_sub(sent_us as u64).max(1));
            }
        } else if let Some(rest) = text.strip_prefix("42[\"price:batch\",") {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .batch_items
                .fetch_add(rest.matches("],[").count() as u64 + 1, Ordering::Relaxed);
        }
    }
}

/// Reads the JSON number following `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<f64> {
    let start = text.find(key)? + key.len();
    let rest = &text[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
