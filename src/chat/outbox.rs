//! The outgoing queue of one plain WebSocket connection, bounded in bytes.
//! Room deliveries and the connection's own replies go through it, in order;
//! the connection's writer takes frames out as the client reads. Adding a
//! frame that would pass the bound empties the queue and marks it overflowed:
//! the connection then closes with 1008 instead of holding the data.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One ready-made JSON text frame (cheap to clone: shared bytes).
pub type Frame = Utf8Bytes;

/// The client is too far behind: the frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

pub struct Outbox {
    state: Mutex<State>,
    writer: AtomicWaker,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    overflowed: bool,
}

impl Outbox {
    /// A queue holding at most `max_bytes` of frames (one frame of any size
    /// is always accepted into an empty queue).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::default(),
            writer: AtomicWaker::new(),
            max_bytes,
        }
    }

    pub fn push(&self, frame: Frame) -> Result<(), Overflow> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.overflowed {
            return Err(Overflow);
        }
        let len = frame.len();
        let result = if state.bytes > 0 && state.bytes + len > self.max_bytes {
            state.overflowed = true;
            state.frames = VecDeque::new();
            state.bytes = 0;
            Err(Overflow)
        } else {
            state.bytes += len;
            state.frames.push_back(frame);
            Ok(())
        };
        drop(state);
        self.writer.wake();
        result
    }

    /// The writer's side: the next frame, `Ready(None)` once overflowed.
    pub fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        self.writer.register(cx.waker());
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.overflowed {
            return Poll::Ready(None);
        }
        match state.frames.pop_front() {
            Some(frame) => {
                state.bytes -= frame.len();
                Poll::Ready(Some(frame))
            }
            None => Poll::Pending,
        }
    }

    pub fn overflowed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).overflowed
    }

    /// Bytes waiting.
    #[cfg(test)]
    fn queued_bytes(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    fn pop(outbox: &Outbox) -> Poll<Option<Frame>> {
        outbox.poll_pop(&mut Context::from_waker(noop_waker_ref()))
    }

    #[test]
    fn frames_come_out_in_order_and_the_bound_is_in_bytes() {
        let outbox = Outbox::new(10);
        outbox.push("aaaa".into()).unwrap();
        outbox.push("bbbb".into()).unwrap();
        assert_eq!(outbox.queued_bytes(), 8);
        assert_eq!(pop(&outbox), Poll::Ready(Some("aaaa".into())));
        outbox.push("cccccc".into()).unwrap();
        assert_eq!(outbox.queued_bytes(), 10);
        assert_eq!(outbox.push("d".into()), Err(Overflow));
        assert_eq!(outbox.queued_bytes(), 0, "an overflowed queue lets its data go");
        assert_eq!(pop(&outbox), Poll::Ready(None));
        assert_eq!(outbox.push("e".into()), Err(Overflow));
    }

    #[test]
    fn one_big_frame_fits_an_empty_queue() {
        let outbox = Outbox::new(4);
        assert_eq!(pop(&outbox), Poll::Pending);
        outbox.push("0123456789".into()).unwrap();
        assert_eq!(outbox.push("x".into()), Err(Overflow));
    }
}
