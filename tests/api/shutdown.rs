//! Shutdown ends a Socket.IO WebSocket transport the way Node socket.io's
//! `io.close()` does: queued packets, then a WebSocket close frame, and no
//! Engine.IO `close` packet (`1`), which python-socketio reads as "the server
//! sent me away" and never reconnects after.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::spawn_app;

#[tokio::test]
async fn shutdown_closes_a_socket_io_websocket_without_an_engine_io_close_packet() {
    let app = spawn_app().await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("upgrade");
    let open = ws.next().await.expect("open packet").expect("frame");
    assert!(open.to_text().unwrap_or_default().starts_with('0'), "{open:?}");
    ws.send(Message::text("40")).await.unwrap();
    // The CONNECT reply, maybe after the session's first ping (sent at once).
    let mut connected = false;
    for _ in 0..3 {
        let frame = ws.next().await.expect("connect reply").expect("frame");
        if frame.to_text().unwrap_or_default().starts_with("40") {
            connected = true;
            break;
        }
        assert_eq!(
            frame.to_text().unwrap_or_default(),
            "2",
            "only a ping before the reply"
        );
    }
    assert!(connected, "CONNECT reply");

    let stopped = tokio::spawn(app.stop());
    let mut frames = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(item) = ws.next().await {
            let Ok(frame) = item else { break };
            let close = frame.is_close();
            frames.push(frame);
            if close {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the transport ends within 10 s: {frames:?}");
    assert!(
        !frames.iter().any(|f| f.to_text().ok() == Some("1")),
        "no Engine.IO close packet: {frames:?}"
    );
    assert!(
        frames.last().is_some_and(Message::is_close),
        "a WebSocket close frame: {frames:?}"
    );
    stopped.await.expect("stopped");
}
