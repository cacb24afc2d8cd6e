//! Per-socket state, kept in the socket's extensions: who it is, what it is
//! subscribed to, its rate limiter, and the sequencer that runs its events one
//! at a time in arrival order.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;

use super::Realtime;
use super::rate_limit::SocketLimiter;
use crate::auth::token::Identity;
use crate::market::groups::GroupId;

/// What one socket holds in price and trades rooms.
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub prices: BTreeSet<String>,
    pub trades: BTreeSet<String>,
    /// The price group (and so the batch room) of `prices`.
    pub price_group: Option<GroupId>,
    /// The batch slice this socket belongs to for its lifetime.
    pub price_slice: usize,
    /// Chat rooms joined (room ids, without the `chat:` prefix).
    pub chat_rooms: BTreeSet<String>,
}

impl Subscriptions {
    pub fn total(&self) -> usize {
        self.prices.len() + self.trades.len()
    }
}

pub struct Session {
    pub realtime: Arc<Realtime>,
    identity: RwLock<Option<Identity>>,
    pub subscriptions: Mutex<Subscriptions>,
    pub limiter: SocketLimiter,
    sequencer: Arc<Sequencer>,
}

impl Session {
    pub fn new(realtime: Arc<Realtime>, identity: Option<Identity>) -> Self {
        let subscriptions = Subscriptions {
            price_slice: realtime.price_groups.next_slice(),
            ..Subscriptions::default()
        };
        Self {
            limiter: SocketLimiter::new(realtime.rate_limits.clone()),
            realtime,
            identity: RwLock::new(identity),
            subscriptions: Mutex::new(subscriptions),
            sequencer: Arc::default(),
        }
    }

    pub fn identity(&self) -> Option<Identity> {
        self.identity.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the identity and returns the previous one.
    pub fn set_identity(&self, identity: Option<Identity>) -> Option<Identity> {
        std::mem::replace(
            &mut *self.identity.write().unwrap_or_else(|e| e.into_inner()),
            identity,
        )
    }

    pub fn subscriptions(&self) -> std::sync::MutexGuard<'_, Subscriptions> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next place in this socket's queue (called in arrival order).
    pub fn ticket(&self) -> Ticket {
        let number = self.sequencer.issued.fetch_add(1, Ordering::AcqRel);
        Ticket {
            sequencer: self.sequencer.clone(),
            number,
        }
    }
}

/// Hands out turns in the order tickets were issued. socketioxide spawns one
/// task per event, and tasks may run in any order; events of one socket must not.
#[derive(Default)]
struct Sequencer {
    issued: AtomicU64,
    served: AtomicU64,
    turn_changed: Notify,
}

impl Sequencer {
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
