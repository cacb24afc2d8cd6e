//! roomcast-load: N Socket.IO clients over WebSocket subscribe to price rooms
//! while a publisher drives the HTTP publish API; prints a progress line every
//! second and a JSON summary at the end. Bounded: stops after --seconds.
//!
//! Latency is exact to the microsecond: the publisher puts its send time (µs
//! since the epoch) in `price`, and each client subtracts it from its receive
//! time. Publisher and clients must run on the same machine.

mod client;
mod publisher;
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

#[derive(Parser, Clone)]
#[command(about = "Load generator for Socket.IO servers speaking the roomcast contract")]
pub struct Args {
    /// Server base URL; several, comma separated, spread the clients over nodes.
    #[arg(long, default_value = "http://127.0.0.1:3000", value_delimiter = ',')]
    pub url: Vec<String>,
    /// Where the publisher POSTs (default: --url). Point it at another node to measure cross-node delivery.
    #[arg(long)]
    pub publish_url: Option<String>,
    /// Publish API key.
    #[arg(long, env = "ROOMCAST_PUBLISH_KEY")]
    pub key: String,
    /// Connected clients.
    #[arg(long, default_value_t = 500)]
    pub clients: usize,
    /// Distinct symbols (S0..S{n-1}).
    #[arg(long, default_value_t = 20)]
    pub symbols: usize,
    /// Symbols each client subscribes to (client i takes i, i+1, ... mod --symbols).
    #[arg(long, default_value_t = 1)]
    pub per_client: usize,
    /// Prices published per second in total (0: publish nothing, idle clients).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Prices per POST.
    #[arg(long, default_value_t = 1)]
    pub per_request: usize,
    /// Concurrent publisher connections.
    #[arg(long, default_value_t = 2)]
    pub publishers: usize,
    /// Seconds of publishing after all clients are connected.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Server pid, to report its resident memory per connection.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Churn: clients per second that connect, subscribe and leave during the run.
    #[arg(long, default_value_t = 0)]
    pub churn: u32,
    /// Inbound test: each client emits `blob` events of this many bytes, one
    /// at a time (waiting for the ack), for --seconds; 0: off. Reports
    /// messages/s and the server's CPU per message (`--server-pid`).
    #[arg(long, default_value_t = 0)]
    pub emit_bytes: usize,
    /// Connections of the inbound test (opened besides --clients).
    #[arg(long, default_value_t = 10)]
    pub emit_clients: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stats = Arc::new(stats::Stats::new(args.symbols));
    let rss_before = args.server_pid.map(stats::rss_bytes);

    let connect_started = Instant::now();
    let clients = client::connect_all(&args, stats.clone()).await;
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let connected = clients.len();
    eprintln!(
        "connected {connected}/{} clients in {connect_secs:.2}s",
        args.clients
    );
    let rss_connected = args.server_pid.map(stats::rss_bytes);

    let run = Duration::from_secs(args.seconds);
    let cpu_before = stats::own_cpu_seconds();
    let server_cpu_before = args.server_pid.map(stats::cpu_seconds);
    let blobs = (args.emit_bytes > 0).then(|| client::spawn_blobs(&args, run));
    let progress = stats::spawn_progress(stats.clone());
    let churn = (args.churn > 0).then(|| client::spawn_churn(&args, run));
    let published = publisher::run(&args, stats.clone(), run).await;
    // Resident memory while batches flow (before the clients go).
    let rss_flowing = args.server_pid.map(stats::rss_bytes);
    let blobs = match blobs {
        Some(task) => task.await.ok(),
        None => None,
    };
    let server_cpu = args
        .server_pid
        .zip(server_cpu_before)
        .map(|(pid, before)| stats::cpu_seconds(pid) - before);
    let churned = match churn {
        Some(task) => task.await.ok(),
        None => None,
    };
    // Let in-flight deliveries and one more batch window arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    progress.abort();
    let summary = stats.summary();
    let load_cpu_percent = (stats::own_cpu_seconds() - cpu_before) / (run.as_secs_f64() + 0.5) * 100.0;
    if load_cpu_percent > 90.0 {
        eprintln!("warning: the load tool used {load_cpu_percent:.0}% of a core: it may be the bottleneck");
    }
    let disconnects = stats.disconnects.load(std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        client.abort();
    }

    let expected = published.expected_deliveries;
    let received = summary.updates;
    let rss_per_connection = match (rss_before, rss_connected) {
        (Some(before), Some(after)) if connected > 0 => {
            Some((after.saturating_sub(before)) as f64 / connected as f64)
        }
        _ => None,
    };
    let rss_per_connection_flowing = match (rss_before, rss_flowing) {
        (Some(before), Some(after)) if connected > 0 => {
            Some((after.saturating_sub(before)) as f64 / connected as f64)
        }
        _ => None,
    };
    let inbound = blobs.map(|sent| {
        json!({
            "bytes": args.emit_bytes, "messages": sent, "per_sec": sent as f64 / run.as_secs_f64(),
            "server_cpu_seconds": server_cpu,
            "server_cpu_us_per_message": server_cpu.map(|cpu| if sent > 0 { cpu * 1e6 / sent as f64 } else { 0.0 }),
        })
    });
    let report = json!({
        "clients": { "requested": args.clients, "connected": connected, "failed": args.clients - connected, "connect_secs": connect_secs },
        "publish": {
            "target_rate": args.rate, "prices": published.prices, "requests": published.requests,
            "failed_requests": published.failed_requests, "achieved_rate": published.prices as f64 / run.as_secs_f64(),
            "saturated": published.saturated,
        },
        "price_update": {
            "expected": expected, "received": received,
            "loss": expected.saturating_sub(received), "loss_ratio": if expected > 0 { (expected.saturating_sub(received)) as f64 / expected as f64 } else { 0.0 },
            "per_sec": received as f64 / run.as_secs_f64(),
            "latency_ms": summary.latency_ms,
        },
        "connections": { "dropped_during_run": disconnects },
        "load_tool": { "cpu_percent_of_one_core": load_cpu_percent, "saturated": load_cpu_percent > 90.0 },
        "churn": churned,
        "price_batch": { "received": summary.batches, "items": summary.batch_items, "per_sec": summary.batches as f64 / run.as_secs_f64() },
        "server_memory": {
            "rss_before_bytes": rss_before, "rss_connected_bytes": rss_connected,
            "rss_end_bytes": args.server_pid.map(stats::rss_bytes), "rss_per_connection_bytes": rss_per_connection,
            "rss_flowing_bytes": rss_flowing, "rss_per_connection_flowing_bytes": rss_per_connection_flowing,
        },
        "inbound": inbound,
        "server_cpu_seconds": server_cpu,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
