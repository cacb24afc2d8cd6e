//! Chat (CONTRACT §3, §4, §6): one service that every entry point (Socket.IO
//! events, REST, plain WebSocket) goes through — persist first, then deliver
//! to every member on every node.

pub mod access;
pub mod backlog;
pub mod delivery;
pub mod error;
pub mod input;
pub mod out;
pub mod outbox;
pub mod plain_hub;
pub mod plain_ws;
pub mod ws_socket;

use std::sync::Arc;

use serde::Serialize;

use crate::auth::token::Identity;
use crate::store::{ChatMessage, ChatStore, MessageId, NewMessage};
use access::ChatGate;
use delivery::ChatBus;
pub use error::ChatError;
use input::{DEFAULT_HISTORY, Draft, RoomId};
use out::{ChatOut, ReadReceipt};

/// Chat rooms one socket may be in at once.
pub const MAX_CHAT_ROOMS: usize = 100;

/// What `chat:join` answers besides `ok`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinState {
    pub history: Vec<ChatMessage>,
    pub unread: u64,
    pub last_read: Option<String>,
}

pub struct Chat {
    store: Arc<dyn ChatStore>,
    delivery: Arc<ChatBus>,
    gate: ChatGate,
}

impl Chat {
    pub fn new(store: Arc<dyn ChatStore>, delivery: Arc<ChatBus>, gate: ChatGate) -> Self {
        Self {
            store,
            delivery,
            gate,
        }
    }

    /// `Ok` when `identity` may be in `room_id` (see `access`); every entry
    /// point asks before it reads or writes anything of the room.
    pub async fn authorize(&self, identity: &Identity, room_id: &RoomId) -> Result<(), ChatError> {
        self.gate.check(identity, room_id).await
    }

    /// Persists, then broadcasts (unless it is a retry of a stored `clientMsgId`),
    /// then moves the sender's last read to it. Returns the message and whether it is new.
    pub async fn send(
        &self,
        user_id: &str,
        room_id: &RoomId,
        draft: Draft,
    ) -> Result<(ChatMessage, bool), ChatError> {
        let new = NewMessage {
            room_id: room_id.as_str().to_owned(),
            sender_id: user_id.to_owned(),
            message: draft.message,
            kind: draft.kind,
            client_msg_id: draft.client_msg_id,
        };
        let (message, is_new) = self.store.append(new).await?;
        if is_new {
            self.delivery.deliver(ChatOut::Message(message.clone())).await;
            if let Some(id) = MessageId::parse(&message.id)
                && let Err(e) = self.store.mark_read(room_id.as_str(), user_id, &id).await
            {
                tracing::warn!(room = %room_id, user = ?user_id, error = %e, "could not move the sender's last read");
            }
        }
        Ok((message, is_new))
    }

    pub async fn join_state(&self, user_id: &str, room_id: &RoomId) -> Result<JoinState, ChatError> {
        let room = room_id.as_str();
        self.store.join(room, user_id).await?;
        let history = self.store.history(room, None, DEFAULT_HISTORY).await?;
        let state = self.store.unread(room, user_id).await?;
        Ok(JoinState {
            history,
            unread: state.unread,
            last_read: state.last_read.map(|id| id.to_string()),
        })
    }

    /// Stores the user's last read (forward only; `message_id` must be a
    /// message of the room) and tells the room.
    pub async fn read(
        &self,
        user_id: &str,
        room_id: &RoomId,
        message_id: &MessageId,
    ) -> Result<String, ChatError> {
        let in_force = self
            .store
            .mark_read(room_id.as_str(), user_id, message_id)
            .await?
            .to_string();
        let receipt = ReadReceipt {
            room_id: room_id.as_str().to_owned(),
            user_id: user_id.to_owned(),
            message_id: in_force.clone(),
        };
        self.delivery.deliver(ChatOut::Read(receipt)).await;
        Ok(in_force)
    }

    pub async fn history(
        &self,
        room_id: &RoomId,
        before: Option<&MessageId>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, ChatError> {
        Ok(self.store.history(room_id.as_str(), before, limit).await?)
    }
}
