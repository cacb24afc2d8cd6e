//! Runs one socket's events one at a time, in arrival order. socketioxide
//! spawns one task per event, and tasks may run in any order; events of one
//! socket must not. A [`Ticket`] is taken in arrival order (in the extractor,
//! before the task is spawned); its turn comes when every earlier ticket is
//! dropped. The sequencer lives inside what owns it (a socket's session), so
//! a socket costs no allocation of its own for it.

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

impl AsRef<Sequencer> for Sequencer {
    fn as_ref(&self) -> &Sequencer {
        self
    }
}

impl Sequencer {
    /// Takes the next place in the queue of `owner`'s sequencer (call in arrival order).
    pub fn ticket<O: AsRef<Sequencer> + Send + Sync + 'static>(owner: &Arc<O>) -> Ticket<O> {
        let number = (**owner).as_ref().issued.fetch_add(1, Ordering::AcqRel);
        Ticket {
            owner: owner.clone(),
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

/// One event's place in its socket's queue (in the sequencer of `O`). Its
/// turn ends when it is dropped.
pub struct Ticket<O: AsRef<Sequencer> + Send + Sync + 'static> {
    owner: Arc<O>,
    number: u64,
}

impl<O: AsRef<Sequencer> + Send + Sync + 'static> Ticket<O> {
    fn sequencer(&self) -> &Sequencer {
        (*self.owner).as_ref()
    }

    /// Resolves when every earlier event of the socket has finished.
    pub async fn wait_turn(&self) {
        self.sequencer().wait_for(self.number).await;
    }
}

impl<O: AsRef<Sequencer> + Send + Sync + 'static> Drop for Ticket<O> {
    fn drop(&mut self) {
        if self.sequencer().served.load(Ordering::Acquire) == self.number {
            self.sequencer().advance();
            return;
        }
        // Dropped before its turn (the handler never waited): pass the turn on when it comes.
        let owner = self.owner.clone();
        let number = self.number;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let sequencer = (*owner).as_ref();
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
        let tickets: Vec<Ticket<Sequencer>> = (0..50).map(|_| Sequencer::ticket(&sequencer)).collect();
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
        let issue = || Sequencer::ticket(&sequencer);
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
