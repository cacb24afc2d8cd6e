//! A socket as the Admin UI shows it, shaped like the package's
//! `serializeSocket`: id, clientId, transport, nsp, data, handshake (no
//! `auth`: tokens never leave the node) and rooms, its own id first.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use serde_json::{Map, Value, json};
use socketioxide::TransportType;
use socketioxide::extract::SocketRef;

use crate::protocol::is_internal_room;

/// When the socket connected (epoch ms), set by [`super::AdminUi::connected`].
#[derive(Debug, Clone, Copy)]
pub struct Issued(pub u64);

/// Header and query values never shown (credentials).
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];
const HIDDEN_QUERY: [&str; 3] = ["token", "access_token", "jwt"];
const HIDDEN: &str = "[hidden]";

pub fn transport(socket: &SocketRef) -> &'static str {
    match socket.transport_type() {
        TransportType::Websocket => "websocket",
        TransportType::Polling => "polling",
    }
}

/// The socket's rooms as the UI expects them: its own id (socket.io puts
/// every socket in a room named by its id), then the rooms it joined,
/// without the batcher's internal rooms.
pub fn rooms(socket: &SocketRef) -> Vec<String> {
    let mut rooms = vec![socket.id.to_string()];
    rooms.extend(
        socket
            .rooms()
            .into_iter()
            .filter(|r| !is_internal_room(r))
            .map(|r| r.into_owned()),
    );
    rooms
}

pub fn serialize(socket: &SocketRef) -> Value {
    let id = socket.id.to_string();
    json!({
        "id": id,
        "clientId": id.get(..12).unwrap_or(&id),
        "transport": transport(socket),
        "nsp": socket.ns(),
        "data": {},
        "handshake": handshake(socket),
        "rooms": rooms(socket),
    })
}

fn handshake(socket: &SocketRef) -> Value {
    let parts = socket.req_parts();
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let name = name.as_str();
        let value = if HIDDEN_HEADERS.contains(&name) {
            HIDDEN.to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        match headers.get_mut(name) {
            Some(Value::String(seen)) => {
                seen.push_str(", ");
                seen.push_str(&value);
            }
            _ => {
                headers.insert(name.to_owned(), Value::String(value));
            }
        }
    }
    let mut query = Map::new();
    for pair in parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = if HIDDEN_QUERY.contains(&key) {
            HIDDEN
        } else {
            value
        };
        query.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let address = header("cf-connecting-ip")
        .or_else(|| header("x-forwarded-for"))
        .map(str::to_owned)
        .or(peer)
        .unwrap_or_default();
    let issued = socket
        .extensions
        .get::<Issued>()
        .map(|Issued(ms)| ms)
        .unwrap_or_else(crate::clock::unix_millis);
    json!({
        "address": address,
        "headers": headers,
        "query": query,
        "issued": issued,
        "secure": header("x-forwarded-proto") == Some("https"),
        "time": date_string(issued),
        "url": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "xdomain": parts.headers.contains_key("origin"),
    })
}

/// JavaScript's `Date.prototype.toString()` in UTC, e.g.
/// `Sun Nov 29 2026 15:28:52 GMT+0000 (Coordinated Universal Time)`.
fn date_string(epoch_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, h, m, s) = civil(epoch_ms / 1000);
    let weekday = (epoch_ms / 86_400_000 % 7) as usize;
    format!(
        "{} {} {day:02} {year} {h:02}:{m:02}:{s:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[weekday],
        MONTHS[(month - 1) as usize],
    )
}

/// `(year, month, day, hour, minute, second)` in UTC of a Unix time
/// (H. Hinnant's days-to-civil algorithm).
pub(super) fn civil(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let (year, month, day) = crate::clock::civil_from_days((secs / 86_400) as i64);
    (
        year,
        month,
        day,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_like_javascript() {
        assert_eq!(
            date_string(1_795_966_132_234),
            "Sun Nov 29 2026 15:28:52 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            date_string(0),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            date_string(951_782_400_000),
            "Tue Feb 29 2000 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
    }
}
