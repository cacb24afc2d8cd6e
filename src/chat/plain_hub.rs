//! Members of chat rooms connected over the plain WebSocket endpoint, on this
//! node. Each connection has an [`Outbox`] bounded in bytes; a member whose
//! outbox overflows is dropped from the room and its connection closes with
//! 1008 (it can reconnect and read history), so a slow client never holds up
//! the room nor the server's memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

pub use super::outbox::{Frame, Outbox};

/// A room's connections on this node: id → (its user, its outbox).
type Members = HashMap<u64, (String, Arc<Outbox>)>;

pub struct PlainHub {
    /// room → connection id → (its user, its outbox).
    rooms: Mutex<HashMap<String, Members>>,
    /// Each user's connections, to send them away (`kick_user`).
    users: Mutex<HashMap<String, HashMap<u64, CancellationToken>>>,
    next_id: AtomicU64,
    /// Bytes one member may have queued.
    max_queued_bytes: usize,
}

impl PlainHub {
    pub fn new(max_queued_bytes: usize) -> Self {
        Self {
            rooms: Mutex::default(),
            users: Mutex::default(),
            next_id: AtomicU64::new(0),
            max_queued_bytes,
        }
    }

    /// Adds `user_id`'s connection to `room_id`; returns its id, its outbox,
    /// and the token that fires when the user is sent away.
    pub fn join(&self, room_id: &str, user_id: &str) -> (u64, Arc<Outbox>, CancellationToken) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kicked = CancellationToken::new();
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(user_id.to_owned())
            .or_default()
            .insert(id, kicked.clone());
        let outbox = Arc::new(Outbox::new(self.max_queued_bytes));
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(room_id.to_owned())
            .or_default()
            .insert(id, (user_id.to_owned(), outbox.clone()));
        (id, outbox, kicked)
    }

    pub fn leave(&self, room_id: &str, user_id: &str, id: u64) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(connections) = users.get_mut(user_id) {
            connections.remove(&id);
            if connections.is_empty() {
                users.remove(user_id);
            }
        }
        drop(users);
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = rooms.get_mut(room_id) {
            members.remove(&id);
            if members.is_empty() {
                rooms.remove(room_id);
            }
        }
    }

    /// Queues `frame` for every member of `room_id` (but `except_user`'s
    /// connections); drops members that cannot keep up.
    pub fn send(&self, room_id: &str, frame: Frame, except_user: Option<&str>) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = rooms.get_mut(room_id) {
            members.retain(|id, (user, outbox)| {
                if except_user == Some(user.as_str()) {
                    return true;
                }
                match outbox.push(frame.clone()) {
                    Ok(()) => true,
                    Err(_) => {
                        tracing::warn!(
                            room = room_id,
                            member = id,
                            "plain WebSocket client too slow: dropped"
                        );
                        false
                    }
                }
            });
        }
    }

    /// The rooms with a plain member on this node.
    pub fn rooms(&self) -> Vec<String> {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Fires the kick token of every connection of `user_id`; returns how many.
    pub fn kick_user(&self, user_id: &str) -> usize {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let Some(connections) = users.get(user_id) else {
            return 0;
        };
        connections.values().for_each(CancellationToken::cancel);
        connections.len()
    }

    #[cfg(test)]
    fn members(&self, room_id: &str) -> usize {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(room_id)
            .map_or(0, HashMap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;
    use std::task::{Context, Poll};

    #[test]
    fn an_overflowing_outbox_drops_only_that_member() {
        let hub = PlainHub::new(100);
        let (_slow_id, slow, _) = hub.join("r", "slow");
        let (_fast_id, fast, _) = hub.join("r", "fast");
        let mut cx = Context::from_waker(noop_waker_ref());
        for i in 0..50 {
            hub.send("r", format!("{i:>9}").into(), None);
            assert_eq!(
                fast.poll_pop(&mut cx),
                Poll::Ready(Some(format!("{i:>9}").into()))
            );
        }
        assert_eq!(hub.members("r"), 1, "the member that never read was dropped");
        assert!(slow.overflowed());
    }
}
