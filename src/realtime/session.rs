//! Per-socket state: who it is, what it is subscribed to, its rate limiter,
//! and its place in the event order. Held by the socket's two handlers (its
//! event handler and its disconnect handler), not in socketioxide's
//! per-socket extensions map (a hash table allocated per socket). Kept small
//! for an idle socket (memory per connection, BENCHMARKS.md): the identity is
//! boxed (most sockets of a market feed are anonymous), the sequencer lives
//! inline, rate-limit buckets appear on first use.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use super::Realtime;
use tokio::task::AbortHandle;

use super::sequencer::{Sequencer, Ticket};
use crate::auth::token::Identity;
use crate::market::groups::GroupId;
use crate::market::rooms::RoomSet;
use crate::rate_limit::SocketLimiter;

/// What one socket holds in price and trades rooms (interned names; the
/// price set is shared with the socket's price group).
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub prices: RoomSet,
    pub trades: RoomSet,
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
    identity: RwLock<Option<Box<Identity>>>,
    subscriptions: Mutex<Subscriptions>,
    limiter: SocketLimiter,
    sequencer: Sequencer,
    /// The task watching the token's expiry, while authenticated.
    expiry_watch: Mutex<Option<AbortHandle>>,
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
            identity: RwLock::new(identity.map(Box::new)),
            subscriptions: Mutex::new(subscriptions),
            sequencer: Sequencer::default(),
            expiry_watch: Mutex::default(),
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
        self.identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .cloned()
    }

    /// Calls `f` with the user id, without copying it.
    pub fn with_user_id<T>(&self, f: impl FnOnce(Option<&str>) -> T) -> T {
        self.with_identity(|identity| f(identity.map(|i| i.user_id.as_str())))
    }

    /// Calls `f` with the identity, without copying it.
    pub fn with_identity<T>(&self, f: impl FnOnce(Option<&Identity>) -> T) -> T {
        let identity = self.identity.read().unwrap_or_else(|e| e.into_inner());
        f(identity.as_deref())
    }

    /// Replaces the identity and returns the previous one.
    pub fn set_identity(&self, identity: Option<Identity>) -> Option<Identity> {
        std::mem::replace(
            &mut *self.identity.write().unwrap_or_else(|e| e.into_inner()),
            identity.map(Box::new),
        )
        .map(|previous| *previous)
    }

    /// Takes the identity away when `still` holds for it (checked under the lock).
    pub fn take_identity_if(&self, still: impl FnOnce(&Identity) -> bool) -> Option<Identity> {
        let mut identity = self.identity.write().unwrap_or_else(|e| e.into_inner());
        if identity.as_deref().is_some_and(still) {
            identity.take().map(|taken| *taken)
        } else {
            None
        }
    }

    /// Replaces the expiry watch (aborting the previous one).
    pub fn set_expiry_watch(&self, watch: Option<AbortHandle>) {
        let previous = std::mem::replace(
            &mut *self.expiry_watch.lock().unwrap_or_else(|e| e.into_inner()),
            watch,
        );
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    pub fn subscriptions(&self) -> std::sync::MutexGuard<'_, Subscriptions> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next place in this socket's queue (called in arrival order).
    pub(super) fn ticket(self: &Arc<Self>) -> Ticket<Session> {
        Sequencer::ticket(self)
    }

    pub(super) fn services(&self) -> &Arc<Realtime> {
        &self.services
    }
}

impl AsRef<Sequencer> for Session {
    fn as_ref(&self) -> &Sequencer {
        &self.sequencer
    }
}
