//! The Socket.IO Admin UI (`@socket.io/admin-ui` 0.5): the `/admin`
//! namespace speaks the protocol of the package's `instrument()`, for every
//! node at once. An admin socket sees `server_stats` from each node every
//! 2 s, `all_sockets` with the sockets of every node, and live
//! `socket_connected` / `socket_updated` / `socket_disconnected` /
//! `room_joined` / `room_left` from every node. In development mode it may
//! also disconnect sockets and make them join or leave rooms, on any node.
//!
//! Cheap when nobody watches: the hooks ([`AdminUi::connected`],
//! [`AdminUi::joined`], ...) check one flag and return. A node is watched
//! while it has admin sockets or another node said so less than
//! [`WATCH_TTL`] ago (a `Watch` request every [`STATS_PERIOD`]).
//! The web app itself is served by `http::admin_ui`.

mod auth;
mod commands;
mod socket_info;
mod stats;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::cluster::fanout::{Fanout, Kind};
use crate::config::{AdminUiMode, Secret};
use socket_info::Issued;
use wire::{AdminEvent, AdminReply, AdminRequest, Args};

/// The namespace the Admin UI connects to.
pub const NAMESPACE: &str = "/admin";
/// The namespaces a node reports (roomcast has these two).
const NAMESPACES: [&str; 2] = ["/", NAMESPACE];
/// `server_stats` period (the package's).
const STATS_PERIOD: Duration = Duration::from_secs(2);
/// How long a node keeps reporting after the last `Watch`.
const WATCH_TTL: Duration = Duration::from_secs(6);
/// How long `all_sockets` waits for the other nodes' lists.
const LIST_WAIT: Duration = Duration::from_millis(500);
/// A node whose `server_stats` is older than this is not waited for.
const PEER_TTL: Duration = Duration::from_secs(10);
/// Admin events waiting for delivery before new ones are dropped.
const QUEUE: usize = 4096;

/// The Admin UI side of one node.
pub struct AdminUi {
    io: SocketIo,
    node: String,
    mode: AdminUiMode,
    password_hash: Secret,
    fanout: Option<Fanout>,
    started: Instant,
    /// Report events? (Admin sockets here, or a recent `Watch`.)
    watched: AtomicBool,
    /// Until when (epoch ms) another node's `Watch` holds.
    watched_until: AtomicU64,
    events: mpsc::Sender<AdminEvent>,
    sessions: auth::Sessions,
    /// Open `all_sockets` gatherings by request id.
    lists: Mutex<HashMap<String, mpsc::UnboundedSender<AdminReply>>>,
    /// Other nodes by serverId: when their last `server_stats` came (epoch ms).
    peers: Mutex<HashMap<String, u64>>,
    aggregate: stats::Aggregate,
    /// Sockets last reported on polling: the next tick tells of their upgrade.
    polling: Mutex<HashSet<(&'static str, String)>>,
}

impl AdminUi {
    /// Registers `/admin` on `io` and spawns the stats ticker and the event
    /// sender; `fanout` is the path to the other nodes (none: one node).
    pub fn spawn(
        io: &SocketIo,
        node: String,
        mode: AdminUiMode,
        password_hash: Secret,
        fanout: Option<Fanout>,
        shutdown: CancellationToken,
    ) -> (Arc<Self>, Vec<JoinHandle<()>>) {
        let (events, queued) = mpsc::channel(QUEUE);
        let admin = Arc::new(Self {
            io: io.clone(),
            node,
            mode,
            password_hash,
            fanout,
            started: Instant::now(),
            watched: AtomicBool::new(false),
            watched_until: AtomicU64::new(0),
            events,
            sessions: auth::Sessions::default(),
            lists: Mutex::default(),
            peers: Mutex::default(),
            aggregate: stats::Aggregate::default(),
            polling: Mutex::default(),
        });
        register(io, admin.clone());
        let tasks = vec![
            tokio::spawn(admin.clone().send_events(queued, shutdown.clone())),
            tokio::spawn(admin.clone().tick(shutdown)),
        ];
        (admin, tasks)
    }

    fn watching(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }

    fn watch_for_a_while(&self) {
        let until = clock::unix_millis() + WATCH_TTL.as_millis() as u64;
        self.watched_until.fetch_max(until, Ordering::Relaxed);
        self.watched.store(true, Ordering::Relaxed);
    }

    fn local_admin_sockets(&self) -> usize {
        self.io.of(NAMESPACE).map_or(0, |ns| ns.local().sockets().len())
    }

    /// A socket connected (any namespace).
    pub fn connected(&self, socket: &SocketRef) {
        let now = clock::unix_millis();
        socket.extensions.insert(Issued(now));
        if !self.watching() {
            return;
        }
        self.aggregate.count(now, "rawConnection", None);
        let info = self.serialize(socket);
        self.publish("socket_connected", vec![info, timestamp(now)]);
    }

    /// A socket disconnected (any namespace); its rooms are still there.
    pub fn disconnected(&self, socket: &SocketRef, reason: DisconnectReason) {
        if !self.watching() {
            return;
        }
        let now = clock::unix_millis();
        let reason = reason_text(reason);
        self.aggregate.count(now, "rawDisconnection", Some(reason));
        let (nsp, id) = (json!(socket.ns()), json!(socket.id.to_string()));
        self.publish(
            "socket_disconnected",
            vec![nsp.clone(), id.clone(), json!(reason), timestamp(now)],
        );
        for room in socket_info::rooms(socket) {
            self.publish(
                "room_left",
                vec![nsp.clone(), json!(room), id.clone(), timestamp(now)],
            );
        }
    }

    /// A connected socket joined `rooms`.
    pub fn joined(&self, socket: &SocketRef, rooms: &[String]) {
        self.room_change("room_joined", socket, rooms);
    }

    /// A connected socket left `rooms`.
    pub fn left(&self, socket: &SocketRef, rooms: &[String]) {
        self.room_change("room_left", socket, rooms);
    }

    fn room_change(&self, event: &str, socket: &SocketRef, rooms: &[String]) {
        // Before it is connected, `socket_connected` carries its rooms.
        if !self.watching() || !socket.connected() {
            return;
        }
        let now = timestamp(clock::unix_millis());
        for room in rooms.iter().filter(|r| !crate::protocol::is_internal_room(r)) {
            let args = vec![
                json!(socket.ns()),
                json!(room),
                json!(socket.id.to_string()),
                now.clone(),
            ];
            self.publish(event, args);
        }
    }

    /// Queues an event for every node's admin sockets (in order; dropped when full).
    fn publish(&self, event: &str, args: Vec<Value>) {
        let event = AdminEvent {
            event: event.to_owned(),
            args,
        };
        if self.events.try_send(event).is_err() {
            tracing::debug!("admin UI event queue full: event dropped");
        }
    }

    async fn send_events(
        self: Arc<Self>,
        mut queued: mpsc::Receiver<AdminEvent>,
        shutdown: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                e = queued.recv() => e,
                _ = shutdown.cancelled() => None,
            };
            let Some(event) = event else { return };
            let mut batch = vec![event];
            while batch.len() < 256 {
                let Ok(next) = queued.try_recv() else { break };
                batch.push(next);
            }
            self.deliver_events(&batch).await;
            if let Some(fanout) = &self.fanout {
                fanout.send(Kind::AdminEvents, &batch);
            }
        }
    }

    /// Emits events to this node's admin sockets.
    async fn deliver_events(&self, events: &[AdminEvent]) {
        let Some(ns) = self.io.of(NAMESPACE) else { return };
        for event in events {
            let _ = ns
                .clone()
                .local()
                .emit(&event.event, &Args(event.args.clone()))
                .await;
        }
    }

    /// Every socket of every node: this node's at once, the others' as they
    /// answer, until each node seen lately has answered or [`LIST_WAIT`] ends.
    async fn all_sockets(&self) -> Vec<Value> {
        let mut sockets = self.local_sockets();
        let Some(fanout) = &self.fanout else {
            return sockets;
        };
        let request = format!("{}#{}", self.node, rand::random::<u64>());
        let (tx, mut replies) = mpsc::unbounded_channel();
        self.lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request.clone(), tx);
        fanout.send(
            Kind::AdminRequest,
            &[AdminRequest::List {
                request: request.clone(),
            }],
        );
        let mut waiting_for = self.live_peers();
        let deadline = tokio::time::Instant::now() + LIST_WAIT;
        while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, replies.recv()).await {
            sockets.extend(reply.sockets);
            if let Some(at) = waiting_for.iter().position(|p| *p == reply.server) {
                waiting_for.swap_remove(at);
                if waiting_for.is_empty() {
                    break;
                }
            }
        }
        self.lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&request);
        sockets
    }

    /// Other nodes that sent `server_stats` lately (empty: wait the whole time).
    fn live_peers(&self) -> Vec<String> {
        let fresh = clock::unix_millis().saturating_sub(PEER_TTL.as_millis() as u64);
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let live: Vec<String> = peers
            .iter()
            .filter(|(_, at)| **at >= fresh)
            .map(|(p, _)| p.clone())
            .collect();
        if live.is_empty() {
            vec![String::new()]
        } else {
            live
        }
    }

    fn local_sockets(&self) -> Vec<Value> {
        NAMESPACES
            .iter()
            .filter_map(|nsp| self.io.of(nsp))
            .flat_map(|ns| ns.local().sockets())
            .map(|s| self.serialize(&s))
            .collect()
    }

    /// The socket for the UI; one reported on polling is remembered (see `stats`).
    fn serialize(&self, socket: &SocketRef) -> Value {
        if socket_info::transport(socket) == "polling"
            && let Some(nsp) = NAMESPACES.iter().find(|n| **n == socket.ns())
        {
            let mut polling = self.polling.lock().unwrap_or_else(|e| e.into_inner());
            polling.insert((nsp, socket.id.to_string()));
        }
        socket_info::serialize(socket)
    }

    /// What another node sent (an envelope of an admin kind).
    pub async fn deliver(&self, kind: Kind, items: &[u8]) -> Result<(), String> {
        let parse = |e: serde_json::Error| e.to_string();
        match kind {
            Kind::AdminEvents => {
                let events: Vec<AdminEvent> = serde_json::from_slice(items).map_err(parse)?;
                for event in events.iter().filter(|e| e.event == stats::SERVER_STATS) {
                    if let Some(server) = event.args.first().and_then(|s| s["serverId"].as_str()) {
                        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
                        peers.insert(server.to_owned(), clock::unix_millis());
                    }
                }
                self.deliver_events(&events).await;
            }
            Kind::AdminRequest => {
                let requests: Vec<AdminRequest> = serde_json::from_slice(items).map_err(parse)?;
                for request in requests {
                    self.answer(request);
                }
            }
            Kind::AdminReply => {
                let replies: Vec<AdminReply> = serde_json::from_slice(items).map_err(parse)?;
                let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
                for reply in replies {
                    if let Some(list) = lists.get(&reply.request) {
                        let _ = list.send(reply);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn answer(&self, request: AdminRequest) {
        match request {
            AdminRequest::Watch => self.watch_for_a_while(),
            AdminRequest::List { request } => {
                // Watch first: a socket that connects after the list is reported live.
                self.watch_for_a_while();
                let reply = AdminReply {
                    request,
                    server: self.node.clone(),
                    sockets: self.local_sockets(),
                };
                if let Some(fanout) = &self.fanout {
                    fanout.send(Kind::AdminReply, &[reply]);
                }
            }
            AdminRequest::Command(command) => {
                if self.mode == AdminUiMode::Development {
                    self.run_here(&command);
                }
            }
        }
    }
}

/// `/admin`: the credentials check as connect middleware, then the session.
fn register(io: &SocketIo, admin: Arc<AdminUi>) {
    let check = {
        let admin = admin.clone();
        move |socket: SocketRef,
              socketioxide::extract::TryData(auth): socketioxide::extract::TryData<Value>| {
            let admin = admin.clone();
            async move { admin.check_credentials(&socket, auth.ok()).await }
        }
    };
    let connect = move |socket: SocketRef| {
        let admin = admin.clone();
        async move { admin.admin_connected(socket).await }
    };
    io.ns(NAMESPACE, connect.with(check));
}

impl AdminUi {
    async fn admin_connected(self: Arc<Self>, socket: SocketRef) {
        if let Some(auth::NewSession(id)) = socket.extensions.get::<auth::NewSession>() {
            let _ = socket.emit("session", &id);
        }
        let _ = socket.emit("config", &json!({ "supportedFeatures": self.features() }));
        if self.mode == AdminUiMode::Development {
            commands::register(&socket, self.clone());
        }
        let admin = self.clone();
        socket.on_disconnect(move |s: SocketRef, reason: DisconnectReason| {
            let admin = admin.clone();
            async move { admin.disconnected(&s, reason) }
        });
        self.watched.store(true, Ordering::Relaxed);
        if let Some(fanout) = &self.fanout {
            fanout.send(Kind::AdminRequest, &[AdminRequest::Watch]);
        }
        self.connected(&socket);
        let sockets = self.all_sockets().await;
        let _ = socket.emit("all_sockets", &sockets);
    }

    fn features(&self) -> Vec<&'static str> {
        let mut features = Vec::new();
        if self.mode == AdminUiMode::Development {
            features.extend(["JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]);
        }
        features.extend(["AGGREGATED_EVENTS", "ALL_EVENTS"]);
        features
    }
}

fn timestamp(epoch_ms: u64) -> Value {
    // `new Date()` goes over the wire as its ISO string; the UI sorts these as strings.
    let (year, month, day, h, m, s) = socket_info::civil(epoch_ms / 1000);
    let ms = epoch_ms % 1000;
    json!(format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z"
    ))
}

/// socket.io's words for why a socket went.
fn reason_text(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::TransportError | DisconnectReason::MultipleHttpPollingError => "transport error",
        DisconnectReason::PacketParsingError => "parse error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_strings() {
        assert_eq!(timestamp(1_795_966_132_225), json!("2026-11-29T15:28:52.225Z"));
        assert_eq!(timestamp(951_782_400_001), json!("2000-02-29T00:00:00.001Z"));
    }
}
