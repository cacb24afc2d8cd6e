//! What the real binary writes to its logs (stdout, and stderr) at `RUST_LOG=debug` in text
//! format: never a token, and a user-supplied value cannot start a line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{JWT_SECRET, RawSocket};
use crate::ws_raw::RawWs;

const FORGED: &str = "2031-01-01T00:00:00.000000Z  INFO roomcast: FORGED admin granted";

#[tokio::test]
async fn debug_text_logs_hold_no_token_and_no_forged_line() {
    let child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--jwt-secret",
            JWT_SECRET,
        ])
        .args(["--publish-key", "logs-test-key", "--chat-open"])
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts the binary");
    let mut child = KillOnDrop(child);
    let (lines_tx, lines) = mpsc::channel::<String>();
    // Logs go to stdout; anything else the process prints, to stderr: read both.
    let stdout: Box<dyn std::io::Read + Send> = Box::new(child.0.stdout.take().unwrap());
    let stderr: Box<dyn std::io::Read + Send> = Box::new(child.0.stderr.take().unwrap());
    for output in [stdout, stderr] {
        let lines_tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
    }
    drop(lines_tx);
    let mut seen = Vec::new();
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(line) = seen.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
                seen.push(line);
            }
        }
        panic!("no log line with {needle:?} within 10 s:\n{}", seen.join("\n"));
    };
    let listening = wait_for("listening", &mut seen);
    let addr = listening
        .split_whitespace()
        .find_map(|field| field.strip_prefix("addr="))
        .expect("addr field")
        .parse()
        .expect("an address");

    let tokens = roomcast::auth::token::TokenSigner::hs256(JWT_SECRET.as_bytes());
    let token = tokens.mint(&format!("mallory\n{FORGED}"), None, 600);
    let mut plain = RawWs::connect(addr, "logs", &token).await;
    plain.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(
        plain.next_json(Duration::from_secs(5)).await,
        Some(json!({ "type": "pong" }))
    );
    let mut socket = RawSocket::connect(addr, Some(json!({ "token": token })))
        .await
        .expect("Socket.IO connects");
    let ack = socket.ask("authenticate", json!(token)).await;
    assert!(
        ack["userId"].as_str().is_some_and(|u| u.starts_with("mallory\n")),
        "{ack}"
    );
    wait_for("plain chat client joined", &mut seen);
    wait_for("authenticated", &mut seen);
    child.stop();
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        seen.push(line);
    }

    let signature = token.rsplit('.').next().unwrap();
    let leaks: Vec<_> = seen.iter().filter(|l| l.contains(signature)).collect();
    assert!(leaks.is_empty(), "the token is logged:\n{leaks:#?}");
    assert!(
        seen.iter()
            .any(|l| l.contains("/ws/chat?sessionId=logs&token=[redacted]")),
        "the request is logged, token redacted"
    );
    let forged: Vec<_> = seen.iter().filter(|l| l.starts_with(FORGED)).collect();
    assert!(forged.is_empty(), "a sub forged a log line:\n{forged:#?}");
    assert!(
        seen.iter().any(|l| l.contains(r"mallory\n2031")),
        "the sub is logged escaped"
    );
}

/// The server process, killed when the test ends, also when it fails early.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}
