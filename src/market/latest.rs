//! The latest known price per symbol, for the `price:batch` a socket gets
//! right after `subscribe:price` (CONTRACT §8). Every node sees every price
//! (`Feed::deliver_prices`), so each keeps them in memory, for at most
//! [`MAX_SYMBOLS`] symbols (past that, new symbols are not kept in memory).
//! With Redis, the node that takes a publish also writes it to the hash
//! `roomcast:prices:latest` (one pipelined HSET per batch of publishes, from a
//! background task, never on the publish path), and a symbol this node has not
//! seen since it started is read from there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster::conn::Commands;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::publish::Price;
use crate::cluster::health::RedisHealth;

/// Symbols whose latest price one node keeps in memory.
pub const MAX_SYMBOLS: usize = 100_000;
/// The Redis hash of latest prices: field = symbol, value = the price (JSON number).
pub const LATEST_KEY: &str = "roomcast:prices:latest";
/// Batches of prices waiting for the writer before new ones are dropped.
const WRITE_QUEUE: usize = 1024;
/// Most fields in one HSET.
const WRITE_MAX_FIELDS: usize = 4096;
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

pub struct LatestPrices {
    known: Mutex<HashMap<String, f64>>,
    redis: Option<LatestInRedis>,
}

struct LatestInRedis {
    conn: Commands,
    health: Arc<RedisHealth>,
    writes: mpsc::Sender<Vec<(String, f64)>>,
}

impl LatestPrices {
    pub fn in_memory() -> Self {
        Self {
            known: Mutex::default(),
            redis: None,
        }
    }

    /// Kept in memory and in Redis; returns the writer task.
    pub fn with_redis(
        conn: Commands,
        health: Arc<RedisHealth>,
        shutdown: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (writes, queued) = mpsc::channel(WRITE_QUEUE);
        let task = tokio::spawn(write_behind(conn.clone(), health.clone(), queued, shutdown));
        let latest = Self {
            known: Mutex::default(),
            redis: Some(LatestInRedis { conn, health, writes }),
        };
        (latest, task)
    }

    /// Notes prices seen on this node (in memory).
    pub fn note(&self, prices: &[Price]) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for price in prices {
            let room = known.len() < MAX_SYMBOLS;
            match known.get_mut(&price.symbol) {
                Some(slot) => *slot = price.price,
                None if room => {
                    known.insert(price.symbol.clone(), price.price);
                }
                None => {}
            }
        }
    }

    /// Queues prices this node took a publish of for Redis (no-op without Redis).
    pub fn persist(&self, prices: &[Price]) {
        if let Some(redis) = &self.redis {
            let batch = prices.iter().map(|p| (p.symbol.clone(), p.price)).collect();
            if redis.writes.try_send(batch).is_err() {
                tracing::debug!("latest-price writer queue full: batch not written to Redis");
            }
        }
    }

    /// The latest known price of each of `symbols` that has one, in order.
    pub async fn lookup(&self, symbols: &[&str]) -> Vec<(String, f64)> {
        let mut found: Vec<(String, Option<f64>)> = {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            symbols
                .iter()
                .map(|s| ((*s).to_owned(), known.get(*s).copied()))
                .collect()
        };
        let missing: Vec<&str> = found
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(s, _)| s.as_str())
            .collect();
        if let Some(redis) = &self.redis
            && !missing.is_empty()
            && redis.health.is_up()
        {
            let mut conn = redis.conn.clone();
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(LATEST_KEY).arg(&missing);
            let read =
                tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<Vec<Option<String>>>(&mut conn)).await;
            match read {
                Ok(Ok(values)) => {
                    let from_redis: HashMap<String, f64> = missing
                        .iter()
                        .zip(values)
                        .filter_map(|(s, v)| Some(((*s).to_owned(), v?.parse::<f64>().ok()?)))
                        .collect();
                    for (symbol, price) in &mut found {
                        if price.is_none() {
                            *price = from_redis.get(symbol).copied();
                        }
                    }
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "latest prices not read from Redis"),
                Err(_) => tracing::debug!("latest prices not read from Redis in time"),
            }
        }
        found.into_iter().filter_map(|(s, p)| Some((s, p?))).collect()
    }
}

/// Writes queued batches: what queued meanwhile goes into one HSET.
async fn write_behind(
    conn: Commands,
    health: Arc<RedisHealth>,
    mut queued: mpsc::Receiver<Vec<(String, f64)>>,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            b = queued.recv() => b,
            _ = shutdown.cancelled() => { queued.close(); queued.recv().await }
        };
        let Some(first) = first else { return };
        let mut fields: HashMap<String, f64> = first.into_iter().collect();
        while fields.len() < WRITE_MAX_FIELDS {
            let Ok(more) = queued.try_recv() else { break };
            fields.extend(more);
        }
        if !health.is_up() {
            continue;
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(LATEST_KEY);
        for (symbol, price) in &fields {
            cmd.arg(symbol)
                .arg(serde_json::to_string(price).unwrap_or_else(|_| "null".into()));
        }
        let mut conn = conn.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "latest prices not written to Redis"),
            Err(_) => tracing::debug!("latest prices not written to Redis in time"),
        }
    }
}
