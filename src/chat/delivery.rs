//! Chat delivery: to this node's members of `chat:<roomId>` (Socket.IO sockets
//! and plain WebSocket clients) and, through the fanout, to other nodes'.

use std::sync::Arc;

use serde_json::json;
use socketioxide::SocketIo;

use super::backlog::{ChatBacklog, Outcome};
use super::out::ChatOut;
use super::plain_hub::PlainHub;
use crate::cluster::fanout::{Fanout, Kind};
use crate::metrics::Metrics;
use crate::protocol::{chat_room, user_room};

pub struct ChatBus {
    pub io: SocketIo,
    pub plain: Arc<PlainHub>,
    pub fanout: Option<Fanout>,
    pub metrics: Arc<Metrics>,
    /// Chat packets waiting for sockets whose queue is full (never dropped early).
    pub backlog: Arc<ChatBacklog>,
}

impl ChatBus {
    /// Delivers to this node's members only.
    pub async fn deliver_local(&self, out: &ChatOut) {
        let room_id = out.room_id();
        let (event, plain_type, data) = out.wire();
        let frame = json!({ "type": plain_type, "data": data }).to_string();
        // Socket by socket, so a full queue holds the packet instead of losing it.
        let data = Arc::new(data);
        let mut dropped = 0;
        let members = self.io.local().to(chat_room(room_id));
        let sockets = match out.except_user() {
            Some(user) => members.except(user_room(user)).sockets(),
            None => members.sockets(),
        };
        for socket in sockets {
            if self.backlog.send(&socket, event, &data) == Outcome::Dropped {
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
            fanout.send(Kind::Chat, &out);
        }
    }
}
