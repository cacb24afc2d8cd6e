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
pub mod presence;
pub mod webhook;
pub mod ws_socket;

use std::sync::Arc;

use serde::Serialize;

use futures_util::future::join_all;

use crate::auth::token::Identity;
use crate::store::{ChatMessage, ChatStore, MessageId, NewMessage, RoomSummary, StoreError};
use access::ChatGate;
use delivery::ChatBus;
pub use error::ChatError;
use input::{DEFAULT_HISTORY, Draft, RoomId, check_kind};
use out::{ChatOut, Deleted, Edited, PresenceChange, ReadReceipt, Typing};
use presence::Presence;
use webhook::Webhook;

pub const NOT_AUTHOR: &str = "only the author may edit this message";
pub const NOT_AUTHOR_OR_ADMIN: &str = "only the author or an admin may delete this message";

/// Messages per room looked at when catching up after a Redis reconnect.
const CATCH_UP_MAX: usize = 200;
/// Without a known newest message, how far back catching up looks.
const CATCH_UP_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Chat rooms one socket may be in at once.
pub const MAX_CHAT_ROOMS: usize = 100;

/// What `chat:join` answers besides `ok`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinState {
    pub history: Vec<ChatMessage>,
    pub unread: u64,
    pub last_read: Option<String>,
    /// Users with a live connection in the room (any transport, any node).
    pub online: Vec<String>,
}

pub struct Chat {
    store: Arc<dyn ChatStore>,
    delivery: Arc<ChatBus>,
    gate: ChatGate,
    presence: Arc<Presence>,
    webhook: Option<Webhook>,
}

impl Chat {
    pub fn new(
        store: Arc<dyn ChatStore>,
        delivery: Arc<ChatBus>,
        gate: ChatGate,
        presence: Arc<Presence>,
        webhook: Option<Webhook>,
    ) -> Self {
        Self {
            store,
            delivery,
            gate,
            presence,
            webhook,
        }
    }

    /// Counts connections in and out of rooms (synchronously, see `presence`).
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// After [`Presence::arrive`] said first: tells the room when the user came online.
    pub async fn announce_arrival(&self, room_id: &str, user_id: &str) {
        if self.presence.came_online(room_id, user_id).await {
            self.announce(room_id, user_id, true).await;
        }
    }

    /// After [`Presence::depart`] said last: tells the room when the user went offline.
    pub async fn announce_departure(&self, room_id: &str, user_id: &str) {
        if self.presence.went_offline(room_id, user_id).await {
            self.announce(room_id, user_id, false).await;
        }
    }

    async fn announce(&self, room_id: &str, user_id: &str, online: bool) {
        let change = PresenceChange {
            room_id: room_id.to_owned(),
            user_id: user_id.to_owned(),
            online,
        };
        self.delivery.deliver(ChatOut::Presence(change)).await;
    }

    /// Refreshes this node's presence and announces what changed elsewhere
    /// (users of a dead node gone offline).
    pub async fn presence_heartbeat(&self) {
        for change in self.presence.heartbeat().await {
            self.delivery.deliver(ChatOut::Presence(change)).await;
        }
    }

    pub async fn online(&self, room_id: &RoomId) -> Vec<String> {
        self.presence.online(room_id.as_str()).await
    }

    /// Relays a typing state to the room's other members; nothing stored.
    pub async fn typing(&self, user_id: &str, room_id: &RoomId, typing: bool) {
        let out = Typing {
            room_id: room_id.as_str().to_owned(),
            user_id: user_id.to_owned(),
            typing,
        };
        self.delivery.deliver(ChatOut::Typing(out)).await;
    }

    /// A stored message of the room (a tombstone included), or `UnknownMessage`.
    async fn stored(&self, room: &str, id: &MessageId) -> Result<ChatMessage, ChatError> {
        Ok(self
            .store
            .message(room, id)
            .await?
            .ok_or(StoreError::UnknownMessage)?)
    }

    /// The author replaces the text of a message; the room gets `chat:edited`.
    pub async fn edit(
        &self,
        user_id: &str,
        room_id: &RoomId,
        id: &MessageId,
        text: &str,
    ) -> Result<ChatMessage, ChatError> {
        let room = room_id.as_str();
        let current = self.stored(room, id).await?;
        if current.deleted {
            return Err(StoreError::Deleted.into());
        }
        if current.sender_id != user_id {
            return Err(ChatError::Forbidden(NOT_AUTHOR));
        }
        check_kind(&current.kind, text)?;
        let edited = self.store.edit(room, id, text).await?;
        let out = Edited {
            room_id: room.to_owned(),
            id: edited.id.clone(),
            message: edited.message.clone(),
            edited_at: edited.edited_at.unwrap_or_default(),
        };
        self.delivery.deliver(ChatOut::Edited(out)).await;
        Ok(edited)
    }

    /// The author or an admin deletes a message: a tombstone keeps its
    /// place; the room gets `chat:deleted`. Deleting it again changes nothing.
    pub async fn delete(
        &self,
        user: &Identity,
        room_id: &RoomId,
        id: &MessageId,
    ) -> Result<ChatMessage, ChatError> {
        let room = room_id.as_str();
        let current = self.stored(room, id).await?;
        if current.deleted {
            return Ok(current);
        }
        if current.sender_id != user.user_id && !user.is_admin {
            return Err(ChatError::Forbidden(NOT_AUTHOR_OR_ADMIN));
        }
        let tombstone = self.store.delete(room, id).await?;
        let out = Deleted {
            room_id: room.to_owned(),
            id: tombstone.id.clone(),
        };
        self.delivery.deliver(ChatOut::Deleted(out)).await;
        Ok(tombstone)
    }

    /// The user's inbox: the rooms joined that the user may still join,
    /// most recent activity first.
    pub async fn rooms(&self, user: &Identity, limit: usize) -> Result<Vec<RoomSummary>, ChatError> {
        let rooms = self.store.rooms(&user.user_id, limit).await?;
        let allowed = join_all(rooms.iter().map(|summary| async move {
            match RoomId::parse(&summary.room_id) {
                Ok(room_id) => self.authorize(user, &room_id).await.is_ok(),
                Err(_) => false,
            }
        }))
        .await;
        Ok(rooms
            .into_iter()
            .zip(allowed)
            .filter_map(|(summary, allowed)| allowed.then_some(summary))
            .collect())
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
        // A retry of a stored message is delivered unless this node delivered
        // it already: the first attempt may have been stored and never
        // delivered (its ack failed, or its node died). Clients drop ids they
        // already have, so each sees it once.
        if is_new || !self.delivery.delivered(&message.id) {
            self.delivery.deliver(ChatOut::Message(message.clone())).await;
        }
        if is_new {
            if let Some(webhook) = &self.webhook {
                webhook.offer(&message);
            }
            if let Some(id) = MessageId::parse(&message.id)
                && let Err(e) = self.store.mark_read(room_id.as_str(), user_id, &id).await
            {
                tracing::warn!(room = %room_id, user = ?user_id, error = %e, "could not move the sender's last read");
            }
        }
        Ok((message, is_new))
    }

    /// Records the membership only (plain WebSocket members).
    pub async fn join(&self, user_id: &str, room_id: &RoomId) -> Result<(), ChatError> {
        Ok(self.store.join(room_id.as_str(), user_id).await?)
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
            online: Vec::new(),
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

    /// Delivers to this node's members what they may have missed while this
    /// node's Redis subscription was down: per room with members here, the
    /// stored messages newer than the newest delivered here (or, where none
    /// was, of the last few minutes). Clients drop ids they already have.
    pub async fn catch_up(&self) {
        let since_ms = crate::clock::unix_millis().saturating_sub(CATCH_UP_WINDOW_MS);
        let mut delivered = 0;
        for (room, newest) in self.delivery.rooms_with_members() {
            let Ok(messages) = self.store.history(&room, None, CATCH_UP_MAX).await else {
                continue;
            };
            for message in messages {
                let missed = match (newest, MessageId::parse(&message.id)) {
                    (Some(newest), Some(id)) => id > newest,
                    _ => message.ts >= since_ms,
                };
                if missed {
                    self.delivery.deliver_local(&ChatOut::Message(message)).await;
                    delivered += 1;
                }
            }
        }
        if delivered > 0 {
            tracing::info!(delivered, "chat caught up after a Redis reconnect");
        }
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
