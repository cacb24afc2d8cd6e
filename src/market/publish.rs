//! What a service may publish (CONTRACT §4, §5): prices, trades and emits,
//! read from JSON. Parsing is all or nothing: one bad item refuses the lot,
//! with an error that names the item and what is wrong with it.

use serde::Serialize;
use serde_json::{Map, Value};

use super::symbol::{SYMBOL_RULE, is_valid_symbol};
use crate::protocol::RESERVED_EVENTS;

/// Longest event name the emit API accepts.
const MAX_EVENT_NAME: usize = 128;
/// Longest room name the emit API accepts.
const MAX_ROOM_NAME: usize = 256;

/// One published price; serialized as the `price:update` payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Price {
    pub symbol: String,
    pub price: f64,
    pub ts: u64,
}

/// One published trade: the object as published, with a valid `symbol`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    pub symbol: String,
    pub body: Map<String, Value>,
}

/// One emit request: `event` with `data` to `rooms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Emit {
    pub rooms: Vec<String>,
    pub event: String,
    pub data: Value,
}

/// Why a publish body (HTTP, Redis channel or envelope) was refused; the
/// message says which item and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidItems(pub String);

/// An object or an array of objects: each parsed by `parse_item`, all or nothing.
fn parse_all<T>(
    body: Value,
    parse_item: impl Fn(Value) -> Result<T, String>,
) -> Result<Vec<T>, InvalidItems> {
    match body {
        Value::Array(items) if items.is_empty() => {
            Err(InvalidItems("empty array: nothing to publish".into()))
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| parse_item(item).map_err(|e| InvalidItems(format!("item {i}: {e}"))))
            .collect(),
        item => parse_item(item).map(|one| vec![one]).map_err(InvalidItems),
    }
}

fn object(item: Value) -> Result<Map<String, Value>, String> {
    match item {
        Value::Object(map) => Ok(map),
        other => Err(format!("expected a JSON object, got {}", type_name(&other))),
    }
}

fn symbol_of(map: &Map<String, Value>) -> Result<String, String> {
    match map.get("symbol") {
        Some(Value::String(s)) if is_valid_symbol(s) => Ok(s.clone()),
        Some(Value::String(s)) => Err(format!("invalid symbol {s:?}: {SYMBOL_RULE}")),
        Some(other) => Err(format!("symbol must be a string, got {}", type_name(other))),
        None => Err("missing field `symbol`".into()),
    }
}

/// Prices: `{symbol, price, ts?}` or an array of them. `now_ms` stands in for a missing `ts`.
pub fn parse_prices(body: Value, now_ms: u64) -> Result<Vec<Price>, InvalidItems> {
    parse_all(body, |item| {
        let map = object(item)?;
        let symbol = symbol_of(&map)?;
        let price = match map.get("price") {
            Some(Value::Number(n)) => n.as_f64().ok_or("price must be a number")?,
            Some(other) => return Err(format!("price must be a number, got {}", type_name(other))),
            None => return Err("missing field `price`".into()),
        };
        let ts = match map.get("ts") {
            None | Some(Value::Null) => now_ms,
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or("ts must be milliseconds since the Unix epoch (a whole number)")?,
            Some(other) => return Err(format!("ts must be a number, got {}", type_name(other))),
        };
        Ok(Price { symbol, price, ts })
    })
}

/// Trades: a trade object with a `symbol`, or an array of them.
pub fn parse_trades(body: Value) -> Result<Vec<Trade>, InvalidItems> {
    parse_all(body, |item| {
        let body = object(item)?;
        Ok(Trade {
            symbol: symbol_of(&body)?,
            body,
        })
    })
}

/// Emits: `{rooms: [..] | room, event, data}` or an array of them.
pub fn parse_emits(body: Value) -> Result<Vec<Emit>, InvalidItems> {
    parse_all(body, |item| {
        let mut map = object(item)?;
        let rooms = match (map.remove("rooms"), map.remove("room")) {
            (Some(_), Some(_)) => return Err("give either `rooms` or `room`, not both".into()),
            (Some(Value::Array(rooms)), None) if !rooms.is_empty() => rooms
                .into_iter()
                .map(|r| room_name(&r))
                .collect::<Result<Vec<_>, _>>()?,
            (Some(Value::Array(_)), None) => return Err("`rooms` must not be empty".into()),
            (Some(single), None) | (None, Some(single)) => vec![room_name(&single)?],
            (None, None) => return Err("missing field `rooms` (or `room`)".into()),
        };
        let event = match map.remove("event") {
            Some(Value::String(e)) if e.is_empty() || e.len() > MAX_EVENT_NAME => {
                return Err(format!("event must be 1-{MAX_EVENT_NAME} characters"));
            }
            Some(Value::String(e)) if RESERVED_EVENTS.contains(&e.as_str()) => {
                return Err(format!("event {e:?} is reserved by Socket.IO"));
            }
            Some(Value::String(e)) => e,
            Some(other) => return Err(format!("event must be a string, got {}", type_name(&other))),
            None => return Err("missing field `event`".into()),
        };
        let data = map.remove("data").unwrap_or(Value::Null);
        Ok(Emit { rooms, event, data })
    })
}

fn room_name(value: &Value) -> Result<String, String> {
    match value {
        Value::String(r) if !r.is_empty() && r.len() <= MAX_ROOM_NAME => Ok(r.clone()),
        Value::String(_) => Err(format!("a room name must be 1-{MAX_ROOM_NAME} characters")),
        other => Err(format!("a room name must be a string, got {}", type_name(other))),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prices_one_or_many_with_server_time_when_ts_missing() {
        let one = parse_prices(json!({"symbol": "BTC", "price": 1.5}), 99).unwrap();
        assert_eq!(
            one,
            vec![Price {
                symbol: "BTC".into(),
                price: 1.5,
                ts: 99
            }]
        );
        let many = parse_prices(
            json!([{"symbol": "A", "price": 1, "ts": 5}, {"symbol": "B", "price": -2}]),
            7,
        )
        .unwrap();
        assert_eq!(many[0].ts, 5);
        assert_eq!(many[1].price, -2.0);
    }

    #[test]
    fn one_bad_price_refuses_the_lot_and_names_it() {
        let cases = [
            (
                json!([{"symbol": "A", "price": 1}, {"symbol": "B", "price": "2"}]),
                "item 1: price must be a number",
            ),
            (json!({"symbol": "A"}), "missing field `price`"),
            (json!({"price": 1}), "missing field `symbol`"),
            (json!({"symbol": "A B", "price": 1}), "invalid symbol"),
            (json!({"symbol": "A", "price": 1, "ts": -3}), "ts must be"),
            (json!({"symbol": "A", "price": 1, "ts": 1.5}), "ts must be"),
            (json!([]), "empty array"),
            (json!("BTC"), "expected a JSON object"),
        ];
        for (body, needle) in cases {
            let err = parse_prices(body.clone(), 0).unwrap_err();
            assert!(err.0.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn trades_keep_the_published_object() {
        let t = parse_trades(json!({"symbol": "ETH", "qty": 2, "side": "buy"})).unwrap();
        assert_eq!(t[0].symbol, "ETH");
        assert_eq!(t[0].body["side"], "buy");
        assert!(
            parse_trades(json!([{"symbol": "ETH"}, {"qty": 1}]))
                .unwrap_err()
                .0
                .starts_with("item 1")
        );
    }

    #[test]
    fn emits_take_room_or_rooms() {
        let e = parse_emits(json!({"room": "user:42", "event": "notification", "data": {"a": 1}})).unwrap();
        assert_eq!(e[0].rooms, vec!["user:42"]);
        let e = parse_emits(json!({"rooms": ["a", "b"], "event": "x"})).unwrap();
        assert_eq!((e[0].rooms.len(), &e[0].data), (2, &Value::Null));
        for (body, needle) in [
            (json!({"event": "x"}), "missing field `rooms`"),
            (json!({"rooms": [], "event": "x"}), "must not be empty"),
            (json!({"room": "a", "rooms": ["b"], "event": "x"}), "not both"),
            (json!({"room": 5, "event": "x"}), "must be a string"),
            (json!({"room": "a"}), "missing field `event`"),
            (json!({"room": "a", "event": "disconnect"}), "reserved"),
            (json!({"room": "a", "event": ""}), "1-128"),
        ] {
            let err = parse_emits(body.clone()).unwrap_err();
            assert!(err.0.contains(needle), "{body}: {err}");
        }
    }
}
