//! Market rooms: `subscribe:price`, `unsubscribe:price`, `subscribe:trades`,
//! `unsubscribe:trades` (CONTRACT §3). A socket holds at most
//! `--max-subscriptions` price and trades rooms together; a call that would go
//! over, or names an invalid symbol, joins nothing and gets an error.

use std::collections::BTreeSet;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};

use super::events::RoomsAck;
use super::inbound::Inbound;
use super::session::{Session, Subscriptions};
use crate::market::groups::group_room;
use crate::market::symbol::{parse_symbol_list, price_room, trades_room};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Price,
    Trades,
}

impl Kind {
    fn room(self, symbol: &str) -> String {
        match self {
            Kind::Price => price_room(symbol),
            Kind::Trades => trades_room(symbol),
        }
    }

    fn held(self, subs: &mut Subscriptions) -> &mut BTreeSet<String> {
        match self {
            Kind::Price => &mut subs.prices,
            Kind::Trades => &mut subs.trades,
        }
    }
}

pub async fn on_subscribe_price<A: Adapter>(i: Inbound<A>, d: TryData<Value>, ack: AckSender<A>) {
    handle(i, d, ack, Kind::Price, true).await
}

pub async fn on_unsubscribe_price<A: Adapter>(i: Inbound<A>, d: TryData<Value>, ack: AckSender<A>) {
    handle(i, d, ack, Kind::Price, false).await
}

pub async fn on_subscribe_trades<A: Adapter>(i: Inbound<A>, d: TryData<Value>, ack: AckSender<A>) {
    handle(i, d, ack, Kind::Trades, true).await
}

pub async fn on_unsubscribe_trades<A: Adapter>(i: Inbound<A>, d: TryData<Value>, ack: AckSender<A>) {
    handle(i, d, ack, Kind::Trades, false).await
}

async fn handle<A: Adapter>(
    inbound: Inbound<A>,
    TryData(payload): TryData<Value>,
    ack: AckSender<A>,
    kind: Kind,
    subscribe: bool,
) {
    inbound.turn().await;
    let symbols = match payload
        .map_err(|e| e.to_string())
        .and_then(|p| parse_symbol_list(&p))
    {
        Ok(symbols) => symbols,
        Err(message) => return inbound.fail(ack, &message),
    };
    let result = if subscribe {
        subscribe_to(&inbound.socket, &inbound.session, kind, &symbols)
    } else {
        unsubscribe_from(&inbound.socket, &inbound.session, kind, &symbols)
    };
    match result {
        Ok(rooms) => inbound.ok(
            ack,
            &RoomsAck {
                ok: true,
                rooms: &rooms,
            },
        ),
        Err(message) => inbound.fail(ack, &message),
    }
}

/// Joins the rooms of `symbols`; returns them, or why nothing was joined.
fn subscribe_to<A: Adapter>(
    socket: &SocketRef<A>,
    session: &Session,
    kind: Kind,
    symbols: &[String],
) -> Result<Vec<String>, String> {
    let max = session.realtime.max_subscriptions;
    let mut subs = session.subscriptions();
    let new: Vec<&String> = symbols
        .iter()
        .filter(|s| !kind.held(&mut subs).contains(*s))
        .collect();
    if subs.total() + new.len() > max {
        return Err(format!(
            "subscription limit reached: a socket may hold {max} price and trades rooms together (holds {})",
            subs.total()
        ));
    }
    let rooms: Vec<String> = symbols.iter().map(|s| kind.room(s)).collect();
    socket.join(rooms.clone());
    if !new.is_empty() {
        let held = kind.held(&mut subs);
        held.extend(new.into_iter().cloned());
        if kind == Kind::Price {
            regroup(socket, session, &mut subs);
        }
    }
    Ok(rooms)
}

/// Leaves the rooms of `symbols`; returns them.
fn unsubscribe_from<A: Adapter>(
    socket: &SocketRef<A>,
    session: &Session,
    kind: Kind,
    symbols: &[String],
) -> Result<Vec<String>, String> {
    let mut subs = session.subscriptions();
    let rooms: Vec<String> = symbols.iter().map(|s| kind.room(s)).collect();
    socket.leave(rooms.clone());
    let held = kind.held(&mut subs);
    let before = held.len();
    held.retain(|s| !symbols.contains(s));
    if kind == Kind::Price && held.len() != before {
        regroup(socket, session, &mut subs);
    }
    Ok(rooms)
}

/// Moves the socket to the batch room of its (changed) price set.
fn regroup<A: Adapter>(socket: &SocketRef<A>, session: &Session, subs: &mut Subscriptions) {
    let old = subs.price_group;
    let new = session
        .realtime
        .price_groups
        .reassign(old, subs.price_slice, &subs.prices);
    if let Some(old) = old {
        socket.leave(group_room(old));
    }
    if let Some(new) = new {
        socket.join(group_room(new));
    }
    subs.price_group = new;
}

/// Releases the socket's price group when it goes away (rooms go with the socket).
pub fn forget_subscriptions(session: &Session) {
    let mut subs = session.subscriptions();
    if let Some(group) = subs.price_group.take() {
        session
            .realtime
            .price_groups
            .reassign(Some(group), subs.price_slice, &BTreeSet::new());
    }
}
