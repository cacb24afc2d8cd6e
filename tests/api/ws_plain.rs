//! `/ws/chat` as the WebSocket protocol sees it (CONTRACT §6, §1): close
//! codes for protocol violations, pings, slow clients, shutdown.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::helpers::{TestApp, spawn_app_with};
use crate::ws_raw::*;

const MAX_PAYLOAD: u64 = 2048;
const WAIT: Duration = Duration::from_secs(5);

async fn client(app: &TestApp, room: &str) -> RawWs {
    RawWs::connect(app.addr, room, &app.tokens.mint("alice", None, 600)).await
}

/// ~30 frame sequences and the close code RFC 6455 asks for (`ws` for Node answers all of them so).
fn cases() -> Vec<(&'static str, Vec<Raw>, u16)> {
    let big = vec![b'a'; MAX_PAYLOAD as usize + 1];
    let half = vec![b'a'; MAX_PAYLOAD as usize / 2 + 10];
    vec![
        (
            "text with invalid UTF-8",
            vec![Raw::new(OP_TEXT, b"\xff\xfe".to_vec())],
            1007,
        ),
        (
            "text ending mid code point",
            vec![Raw::new(OP_TEXT, b"ok \xe2\x82".to_vec())],
            1007,
        ),
        (
            "surrogate in text",
            vec![Raw::new(OP_TEXT, b"\xed\xa0\x80".to_vec())],
            1007,
        ),
        (
            "invalid UTF-8 in a continuation",
            vec![
                Raw::new(OP_TEXT, b"{\"ty".to_vec()).fin(false),
                Raw::new(OP_CONT, b"\xc0\xaf".to_vec()),
            ],
            1007,
        ),
        (
            "close reason with invalid UTF-8",
            vec![Raw::new(OP_CLOSE, close_payload(1000, b"\xff"))],
            1007,
        ),
        (
            "text over --max-payload",
            vec![Raw::new(OP_TEXT, big.clone())],
            1009,
        ),
        ("binary over --max-payload", vec![Raw::new(OP_BINARY, big)], 1009),
        (
            "fragments over --max-payload together",
            vec![
                Raw::new(OP_TEXT, half.clone()).fin(false),
                Raw::new(OP_CONT, half.clone()).fin(false),
                Raw::new(OP_CONT, half),
            ],
            1009,
        ),
        (
            "ping with 126 bytes",
            vec![Raw::new(OP_PING, vec![b'p'; 126])],
            1002,
        ),
        (
            "close with 126 bytes",
            vec![Raw::new(OP_CLOSE, close_payload(1000, &[b'r'; 124]))],
            1002,
        ),
        (
            "fragmented ping",
            vec![Raw::new(OP_PING, b"p".to_vec()).fin(false)],
            1002,
        ),
        (
            "fragmented close",
            vec![Raw::new(OP_CLOSE, close_payload(1000, b"")).fin(false)],
            1002,
        ),
        ("stray continuation", vec![Raw::new(OP_CONT, b"x".to_vec())], 1002),
        (
            "stray non-final continuation",
            vec![Raw::new(OP_CONT, b"x".to_vec()).fin(false)],
            1002,
        ),
        (
            "new text while a message is open",
            vec![
                Raw::new(OP_TEXT, b"a".to_vec()).fin(false),
                Raw::new(OP_TEXT, b"b".to_vec()),
            ],
            1002,
        ),
        (
            "RSV1 without an extension",
            vec![Raw::new(OP_TEXT, b"{}".to_vec()).rsv(4)],
            1002,
        ),
        ("RSV2", vec![Raw::new(OP_TEXT, b"{}".to_vec()).rsv(2)], 1002),
        ("RSV3", vec![Raw::new(OP_TEXT, b"{}".to_vec()).rsv(1)], 1002),
        (
            "RSV on a ping",
            vec![Raw::new(OP_PING, b"".to_vec()).rsv(7)],
            1002,
        ),
        (
            "unmasked text",
            vec![Raw::new(OP_TEXT, b"{}".to_vec()).unmasked()],
            1002,
        ),
        (
            "unmasked ping",
            vec![Raw::new(OP_PING, b"".to_vec()).unmasked()],
            1002,
        ),
        ("data opcode 3", vec![Raw::new(0x3, b"".to_vec())], 1002),
        ("data opcode 7", vec![Raw::new(0x7, b"".to_vec())], 1002),
        ("control opcode 0xB", vec![Raw::new(0xB, b"".to_vec())], 1002),
        ("control opcode 0xF", vec![Raw::new(0xF, b"".to_vec())], 1002),
        (
            "close with a 1-byte payload",
            vec![Raw::new(OP_CLOSE, vec![0x03])],
            1002,
        ),
        (
            "close code 1005",
            vec![Raw::new(OP_CLOSE, close_payload(1005, b""))],
            1002,
        ),
        (
            "close code 1006",
            vec![Raw::new(OP_CLOSE, close_payload(1006, b""))],
            1002,
        ),
        (
            "close code 999",
            vec![Raw::new(OP_CLOSE, close_payload(999, b""))],
            1002,
        ),
        (
            "close code 5000",
            vec![Raw::new(OP_CLOSE, close_payload(5000, b""))],
            1002,
        ),
        (
            "close code 1016 (reserved)",
            vec![Raw::new(OP_CLOSE, close_payload(1016, b""))],
            1002,
        ),
        (
            "valid close 1000 is echoed",
            vec![Raw::new(OP_CLOSE, close_payload(1000, b"bye"))],
            1000,
        ),
        (
            "valid close 4000 is echoed",
            vec![Raw::new(OP_CLOSE, close_payload(4000, b""))],
            4000,
        ),
        (
            "empty close is answered empty",
            vec![Raw::new(OP_CLOSE, Vec::new())],
            1005,
        ),
    ]
}

#[tokio::test]
async fn protocol_violations_close_with_their_rfc6455_code() {
    let app = spawn_app_with(|c| c.max_payload = MAX_PAYLOAD).await;
    let mut failures = Vec::new();
    let cases = cases();
    let total = cases.len();
    for (name, frames, expected) in cases {
        let mut ws = client(&app, "frames").await;
        for frame in frames {
            ws.send(frame).await;
        }
        let got = ws.close_code(WAIT).await;
        if got != Some(expected) {
            failures.push(format!("{name}: expected close {expected}, got {got:?}"));
        } else if !ws.ends_within(WAIT).await {
            failures.push(format!(
                "{name}: closed with {expected} but the TCP connection stayed open"
            ));
        }
    }
    eprintln!(
        "frame harness: {}/{total} closed correctly",
        total - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{}/{total} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_good_frame_still_works_and_client_pings_are_answered() {
    let app = spawn_app_with(|c| c.max_payload = MAX_PAYLOAD).await;
    let mut ws = client(&app, "frames").await;
    ws.send(Raw::new(OP_PING, b"hi".to_vec())).await;
    assert_eq!(
        ws.next(WAIT).await,
        Some(Got::Frame {
            opcode: OP_PONG,
            payload: b"hi".to_vec()
        })
    );
    ws.send(Raw::new(OP_TEXT, br#"{"type":"#.to_vec()).fin(false))
        .await;
    ws.send(Raw::new(OP_CONT, br#""ping"}"#.to_vec())).await;
    assert_eq!(ws.next_json(WAIT).await, Some(json!({ "type": "pong" })));
    app.stop().await;
}

#[tokio::test]
async fn silent_clients_are_pinged_and_dead_ones_closed() {
    let app = spawn_app_with(|c| {
        c.ws_ping_interval_ms = 200;
        c.ws_ping_timeout_ms = 300;
    })
    .await;
    let mut dead = client(&app, "keepalive").await;
    let mut alive = client(&app, "keepalive").await;
    // A client that answers pings (next_json does) outlives several rounds.
    let answering = tokio::spawn(async move {
        let got = alive.next_json(Duration::from_millis(1500)).await;
        alive.send_text(r#"{"type":"ping"}"#).await;
        (got, alive.next_json(WAIT).await)
    });
    let started = Instant::now();
    let ping = dead.next(WAIT).await;
    assert!(
        matches!(ping, Some(Got::Frame { opcode: OP_PING, .. })),
        "a silent client is pinged, got {ping:?}"
    );
    assert_eq!(
        dead.close_code(WAIT).await,
        Some(1008),
        "no pong: closed (ping timeout)"
    );
    assert!(dead.ends_within(WAIT).await, "and the TCP connection ends");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (meanwhile, answer) = answering.await.unwrap();
    assert_eq!(meanwhile, None, "nothing but pings for the live client");
    assert_eq!(
        answer,
        Some(json!({ "type": "pong" })),
        "the live client is still connected"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_not_held() {
    let app = spawn_app_with(|c| {
        c.ws_max_queued_bytes = 512 * 1024;
        c.user_rate_limit = "chat:send=100000/s".parse().unwrap();
    })
    .await;
    let token = app.tokens.mint("slow", None, 600);
    let slow = RawWs::connect_with(app.addr, "flood", &token, Some(4096)).await;
    let mut reader = client(&app, "flood").await;
    // ~8 MB into the room (more than the kernel buffers on both ends hold):
    // `reader` keeps up, `slow` never reads.
    const MESSAGES: usize = 2000;
    let reading = tokio::spawn(async move {
        let mut received = 0;
        while received < MESSAGES {
            match reader.next_json(Duration::from_secs(10)).await {
                Some(frame) if frame["type"] == "message" => received += 1,
                other => panic!("after {received} messages: {other:?}"),
            }
        }
        received
    });
    let sender = app.tokens.mint("bob", None, 600);
    let message = "x".repeat(3990);
    crate::helpers::flood_chat(&app, "flood", &sender, MESSAGES, &message).await;
    assert_eq!(
        reading.await.unwrap(),
        MESSAGES,
        "the member that reads gets every message"
    );
    // The server gives up on `slow` and closes its TCP connection within the
    // close grace instead of holding the data: the next bytes `slow` writes
    // meet a reset (its own receive window is full, so that is how it learns).
    let flooded = Instant::now();
    let mut slow = slow;
    let mut cut = None;
    while cut.is_none() && flooded.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let probe = Raw::new(OP_PING, b"?".to_vec()).bytes();
        cut = match slow.stream.write_all(&probe).await {
            Err(e) => Some(e.kind()),
            Ok(()) => slow.stream.take_error().ok().flatten().map(|e| e.kind()),
        };
    }
    eprintln!(
        "slow client cut off {:?} after the flood: {cut:?}",
        flooded.elapsed()
    );
    assert!(
        matches!(
            cut,
            Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
        ),
        "the slow client's connection is closed, got {cut:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn shutdown_closes_plain_clients_with_1001() {
    let app = spawn_app_with(|_| {}).await;
    let mut ws = client(&app, "bye").await;
    ws.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(ws.next_json(WAIT).await, Some(json!({ "type": "pong" })));
    let stopping = tokio::spawn(app.stop());
    assert_eq!(ws.close_code(WAIT).await, Some(1001));
    stopping.await.unwrap();
}
