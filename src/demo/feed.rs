//! `--demo`: a synthetic market for trying roomcast out. A dozen symbols
//! random-walk several times a second, random trades print, and connected
//! users get the odd notification. Everything goes through the same feed as
//! the publish API. Never on unless asked for.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Map, Value, json};
use socketioxide::SocketIo;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::market::feed::Feed;
use crate::market::publish::{Emit, Price, Trade};
use crate::protocol::USER_ROOM_PREFIX;

pub const SYMBOLS: &[(&str, f64)] = &[
    ("BTC-USD", 64000.0),
    ("ETH-USD", 3100.0),
    ("SOL-USD", 150.0),
    ("XRP-USD", 0.52),
    ("ADA-USD", 0.45),
    ("DOGE-USD", 0.12),
    ("AAPL", 190.0),
    ("MSFT", 410.0),
    ("NVDA", 880.0),
    ("TSLA", 175.0),
    ("EUR-USD", 1.08),
    ("GOLD", 2350.0),
];

/// Price ticks per second (each tick moves a few symbols).
const TICKS_PER_SEC: u64 = 5;

pub fn spawn(feed: Feed, io: SocketIo, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut prices: Vec<f64> = SYMBOLS.iter().map(|(_, p)| *p).collect();
        let mut ticker = crate::clock::ticker(Duration::from_millis(1000 / TICKS_PER_SEC));
        let mut tick: u64 = 0;
        while crate::clock::next_tick(&mut ticker, &shutdown).await {
            tick += 1;
            let (moves, trade, note) = step(&mut prices, tick);
            feed.prices(&moves, Instant::now()).await;
            if let Some(trade) = trade {
                feed.trades(&[trade]).await;
            }
            if let Some(note) = note {
                let rooms: Vec<String> = io
                    .local()
                    .rooms()
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.starts_with(USER_ROOM_PREFIX))
                    .map(|r| r.to_string())
                    .collect();
                if !rooms.is_empty() {
                    feed.emits(&[Emit {
                        rooms,
                        event: "notification".into(),
                        data: note,
                    }])
                    .await;
                }
            }
        }
    })
}

/// One tick: new prices for about half the symbols, maybe a trade, maybe a notification.
fn step(prices: &mut [f64], tick: u64) -> (Vec<Price>, Option<Trade>, Option<Value>) {
    let mut rng = rand::rng();
    let ts = crate::clock::unix_millis();
    let mut moves = Vec::new();
    for (i, (symbol, _)) in SYMBOLS.iter().enumerate() {
        if rng.random_bool(0.5) {
            let drift: f64 = rng.random_range(-0.002..0.002);
            prices[i] = (prices[i] * (1.0 + drift)).max(0.0001);
            moves.push(Price {
                symbol: (*symbol).to_owned(),
                price: round(prices[i]),
                ts,
            });
        }
    }
    let trade = rng.random_bool(0.6).then(|| {
        let i = rng.random_range(0..SYMBOLS.len());
        let symbol = SYMBOLS[i].0.to_owned();
        let body = json!({
            "symbol": symbol,
            "price": round(prices[i]),
            "qty": rng.random_range(1..100),
            "side": if rng.random_bool(0.5) { "buy" } else { "sell" },
            "id": format!("demo-{tick}"),
            "ts": ts,
        });
        let body: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
        Trade { symbol, body }
    });
    let note = (tick.is_multiple_of(TICKS_PER_SEC * 15)).then(|| {
        json!({ "title": "Demo", "text": format!("Demo market tick {tick}: all systems nominal"), "ts": ts })
    });
    (moves, trade, note)
}

fn round(price: f64) -> f64 {
    let digits = if price < 10.0 { 10_000.0 } else { 100.0 };
    (price * digits).round() / digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::symbol::is_valid_symbol;

    #[test]
    fn ticks_move_valid_symbols_within_bounds() {
        let mut prices: Vec<f64> = SYMBOLS.iter().map(|(_, p)| *p).collect();
        let mut moved = 0;
        for tick in 1..=200 {
            let (moves, trade, _) = step(&mut prices, tick);
            moved += moves.len();
            for m in &moves {
                assert!(is_valid_symbol(&m.symbol) && m.price > 0.0);
            }
            if let Some(t) = trade {
                assert!(is_valid_symbol(&t.symbol) && t.body["qty"].is_number());
            }
        }
        assert!(moved > 200, "about half the symbols move each tick");
        for ((_, start), now) in SYMBOLS.iter().zip(&prices) {
            assert!(
                (now / start - 1.0).abs() < 0.5,
                "a random walk of 0.2% steps stays near its start"
            );
        }
    }
}
