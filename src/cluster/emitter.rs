//! The wire format of `@socket.io/redis-emitter` (key prefix `socket.io`,
//! namespace `/`), read so that Node services publishing with the official
//! emitter reach roomcast's sockets.
//!
//! Broadcasts arrive on `socket.io#/#` and, for exactly one room, on
//! `socket.io#/#<room>#` (hence the pattern subscription) as a msgpack array
//! `[uid, {type: 2, data: [event, ...args], nsp}, {rooms, except, flags}]`; the
//! payload alone says where it goes. Requests (`socketsJoin`, `socketsLeave`,
//! `disconnectSockets`, `serverSideEmit`) arrive as JSON on
//! `socket.io-request#/#`. Everything here is input from anyone who can
//! PUBLISH on the Redis: sizes are checked and nothing panics.

use rmpv::Value;
use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeTuple, Serializer};

/// Every broadcast of the emitter for namespace `/` (PSUBSCRIBE).
pub const BROADCAST_PATTERN: &str = "socket.io#/#*";
/// The emitter's requests for namespace `/` (SUBSCRIBE).
pub const REQUEST_CHANNEL: &str = "socket.io-request#/#";

/// socket.io-parser's EVENT packet type, the only one the emitter sends.
const EVENT: u64 = 2;
/// Longest event name accepted (as the emit API).
const MAX_EVENT_NAME: usize = 128;
/// Longest room name accepted (as the emit API).
const MAX_ROOM_NAME: usize = 256;
/// Most rooms (and except rooms) one message may name.
const MAX_ROOMS: usize = 1024;
/// Deepest nesting of an argument.
const MAX_DEPTH: usize = 64;
/// msgpack extension type of a JavaScript `Date` (notepack.io).
const EXT_DATE: i8 = -1;

/// One `emitter.to(..).except(..).emit(event, ...args)`.
#[derive(Debug, PartialEq)]
pub struct Broadcast {
    pub event: String,
    pub args: Vec<Value>,
    /// Sockets in any of these rooms; everyone when empty.
    pub rooms: Vec<String>,
    /// Minus the sockets in any of these rooms.
    pub except: Vec<String>,
}

/// Which sockets a request is about: `rooms` (everyone when empty) minus `except`.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct Selection {
    #[serde(default)]
    pub rooms: Vec<String>,
    #[serde(default)]
    pub except: Vec<String>,
}

/// One request of the emitter.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// `socketsJoin(rooms)`.
    Join { on: Selection, rooms: Vec<String> },
    /// `socketsLeave(rooms)`.
    Leave { on: Selection, rooms: Vec<String> },
    /// `disconnectSockets(close)`.
    Disconnect { on: Selection },
    /// `serverSideEmit(..)`, or a request type only other servers answer:
    /// roomcast has no server-side listeners, so nothing to do.
    Ignored,
}

/// Decodes one broadcast; `Ok(None)` for a message of another namespace or
/// packet type (not for this node).
pub fn decode_broadcast(payload: &[u8]) -> Result<Option<Broadcast>, String> {
    let value = rmpv::decode::read_value_with_max_depth(&mut &payload[..], MAX_DEPTH)
        .map_err(|e| format!("not msgpack: {e}"))?;
    let Value::Array(mut parts) = value else {
        return Err("not a msgpack array".into());
    };
    if parts.len() < 2 {
        return Err("expected [uid, packet, opts]".into());
    }
    let opts = if parts.len() > 2 {
        parts.swap_remove(2)
    } else {
        Value::Nil
    };
    let packet = parts.swap_remove(1);
    let nsp = field(&packet, "nsp").and_then(Value::as_str).unwrap_or("/");
    if nsp != "/" || field(&packet, "type").and_then(Value::as_u64) != Some(EVENT) {
        return Ok(None);
    }
    let Some(Value::Array(mut data)) = take_field(packet, "data") else {
        return Err("packet.data must be an array".into());
    };
    if data.is_empty() {
        return Err("packet.data has no event name".into());
    }
    let event = match data.remove(0) {
        Value::String(s) => s.into_str().ok_or("event name is not UTF-8")?,
        _ => return Err("event name must be a string".into()),
    };
    if event.is_empty() || event.len() > MAX_EVENT_NAME {
        return Err(format!("event must be 1-{MAX_EVENT_NAME} characters"));
    }
    if crate::protocol::RESERVED_EVENTS.contains(&event.as_str()) {
        return Err(format!("event {event:?} is reserved by Socket.IO"));
    }
    Ok(Some(Broadcast {
        event,
        args: data,
        rooms: rooms(field(&opts, "rooms"))?,
        except: rooms(field(&opts, "except"))?,
    }))
}

/// Whether `payload` is a request (JSON, `{`) rather than a broadcast.
pub fn is_request(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
}

/// Decodes one request (JSON; msgpack requests come only from other
/// adapters and are refused).
pub fn decode_request(payload: &[u8]) -> Result<Request, String> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "type")]
        kind: u8,
        #[serde(default)]
        opts: Selection,
        #[serde(default)]
        rooms: Vec<String>,
    }
    if !is_request(payload) {
        return Err("not a JSON request".into());
    }
    let raw: Raw = serde_json::from_slice(payload).map_err(|e| format!("malformed request: {e}"))?;
    for list in [&raw.opts.rooms, &raw.opts.except, &raw.rooms] {
        check_rooms(list)?;
    }
    Ok(match raw.kind {
        2 => Request::Join {
            on: raw.opts,
            rooms: raw.rooms,
        },
        3 => Request::Leave {
            on: raw.opts,
            rooms: raw.rooms,
        },
        4 => Request::Disconnect { on: raw.opts },
        _ => Request::Ignored,
    })
}

fn field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn take_field(map: Value, key: &str) -> Option<Value> {
    let Value::Map(entries) = map else { return None };
    entries
        .into_iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn rooms(value: Option<&Value>) -> Result<Vec<String>, String> {
    let rooms = match value {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| {
                r.as_str()
                    .map(str::to_owned)
                    .ok_or("a room name must be a string")
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("rooms must be an array".into()),
    };
    check_rooms(&rooms)?;
    Ok(rooms)
}

fn check_rooms(rooms: &[String]) -> Result<(), String> {
    if rooms.len() > MAX_ROOMS {
        return Err(format!("more than {MAX_ROOMS} rooms"));
    }
    if rooms.iter().any(|r| r.is_empty() || r.len() > MAX_ROOM_NAME) {
        return Err(format!("a room name must be 1-{MAX_ROOM_NAME} characters"));
    }
    Ok(())
}

/// The arguments of a broadcast, serialized as a tuple so that each is its
/// own Socket.IO argument (`emit(event, a, b)` arrives as `a, b`).
pub struct Args<'a>(pub &'a [Value]);

impl Serialize for Args<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in self.0 {
            tuple.serialize_element(&Arg(arg))?;
        }
        tuple.end()
    }
}

/// One argument as a Node server would pass it on: `bin` as binary (a
/// Socket.IO attachment), a `Date` as its ISO 8601 string, map keys as strings.
struct Arg<'a>(&'a Value);

impl Serialize for Arg<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Nil => serializer.serialize_unit(),
            Value::Boolean(b) => serializer.serialize_bool(*b),
            Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
                (Some(u), _) => serializer.serialize_u64(u),
                (None, Some(n)) => serializer.serialize_i64(n),
                (None, None) => serializer.serialize_unit(),
            },
            Value::F32(f) => serializer.serialize_f32(*f),
            Value::F64(f) => serializer.serialize_f64(*f),
            Value::String(s) => match s.as_str() {
                Some(s) => serializer.serialize_str(s),
                None => serializer.serialize_str(&String::from_utf8_lossy(s.as_bytes())),
            },
            Value::Binary(b) => serializer.serialize_bytes(b),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Arg(item))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&key_string(k), &Arg(v))?;
                }
                map.end()
            }
            Value::Ext(EXT_DATE, bytes) => match date_iso(bytes) {
                Some(iso) => serializer.serialize_str(&iso),
                None => serializer.serialize_unit(),
            },
            Value::Ext(..) => serializer.serialize_unit(),
        }
    }
}

fn key_string(key: &Value) -> String {
    match key {
        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => other.to_string(),
    }
}

/// A msgpack timestamp (ext −1, 4, 8 or 12 bytes) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn date_iso(bytes: &[u8]) -> Option<String> {
    let (secs, nanos): (i64, u32) = match bytes.len() {
        4 => (i64::from(u32::from_be_bytes(bytes.try_into().ok()?)), 0),
        8 => {
            let v = u64::from_be_bytes(bytes.try_into().ok()?);
            ((v & 0x3_ffff_ffff) as i64, (v >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(bytes[4..].try_into().ok()?),
            u32::from_be_bytes(bytes[..4].try_into().ok()?),
        ),
        _ => return None,
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = crate::clock::civil_from_days(days);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos / 1_000_000
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_the_captured_frames() {
        // emitter.to("user:42").emit("notification", {a:1})
        let frame = hex(
            "93 a7 65 6d 69 74 74 65 72 83 a4 74 79 70 65 02 a4 64 61 74 61 92 ac 6e 6f 74 69 66 69 63 61 74 69 6f 6e 81 a1 61 01 a3 6e 73 70 a1 2f 83 a5 72 6f 6f 6d 73 91 a7 75 73 65 72 3a 34 32 a5 66 6c 61 67 73 80 a6 65 78 63 65 70 74 90",
        );
        let b = decode_broadcast(&frame).unwrap().unwrap();
        assert_eq!(b.event, "notification");
        assert_eq!(b.rooms, vec!["user:42"]);
        assert!(b.except.is_empty());
        let json = serde_json::to_value(Args(&b.args)).unwrap();
        assert_eq!(json, serde_json::json!([{"a": 1}]));
        // emitter.to("a").to("b").except("c").emit("y", "z")
        let frame = hex(
            "93 a7 65 6d 69 74 74 65 72 83 a4 74 79 70 65 02 a4 64 61 74 61 92 a1 79 a1 7a a3 6e 73 70 a1 2f 83 a5 72 6f 6f 6d 73 92 a1 61 a1 62 a5 66 6c 61 67 73 80 a6 65 78 63 65 70 74 91 a1 63",
        );
        let b = decode_broadcast(&frame).unwrap().unwrap();
        assert_eq!(
            (b.rooms, b.except),
            (vec!["a".into(), "b".into()], vec!["c".into()])
        );
        // emitter.of("/chat")...: another namespace
        let frame = hex(
            "93 a7 65 6d 69 74 74 65 72 83 a4 74 79 70 65 02 a4 64 61 74 61 94 a1 6d c0 92 01 02 c4 03 01 02 03 a3 6e 73 70 a5 2f 63 68 61 74 83 a5 72 6f 6f 6d 73 92 a2 72 31 a2 72 32 a5 66 6c 61 67 73 80 a6 65 78 63 65 70 74 90",
        );
        assert_eq!(decode_broadcast(&frame).unwrap(), None);
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for bad in [
            &b""[..],
            b"\x93",
            b"\xc1",
            b"{}",
            b"\x92\xa1x\x81\xa4type\x02",
            b"\x91\x01",
        ] {
            assert!(decode_broadcast(bad).is_err(), "{bad:?}");
        }
        assert!(decode_request(b"\x93").is_err());
        assert!(decode_request(b"{\"type\":").is_err());
    }

    #[test]
    fn decodes_requests() {
        let r = decode_request(br#"{"type":2,"opts":{"rooms":["r"],"except":[]},"rooms":["x","y"]}"#);
        assert_eq!(
            r.unwrap(),
            Request::Join {
                on: Selection {
                    rooms: vec!["r".into()],
                    except: vec![]
                },
                rooms: vec!["x".into(), "y".into()]
            }
        );
        let r = decode_request(br#"{"type":4,"opts":{"rooms":[],"except":[]},"close":true}"#);
        assert_eq!(
            r.unwrap(),
            Request::Disconnect {
                on: Selection::default()
            }
        );
        let r = decode_request(br#"{"uid":"emitter","type":6,"data":["hello",{"n":1}]}"#);
        assert_eq!(r.unwrap(), Request::Ignored);
    }

    #[test]
    fn dates_become_iso_strings() {
        assert_eq!(date_iso(&0u32.to_be_bytes()).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            date_iso(&1_700_000_000u32.to_be_bytes()).unwrap(),
            "2023-11-14T22:13:20.000Z"
        );
        let v: u64 = (123_000_000u64 << 34) | 1_700_000_000;
        assert_eq!(date_iso(&v.to_be_bytes()).unwrap(), "2023-11-14T22:13:20.123Z");
    }
}
