//! Per-socket state, kept in the socket's extensions: who it is, what it is
//! subscribed to, its rate limiter, and its place in the event order.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use super::Realtime;
use super::sequencer::{Sequencer, Ticket};
use crate::auth::token::Identity;
use crate::market::groups::GroupId;
use crate::rate_limit::SocketLimiter;

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
    /// The shared services; handlers get them from their `Call`, not from here.
    services: Arc<Realtime>,
    identity: RwLock<Option<Identity>>,
    subscriptions: Mutex<Subscriptions>,
    limiter: SocketLimiter,
    sequencer: Arc<Sequencer>,
    /// Connected with `auth.recover = true`: recoverable events carry offsets.
    recover: bool,
}

impl Session {
    pub fn new(realtime: Arc<Realtime>, identity: Option<Identity>, recover: bool) -> Self {
        let subscriptions = Subscriptions {
            price_slice: realtime.price_groups.next_slice(),
            ..Subscriptions::default()
        };
        Self {
            limiter: SocketLimiter::new(realtime.rate_limits.clone()),
            services: realtime,
            identity: RwLock::new(identity),
            subscriptions: Mutex::new(subscriptions),
            sequencer: Arc::default(),
            recover,
        }
    }

    /// Whether the socket asked for offsets (`auth.recover` at connect).
    pub fn recover(&self) -> bool {
        self.recover
    }

    pub(super) fn limiter(&self) -> &SocketLimiter {
        &self.limiter
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
    pub(super) fn ticket(&self) -> Ticket {
        self.sequencer.ticket()
    }

    pub(super) fn services(&self) -> &Arc<Realtime> {
        &self.services
    }
}
