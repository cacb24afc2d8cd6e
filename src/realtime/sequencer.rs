//! Runs one socket's events one at a time, in arrival order. socketioxide
//! spawns one task per event, and tasks may run in any order; events of one
//! socket must not. A [`Ticket`] is taken in arrival order (in the extractor,
//! before the task is spawned); its turn comes when every earlier ticket is
//! dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// Hands out turns in the order tickets were issued. socketioxide spawns one
/// task per event, and tasks may run in any order; events of one socket must not.
#[derive(Default)]
pub struct Sequencer {
    issued: AtomicU64,
    served: AtomicU64,
    turn_changed: Notify,
}

impl Sequencer {
    /// Takes the next place in the queue (call in arrival order).
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        let number = self.issued.fetch_add(1, Ordering::AcqRel);
        Ticket {
            sequencer: self.clone(),
            number,
        }
    }

    async fn wait_for(&self, number: u64) {
        loop {
            let notified = self.turn_changed.notified();
            if self.served.load(Ordering::Acquire) == number {
                return;
            }
            notified.await;
        }
    }

    fn advance(&self) {
        self.served.fetch_add(1, Ordering::AcqRel);
        self.turn_changed.notify_waiters();
    }
}

/// One event's place in its socket's queue. Its turn ends when it is dropped.
pub struct Ticket {
    sequencer: Arc<Sequencer>,
    number: u64,
}

impl Ticket {
    /// Resolves when every earlier event of the socket has finished.
    pub async fn wait_turn(&self) {
        self.sequencer.wait_for(self.number).await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.sequencer.served.load(Ordering::Acquire) == self.number {
            self.sequencer.advance();
            return;
        }
        // Dropped before its turn (the handler never waited): pass the turn on when it comes.
        let sequencer = self.sequencer.clone();
        let number = self.number;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                sequencer.wait_for(number).await;
                sequencer.advance();
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tickets_run_in_issue_order_whatever_order_tasks_start() {
        let sequencer = Arc::new(Sequencer::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let tickets: Vec<Ticket> = (0..50)
            .map(|_| Ticket {
                number: sequencer.issued.fetch_add(1, Ordering::AcqRel),
                sequencer: sequencer.clone(),
            })
            .collect();
        let mut tasks = Vec::new();
        // Spawn in reverse so that later tickets are likely to be polled first.
        for ticket in tickets.into_iter().rev() {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                ticket.wait_turn().await;
                tokio::task::yield_now().await;
                log.lock().unwrap().push(ticket.number);
            }));
        }
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_ticket_dropped_unused_does_not_stall_the_queue() {
        let sequencer = Arc::new(Sequencer::default());
        let issue = || Ticket {
            number: sequencer.issued.fetch_add(1, Ordering::AcqRel),
            sequencer: sequencer.clone(),
        };
        let first = issue();
        let second = issue();
        let third = issue();
        drop(second);
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), third.wait_turn())
            .await
            .expect("third gets its turn");
    }
}
