//! Market rooms: `subscribe:price`, `unsubscribe:price`, `subscribe:trades`,
//! `unsubscribe:trades` (CONTRACT §3). A socket holds at most
//! `--max-subscriptions` price and trades rooms together; a call that would go
//! over, or names an invalid symbol, joins nothing and gets an error.

use socketioxide::extract::SocketRef;

use super::ordered::{Call, Turn};
use super::session::{Session, Subscriptions};
use crate::market::rooms::{MarketRoom, Room, RoomSet};
use crate::market::symbol::{Symbol, parse_symbol_list};
use crate::protocol::{PRICE_BATCH, RoomsAck, batch_room};
use crate::recovery::Hold;

/// Which market feed a call is about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Price,
    Trades,
}

impl Feed {
    fn room(self, symbol: &Symbol) -> MarketRoom {
        match self {
            Feed::Price => MarketRoom::price(symbol.as_str()),
            Feed::Trades => MarketRoom::trades(symbol.as_str()),
        }
    }

    fn held(self, subs: &mut Subscriptions) -> &mut RoomSet {
        match self {
            Feed::Price => &mut subs.prices,
            Feed::Trades => &mut subs.trades,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("{0}")]
    Invalid(String),
    #[error("not entitled to {0}")]
    NotEntitled(String),
    #[error(
        "subscription limit reached: a socket may hold {max} price and trades rooms together (holds {holds})"
    )]
    LimitReached { max: usize, holds: usize },
}

fn symbols_of(call: &Call) -> Result<Vec<Symbol>, MarketError> {
    let payload = call
        .payload
        .as_ref()
        .map_err(|e| MarketError::Invalid(e.clone()))?;
    parse_symbol_list(payload, call.services.max_subscriptions).map_err(MarketError::Invalid)
}

/// Refuses the first symbol the socket may not subscribe to: the token's
/// `symbols` claim when it has one, else `--public-symbols`.
fn check_entitled(call: &Call, symbols: &[Symbol]) -> Result<(), MarketError> {
    let refused = symbols.iter().find(|s| !is_entitled(call, s)).cloned();
    match refused {
        Some(symbol) => Err(MarketError::NotEntitled(symbol.to_string())),
        None => Ok(()),
    }
}

/// Whether the socket may subscribe to `symbol`.
pub fn is_entitled(call: &Call, symbol: &Symbol) -> bool {
    let public = &call.services.public_symbols;
    call.session.with_identity(|identity| {
        let allowed = identity.and_then(|i| i.symbols.as_ref()).unwrap_or(public);
        allowed.allows(symbol.as_str())
    })
}

/// Joins the rooms of the payload's symbols; acks them, or why nothing was joined.
pub fn subscribe(call: &Call, _turn: &Turn, feed: Feed) -> Result<RoomsAck, MarketError> {
    join_rooms(call, feed).map(|(ack, _)| ack)
}

/// `subscribe:price`, then one `price:batch` with the latest known price of
/// each newly subscribed symbol that has one (nothing when none has).
pub async fn subscribe_price(call: &Call, _turn: &Turn) -> Result<RoomsAck, MarketError> {
    let (ack, new) = join_rooms(call, Feed::Price)?;
    if !new.is_empty() {
        let symbols: Vec<&str> = new.iter().map(MarketRoom::symbol).collect();
        let latest = call.services.latest.lookup(&symbols).await;
        if !latest.is_empty() {
            let _ = call.socket.emit(PRICE_BATCH, &latest);
        }
    }
    Ok(ack)
}

/// Joins the payload's rooms; returns the ack and the newly subscribed rooms.
fn join_rooms(call: &Call, feed: Feed) -> Result<(RoomsAck, Vec<MarketRoom>), MarketError> {
    let symbols = symbols_of(call)?;
    check_entitled(call, &symbols)?;
    let max = call.services.max_subscriptions;
    let session = &call.session;
    let mut subs = session.subscriptions();
    let rooms: Vec<MarketRoom> = symbols.iter().map(|s| feed.room(s)).collect();
    let held = feed.held(&mut subs);
    let new: Vec<MarketRoom> = rooms.iter().filter(|r| !held.contains(r)).cloned().collect();
    if subs.total() + new.len() > max {
        return Err(MarketError::LimitReached {
            max,
            holds: subs.total(),
        });
    }
    let names: Vec<Room> = rooms.iter().map(MarketRoom::room).collect();
    super::join(call, names.clone(), Hold::No);
    if !new.is_empty() {
        let held = feed.held(&mut subs);
        *held = held.with(new.iter().cloned());
        if feed == Feed::Price {
            regroup(&call.socket, session, &mut subs);
        }
    }
    Ok((
        RoomsAck {
            ok: true,
            rooms: names,
        },
        new,
    ))
}

/// Takes `trades:<symbol>` rooms into the socket's subscriptions (for
/// `resume`, which joins them itself): all, or none past `--max-subscriptions`.
pub fn hold_trades(session: &Session, symbols: &[Symbol], max: usize) -> Result<(), MarketError> {
    let mut subs = session.subscriptions();
    let new: RoomSet = symbols
        .iter()
        .map(|s| Feed::Trades.room(s))
        .filter(|r| !subs.trades.contains(r))
        .collect();
    if subs.total() + new.len() > max {
        return Err(MarketError::LimitReached {
            max,
            holds: subs.total(),
        });
    }
    subs.trades = subs.trades.with(new.rooms());
    Ok(())
}

/// Leaves the rooms of the payload's symbols; acks them.
pub fn unsubscribe(call: &Call, _turn: &Turn, feed: Feed) -> Result<RoomsAck, MarketError> {
    let symbols = symbols_of(call)?;
    let session = &call.session;
    let mut subs = session.subscriptions();
    let rooms: Vec<MarketRoom> = symbols.iter().map(|s| feed.room(s)).collect();
    let names: Vec<Room> = rooms.iter().map(MarketRoom::room).collect();
    super::leave(call, names.clone());
    let held = feed.held(&mut subs);
    let before = held.len();
    *held = held.without(&rooms);
    if feed == Feed::Price && held.len() != before {
        regroup(&call.socket, session, &mut subs);
    }
    Ok(RoomsAck {
        ok: true,
        rooms: names,
    })
}

/// Moves the socket to the batch room of its (changed) price set.
fn regroup(socket: &SocketRef, session: &Session, subs: &mut Subscriptions) {
    let old = subs.price_group;
    let new = session
        .services()
        .price_groups
        .reassign(old, subs.price_slice, &subs.prices);
    if let Some(old) = old {
        socket.leave(batch_room(old));
    }
    subs.price_group = match new {
        Some((group, shared)) => {
            socket.join(batch_room(group));
            subs.prices = shared;
            Some(group)
        }
        None => None,
    };
}

/// Releases the socket's price group when it goes away (rooms go with the socket).
pub fn forget_subscriptions(session: &Session) {
    let mut subs = session.subscriptions();
    if let Some(group) = subs.price_group.take() {
        session
            .services()
            .price_groups
            .reassign(Some(group), subs.price_slice, &RoomSet::default());
    }
}
