//! `server_stats` every 2 s while watched: this node's clients, sockets per
//! namespace and the connections/disconnections counted since the previous
//! one (`aggregatedEvents`); plus `socket_updated` for sockets that moved
//! from polling to WebSocket meanwhile (socketioxide has no upgrade event).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::wire::AdminRequest;
use super::{AdminUi, NAMESPACES, STATS_PERIOD, socket_info};
use crate::clock;
use crate::cluster::fanout::Kind;

pub const SERVER_STATS: &str = "server_stats";

type Key = (u64, &'static str, Option<&'static str>);

/// Counts per (second, type, subtype) since the last `server_stats`.
#[derive(Default)]
pub struct Aggregate(Mutex<HashMap<Key, u64>>);

impl Aggregate {
    pub fn count(&self, now_ms: u64, kind: &'static str, sub: Option<&'static str>) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((now_ms - now_ms % 1000, kind, sub)).or_default() += 1;
    }

    fn drain(&self) -> Vec<Value> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .drain()
            .map(|((timestamp, kind, sub), count)| match sub {
                Some(sub) => json!({"timestamp": timestamp, "type": kind, "subType": sub, "count": count}),
                None => json!({"timestamp": timestamp, "type": kind, "count": count}),
            })
            .collect()
    }
}

impl AdminUi {
    /// Every [`STATS_PERIOD`]: decides whether this node is watched, and if
    /// so sends its stats (and, with admin sockets here, a `Watch`).
    pub(super) async fn tick(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = clock::ticker(STATS_PERIOD);
        let hostname = hostname();
        loop {
            let here = self.local_admin_sockets();
            let watched = here > 0 || self.watched_until.load(Ordering::Relaxed) > clock::unix_millis();
            self.watched.store(watched, Ordering::Relaxed);
            if watched {
                if here > 0
                    && let Some(fanout) = &self.fanout
                {
                    fanout.send(Kind::AdminRequest, &[AdminRequest::Watch]);
                }
                self.publish(SERVER_STATS, vec![self.server_stats(&hostname)]);
                self.report_upgrades();
            } else {
                self.polling.lock().unwrap_or_else(|e| e.into_inner()).clear();
                self.aggregate.drain();
            }
            if !clock::next_tick(&mut ticker, &shutdown).await {
                return;
            }
        }
    }

    fn server_stats(&self, hostname: &str) -> Value {
        let (mut clients, mut polling) = (0, 0);
        let mut namespaces = Vec::new();
        for nsp in NAMESPACES {
            let sockets = self.io.of(nsp).map(|ns| ns.local().sockets()).unwrap_or_default();
            clients += sockets.len();
            polling += sockets
                .iter()
                .filter(|s| socket_info::transport(s) == "polling")
                .count();
            namespaces.push(json!({"name": nsp, "socketsCount": sockets.len()}));
        }
        json!({
            "serverId": self.node,
            "hostname": hostname,
            "pid": std::process::id(),
            "uptime": self.started.elapsed().as_secs_f64(),
            "clientsCount": clients,
            "pollingClientsCount": polling,
            "aggregatedEvents": self.aggregate.drain(),
            "namespaces": namespaces,
        })
    }

    /// `socket_updated {id, nsp, transport}` for each socket reported on
    /// polling that is on WebSocket now.
    fn report_upgrades(&self) {
        let reported: Vec<_> = {
            let mut polling = self.polling.lock().unwrap_or_else(|e| e.into_inner());
            polling.drain().collect()
        };
        for (nsp, id) in reported {
            let socket = self
                .io
                .of(nsp)
                .and_then(|ns| id.parse().ok().and_then(|sid| ns.get_socket(sid)));
            let Some(socket) = socket else { continue };
            if socket_info::transport(&socket) == "websocket" {
                self.publish(
                    "socket_updated",
                    vec![json!({"id": id, "nsp": nsp, "transport": "websocket"})],
                );
            } else {
                self.polling
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((nsp, id));
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "roomcast".to_owned())
}
