//! The publisher: POSTs prices at the target rate for the run's duration.
//! `price` carries the send time in µs since the epoch (see main.rs).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::Args;
use crate::client::now_us;
use crate::stats::Stats;

#[derive(Default)]
pub struct Published {
    pub prices: u64,
    pub requests: u64,
    pub failed_requests: u64,
    pub expected_deliveries: u64,
    /// The target rate was not reached (publisher or server could not keep up).
    pub saturated: bool,
}

pub async fn run(args: &Args, stats: Arc<Stats>, run: Duration) -> Published {
    if args.rate <= 0.0 {
        tokio::time::sleep(run).await;
        return Published::default();
    }
    let publishers = args.publishers.max(1);
    let per_request = args.per_request.max(1);
    let requests_per_sec = args.rate / per_request as f64 / publishers as f64;
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let (args, stats) = (args.clone(), stats.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let base = args.publish_url.as_deref().unwrap_or(&args.url[0]);
            let url = format!("{base}/api/v1/prices");
            let mut out = Published::default();
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / requests_per_sec));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let deadline = Instant::now() + run;
            let mut k = p;
            while Instant::now() < deadline {
                ticker.tick().await;
                let mut body = String::with_capacity(48 * per_request + 2);
                body.push('[');
                let mut symbols = Vec::with_capacity(per_request);
                for i in 0..per_request {
                    let symbol = k % args.symbols;
                    k += publishers;
                    symbols.push(symbol);
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&format!("{{\"symbol\":\"S{symbol}\",\"price\":{}}}", now_us()));
                }
                body.push(']');
                out.requests += 1;
                let ok = http
                    .post(&url)
                    .bearer_auth(&args.key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 202);
                if ok {
                    out.prices += per_request as u64;
                    out.expected_deliveries += symbols
                        .iter()
                        .map(|s| stats.subscribers[*s].load(Ordering::Relaxed))
                        .sum::<u64>();
                } else {
                    out.failed_requests += 1;
                }
            }
            out
        }));
    }
    let mut total = Published::default();
    for task in tasks {
        if let Ok(p) = task.await {
            total.prices += p.prices;
            total.requests += p.requests;
            total.failed_requests += p.failed_requests;
            total.expected_deliveries += p.expected_deliveries;
        }
    }
    total.saturated = (total.prices as f64) < args.rate * run.as_secs_f64() * 0.95;
    total
}
