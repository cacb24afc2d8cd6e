//! Chat delivery: to this node's members of `chat:<roomId>` (Socket.IO sockets
//! and plain WebSocket clients) and, through the fanout, to other nodes'.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;

use serde_json::json;
use socketioxide::SocketIo;

use super::backlog::{ChatBacklog, Outcome};
use super::out::ChatOut;
use super::plain_hub::PlainHub;
use crate::cluster::fanout::{Fanout, Kind};
use crate::metrics::Metrics;
use crate::protocol::{CHAT_ROOM_PREFIX, chat_room, user_room};
use crate::store::MessageId;

pub struct ChatBus {
    pub io: SocketIo,
    pub plain: Arc<PlainHub>,
    pub fanout: Option<Fanout>,
    pub metrics: Arc<Metrics>,
    /// Chat packets waiting for sockets whose queue is full (never dropped early).
    pub backlog: Arc<ChatBacklog>,
    /// The newest message id delivered per room on this node.
    pub last_delivered: Mutex<HashMap<String, MessageId>>,
    /// Ids of the messages this node delivered lately (a retry of one of them
    /// is not delivered again).
    pub recently_delivered: Mutex<RecentIds>,
}

/// The last [`RECENT_IDS`] message ids, for membership tests.
#[derive(Default)]
pub struct RecentIds {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

/// Message ids remembered per node as delivered.
const RECENT_IDS: usize = 16_384;

impl RecentIds {
    fn insert(&mut self, id: &str) {
        if self.ids.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
            if self.order.len() > RECENT_IDS
                && let Some(oldest) = self.order.pop_front()
            {
                self.ids.remove(&oldest);
            }
        }
    }
}

impl ChatBus {
    /// Delivers to this node's members only.
    pub async fn deliver_local(&self, out: &ChatOut) {
        let room_id = out.room_id();
        if let ChatOut::Message(message) = out {
            self.recently_delivered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(&message.id);
        }
        if let ChatOut::Message(message) = out
            && let Some(id) = MessageId::parse(&message.id)
        {
            let mut last = self.last_delivered.lock().unwrap_or_else(|e| e.into_inner());
            let newest = last.entry(room_id.to_owned()).or_insert(id);
            *newest = (*newest).max(id);
        }
        let (event, plain_type, data) = out.wire();
        let frame = json!({ "type": plain_type, "data": data }).to_string();
        // Socket by socket, so a full queue holds the packet instead of losing it.
        let data = Arc::new(data);
        let size = frame.len();
        let mut dropped = 0;
        let members = self.io.local().to(chat_room(room_id));
        let sockets = match out.except_user() {
            Some(user) => members.except(user_room(user)).sockets(),
            None => members.sockets(),
        };
        for socket in sockets {
            if self.backlog.send(&socket, event, &data, size) == Outcome::CutOff {
                dropped += 1;
            }
        }
        self.metrics.emitted(event);
        if dropped > 0 {
            self.metrics.dropped(event, dropped);
        }
        self.plain.send(room_id, frame.into(), out.except_user());
    }
}

impl ChatBus {
    /// Delivers to this node's members, then to the other nodes'.
    pub async fn deliver(&self, out: ChatOut) {
        self.deliver_local(&out).await;
        if let Some(fanout) = &self.fanout {
            fanout.send_reliable(Kind::Chat, &out);
        }
    }

    /// Whether this node delivered message `id` lately.
    pub fn delivered(&self, id: &str) -> bool {
        self.recently_delivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .contains(id)
    }

    /// The rooms with members on this node, with the newest message id
    /// delivered to them here (for catching up after a Redis reconnect).
    pub fn rooms_with_members(&self) -> Vec<(String, Option<MessageId>)> {
        let mut rooms: Vec<String> = self
            .io
            .local()
            .rooms()
            .now_or_never()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|room| room.strip_prefix(CHAT_ROOM_PREFIX).map(str::to_owned))
            .collect();
        rooms.extend(self.plain.rooms());
        rooms.sort();
        rooms.dedup();
        let mut last = self.last_delivered.lock().unwrap_or_else(|e| e.into_inner());
        last.retain(|room, _| rooms.binary_search(room).is_ok());
        rooms
            .into_iter()
            .map(|room| {
                let id = last.get(&room).copied();
                (room, id)
            })
            .collect()
    }
}
