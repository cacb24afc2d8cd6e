//! Members of chat rooms connected over the plain WebSocket endpoint, on this
//! node. Each connection has a bounded queue of ready-made frames; a member
//! whose queue is full is dropped from the room (its connection then closes
//! and it can reconnect and read history), so a slow client never holds up the room.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

/// Frames one plain connection may have waiting.
const QUEUE: usize = 256;

pub type Frame = std::sync::Arc<str>;

#[derive(Default)]
pub struct PlainHub {
    rooms: Mutex<HashMap<String, HashMap<u64, mpsc::Sender<Frame>>>>,
    next_id: AtomicU64,
}

impl PlainHub {
    /// Adds a member to `room_id`; returns its id and its frame queue.
    pub fn join(&self, room_id: &str) -> (u64, mpsc::Receiver<Frame>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(room_id.to_owned())
            .or_default()
            .insert(id, tx);
        (id, rx)
    }

    pub fn leave(&self, room_id: &str, id: u64) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = rooms.get_mut(room_id) {
            members.remove(&id);
            if members.is_empty() {
                rooms.remove(room_id);
            }
        }
    }

    /// Queues `frame` for every member of `room_id`; drops members that cannot keep up.
    pub fn send(&self, room_id: &str, frame: Frame) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = rooms.get_mut(room_id) {
            members.retain(|id, tx| match tx.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        room = room_id,
                        member = id,
                        "plain WebSocket client too slow: dropped"
                    );
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
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

    #[tokio::test]
    async fn a_full_queue_drops_only_that_member() {
        let hub = PlainHub::default();
        let (_slow_id, slow) = hub.join("r");
        let (_fast_id, mut fast) = hub.join("r");
        for i in 0..QUEUE + 5 {
            hub.send("r", format!("{i}").into());
            assert_eq!(fast.recv().await.as_deref(), Some(i.to_string().as_str()));
        }
        assert_eq!(hub.members("r"), 1, "the member that never read was dropped");
        drop(slow);
    }
}
