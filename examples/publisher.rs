//! Streams random-walk prices (and the odd trade) to roomcast's publish API.
//!
//!     cargo run --example publisher -- --url http://127.0.0.1:3000 --key "$ROOMCAST_PUBLISH_KEY" \
//!         --symbols BTC-USD,ETH-USD --rate 20 --seconds 60
//!
//! Each tick POSTs one array of prices to /api/v1/prices (and every tenth
//! tick a trade to /api/v1/trades). Stops after --seconds.

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// roomcast base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Publish key (the server's --publish-key).
    #[arg(long, env = "ROOMCAST_PUBLISH_KEY")]
    key: String,
    /// Symbols to publish, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "BTC-USD,ETH-USD,SOL-USD")]
    symbols: Vec<String>,
    /// Ticks per second (one POST with every symbol per tick).
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let mut prices: Vec<f64> = args.symbols.iter().map(|_| 100.0).collect();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tick = 0u64;
    while Instant::now() < deadline {
        ticker.tick().await;
        tick += 1;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64;
        let body: Vec<_> = args
            .symbols
            .iter()
            .zip(prices.iter_mut())
            .map(|(symbol, price)| {
                *price = (*price * (1.0 + (rand::random::<f64>() - 0.5) * 0.002)).max(0.01);
                json!({ "symbol": symbol, "price": (*price * 100.0).round() / 100.0, "ts": ts })
            })
            .collect();
        let response = http
            .post(format!("{}/api/v1/prices", args.url))
            .bearer_auth(&args.key)
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            anyhow::bail!(
                "publish refused: {} {}",
                response.status(),
                response.text().await?
            );
        }
        if tick.is_multiple_of(10) {
            let trade =
                json!({ "symbol": args.symbols[0], "price": prices[0], "qty": 1, "side": "buy", "ts": ts });
            http.post(format!("{}/api/v1/trades", args.url))
                .bearer_auth(&args.key)
                .json(&trade)
                .send()
                .await?;
        }
    }
    println!("published {tick} ticks of {} symbols", args.symbols.len());
    Ok(())
}
