//! `resume` (CONTRACT §8): `{ offsets: { "<room>": "<last offset seen>" } }`.
//! For each room the socket may be in — its own `user:<sub>`, and
//! `trades:<symbol>` for a valid symbol within `--max-subscriptions` — it
//! joins, gets the events it missed (each with its offset), then live events;
//! the ack says how many were replayed and which rooms had a gap.

use serde_json::Value;

use super::markets::{MarketError, hold_trades};
use super::ordered::{Call, Turn};
use crate::market::symbol::Symbol;
use crate::protocol::{ResumeAck, trades_room, user_room};
use crate::recovery::offset::Offset;

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("resume needs a socket that connected with auth.recover = true")]
    NotRecovering,
    #[error("expected {{ offsets: {{ \"<room>\": \"<offset>\", ... }} }}")]
    Shape,
    #[error("invalid offset for room {0:?}: an offset is a string like \"1700000000000-0\"")]
    BadOffset(String),
    #[error("too many rooms: at most {0}")]
    TooMany(usize),
    #[error(transparent)]
    Market(#[from] MarketError),
}

pub async fn resume(call: &Call, _turn: &Turn) -> Result<ResumeAck, ResumeError> {
    if !call.session.recover() {
        return Err(ResumeError::NotRecovering);
    }
    let offsets = match &call.payload {
        Ok(Value::Object(map)) => match map.get("offsets") {
            Some(Value::Object(offsets)) => offsets,
            _ => return Err(ResumeError::Shape),
        },
        _ => return Err(ResumeError::Shape),
    };
    let max = call.services.max_subscriptions;
    if offsets.len() > max + 1 {
        return Err(ResumeError::TooMany(max + 1));
    }
    let own_room = call.session.identity().map(|i| user_room(&i.user_id));
    let mut rooms = Vec::new();
    let mut symbols = Vec::new();
    let mut refused = Vec::new();
    for (room, offset) in offsets {
        let offset: Offset = offset
            .as_str()
            .and_then(|o| o.parse().ok())
            .ok_or_else(|| ResumeError::BadOffset(room.clone()))?;
        let symbol = room
            .strip_prefix("trades:")
            .and_then(|s| Symbol::parse(s).ok())
            .filter(|s| super::markets::is_entitled(call, s));
        if let Some(symbol) = symbol {
            rooms.push((trades_room(symbol.as_str()), offset));
            symbols.push(symbol);
        } else if own_room.as_ref() == Some(room) {
            rooms.push((room.clone(), offset));
        } else {
            refused.push(room.clone());
        }
    }
    hold_trades(&call.session, &symbols, max)?;
    let (replayed, gaps) = call.services.recovery.resume(&call.socket, rooms).await;
    Ok(ResumeAck {
        ok: true,
        replayed,
        gaps,
        refused,
    })
}
