//! Sending a user away (CONTRACT §7): every connection of a user on every
//! node — Socket.IO sockets get a server-side disconnect (so socket.io-client
//! does not reconnect by itself), plain WebSocket clients close 4003. The node
//! that takes the request acts locally and sends one `Kind::Disconnect`
//! envelope; the other nodes act on theirs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;

use crate::chat::plain_hub::PlainHub;
use crate::cluster::fanout::{Fanout, Kind};
use crate::protocol::user_room;

/// One request to send a user away, as it crosses nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendAway {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The connections of this node's users.
#[derive(Clone)]
pub struct UserSessions {
    pub io: SocketIo,
    pub plain: Arc<PlainHub>,
    pub fanout: Option<Fanout>,
}

impl UserSessions {
    /// Disconnects the user on every node; returns the connections closed here.
    pub fn send_away(&self, request: &SendAway) -> usize {
        let closed = self.send_away_here(request);
        if let Some(fanout) = &self.fanout {
            fanout.send(Kind::Disconnect, std::slice::from_ref(request));
        }
        closed
    }

    /// Disconnects the user's connections on this node; returns how many.
    pub fn send_away_here(&self, request: &SendAway) -> usize {
        let sockets = self.io.local().to(user_room(&request.user_id)).sockets();
        let count = sockets.len();
        for socket in sockets {
            let _ = socket.disconnect();
        }
        let plain = self.plain.kick_user(&request.user_id);
        if count + plain > 0 {
            tracing::info!(user = ?request.user_id, reason = ?request.reason, sockets = count, plain, "user sent away");
        }
        count + plain
    }
}
