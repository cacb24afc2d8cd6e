//! Every connection is bounded in time and per client address (CONTRACT §1),
//! big bodies are refused on their declared length, CORS follows §7. Raw TCP
//! clients on loopback; short timeouts through the flags.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, sample, spawn_app_with};

const WAIT: Duration = Duration::from_secs(10);

async fn short_timeouts(header: u64, idle: u64, body: u64) -> TestApp {
    spawn_app_with(|c| {
        c.header_timeout_s = header;
        c.idle_timeout_s = idle;
        c.body_timeout_s = body;
    })
    .await
}

/// Reads until the server closes the connection; returns what was read and when it closed.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server closes the connection within {WAIT:?}");
    (String::from_utf8_lossy(&seen).into_owned(), Instant::now())
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(WAIT, async {
        while !seen.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                break;
            }
            seen.push(byte[0]);
        }
    })
    .await
    .expect("a response head within the wait");
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn a_connection_that_sends_no_complete_head_is_closed_after_the_header_timeout() {
    let app = short_timeouts(1, 30, 30).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut partial = TcpStream::connect(app.addr).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    for stream in [&mut silent, &mut partial] {
        let (_, closed) = read_until_closed(stream).await;
        let after = closed - started;
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(3),
            "closed after {after:?}, the header timeout is 1 s"
        );
    }
    let metrics = app.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            r#"roomcast_connections_closed_total{reason="header_timeout"}"#
        ),
        Some(2.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let app = short_timeouts(1, 3, 30).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let idle_since = Instant::now();
    let (_, closed) = read_until_closed(&mut stream).await;
    let idle = closed - idle_since;
    assert!(
        idle >= Duration::from_millis(2500) && idle < Duration::from_millis(4500),
        "closed after {idle:?} idle, the idle timeout is 3 s"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_held_long_poll_and_a_websocket_session_outlive_the_idle_timeout() {
    let app = short_timeouts(1, 1, 30).await;
    let mut ws = app.socket(None).await;
    // Engine.IO long-polling: open, connect the namespace, then hold a GET.
    let base = app.url("/socket.io/?EIO=4&transport=polling");
    let open = app.http.get(&base).send().await.unwrap().text().await.unwrap();
    let open: Value = serde_json::from_str(open.trim_start_matches('0')).expect("open packet");
    let sid = open["sid"].as_str().expect("sid").to_owned();
    let session = format!("{base}&sid={sid}");
    app.http.post(&session).body("40").send().await.unwrap();
    // The CONNECT reply and the session's first ping (sent at once): then a GET is held until the next ping (25 s).
    let (mut connected, mut pinged) = (false, false);
    for _ in 0..3 {
        if connected && pinged {
            break;
        }
        let packets = app.http.get(&session).send().await.unwrap().text().await.unwrap();
        connected |= packets.split('\x1e').any(|p| p.starts_with("40"));
        pinged |= packets.split('\x1e').any(|p| p == "2");
    }
    assert!(connected && pinged, "CONNECT reply and first ping");
    app.http.post(&session).body("3").send().await.unwrap();
    let held = tokio::spawn({
        let (http, session) = (app.http.clone(), session.clone());
        async move {
            let response = http.get(&session).send().await?;
            let status = response.status().as_u16();
            response.text().await.map(|body| (status, body))
        }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await; // over twice the idle timeout
    if held.is_finished() {
        panic!("the long-poll is still held: {:?}", held.await);
    }
    let ack = app
        .http
        .post(&session)
        .body(r#"421["ping"]"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(ack, 200);
    let held = tokio::time::timeout(WAIT, held)
        .await
        .expect("the held GET answers")
        .unwrap();
    assert_eq!(held.expect("the held GET was not cut").0, 200);
    assert!(
        ws.ask("ping", serde_json::json!({})).await.is_object(),
        "the WebSocket session still answers"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_trickling_body_gets_408_after_the_body_timeout() {
    let app = short_timeouts(30, 30, 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /api/v1/prices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer api-test-publish-key\r\nContent-Length: 1000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = String::new();
    let read = tokio::time::timeout(WAIT, reader.read_to_string(&mut answer)).await;
    trickle.abort();
    assert!(read.is_ok(), "the server closes the trickling connection");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}

/// A connection from `source` (another loopback address) to `addr`.
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

async fn healthz_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_head(stream).await
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_once_and_others_are_served() {
    let app = spawn_app_with(|c| c.max_connections_per_ip = Some(3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from("127.0.0.1", app.addr).await;
        assert!(healthz_on(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let mut fourth = connect_from("127.0.0.1", app.addr).await;
    let started = Instant::now();
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (answer, _) = read_until_closed(&mut fourth).await;
    assert_eq!(answer, "", "refused without an answer");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    let mut other = connect_from("127.0.0.2", app.addr).await;
    assert!(
        healthz_on(&mut other).await.starts_with("HTTP/1.1 200"),
        "another address is served"
    );
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut stream = connect_from("127.0.0.1", app.addr).await;
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        if read_head(&mut stream).await.starts_with("HTTP/1.1 200") {
            again = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is usable again");
    // 127.0.0.1 holds the cap: scrape from the other address.
    let scrape = other_address_get(app.addr, "/metrics").await;
    assert!(
        sample(
            &scrape,
            r#"roomcast_connections_refused_total{reason="per_ip_limit"}"#
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{scrape}"
    );
    drop(again);
    app.stop().await;
}

async fn other_address_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = connect_from("127.0.0.2", addr).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_until_closed(&mut stream).await.0
}

#[tokio::test]
async fn a_declared_body_over_the_limit_gets_413_without_100_continue_and_a_full_writer_reads_it() {
    let app = spawn_app_with(|c| c.max_body = 1024).await;
    let head = |expect: bool| {
        format!(
            "POST /api/v1/prices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer api-test-publish-key\r\n{}Content-Length: 4000000\r\n\r\n",
            if expect { "Expect: 100-continue\r\n" } else { "" }
        )
    };
    let mut waiting = TcpStream::connect(app.addr).await.unwrap();
    waiting.write_all(head(true).as_bytes()).await.unwrap();
    let answer = read_head(&mut waiting).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "no 100 Continue first: {answer}"
    );

    for expect in [false, true] {
        let stream = TcpStream::connect(app.addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let written = tokio::spawn(async move {
            writer.write_all(head(expect).as_bytes()).await?;
            writer.write_all(&vec![b'x'; 4_000_000]).await
        });
        let mut answer = Vec::new();
        let read = tokio::time::timeout(WAIT, reader.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            matches!(read, Ok(Ok(_))),
            "expect={expect}: read without a reset: {read:?} {answer}"
        );
        assert!(answer.starts_with("HTTP/1.1 413"), "expect={expect}: {answer}");
        assert!(answer.contains("larger than the limit of 1024 bytes"), "{answer}");
        let written = tokio::time::timeout(WAIT, written).await.unwrap().unwrap();
        assert!(
            written.is_ok(),
            "expect={expect}: the whole body was written: {written:?}"
        );
    }

    // No declared length (chunked): 413 once the limit is passed, still read by a full writer.
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let written = tokio::spawn(async move {
        writer
            .write_all(b"POST /api/v1/prices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer api-test-publish-key\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await?;
        writer
            .write_all(format!("{:x}\r\n", 4_000_000).as_bytes())
            .await?;
        writer.write_all(&vec![b'x'; 4_000_000]).await?;
        writer.write_all(b"\r\n0\r\n\r\n").await
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, reader.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        matches!(read, Ok(Ok(_))),
        "chunked: read without a reset: {read:?} {answer}"
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "chunked: {answer}");
    let written = tokio::time::timeout(WAIT, written).await.unwrap().unwrap();
    assert!(
        written.is_ok(),
        "chunked: the whole body was written: {written:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn cors_star_answers_any_origin_without_credentials() {
    let app = spawn_app_with(|_| {}).await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(
        response
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    app.stop().await;
}

#[tokio::test]
async fn listed_origins_get_credentials_and_other_origins_are_refused_on_socket_io_handshakes() {
    let app = spawn_app_with(|c| c.cors_origin = "https://app.example".parse().unwrap()).await;
    let polling = app.url("/socket.io/?EIO=4&transport=polling");
    let allowed = app
        .http
        .get(&polling)
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");

    let foreign = app
        .http
        .get(&polling)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403, "polling handshake from a foreign origin");
    assert_eq!(
        app.http.get(&polling).send().await.unwrap().status(),
        200,
        "no Origin: allowed"
    );

    let ws_url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
    let mut request = ws_url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!(
            "WebSocket handshake from a foreign origin: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    let mut request = ws_url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://app.example".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(request).await.is_ok(),
        "listed origin upgrades"
    );
    app.stop().await;
}

/// A spawned roomcast process, killed and reaped when dropped.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A roomcast process with an open-file limit of `nofile`, logging JSON to a pipe.
fn spawn_with_fd_limit(
    nofile: u32,
    args: &[&str],
) -> (Spawned, SocketAddr, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_roomcast"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--publish-key",
            "k",
        ])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("roomcast starts");
    let mut child = Spawned(child);
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    loop {
        let line = received
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("roomcast logs its address");
        if let Some(addr) = line
            .split("\"addr\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .filter(|_| line.contains("\"listening\""))
        {
            return (child, addr.parse().expect("address"), received);
        }
    }
}

#[tokio::test]
async fn out_of_file_descriptors_the_server_backs_off_and_healthz_recovers_as_idle_connections_time_out() {
    let (child, addr, logs) =
        spawn_with_fd_limit(64, &["--header-timeout-s", "1", "--max-connections-per-ip", "0"]);
    // 150 connections that never send a request: more than the process has descriptors.
    let mut idle = Vec::new();
    for _ in 0..150 {
        if let Ok(stream) = TcpStream::connect(addr).await {
            idle.push(stream);
        }
    }
    let started = Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(8), async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    })
    .await;
    let recovered = started.elapsed();
    let scrape = tokio::time::timeout(WAIT, other_address_get(addr, "/metrics")).await;
    drop(child);
    let warnings = logs.try_iter().filter(|l| l.contains("accept failed")).count();
    let answer = health.expect("healthz answers within 8 s").expect("healthz read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let scrape = scrape.expect("metrics scrape");
    let errors = sample(&scrape, "roomcast_accept_errors_total").unwrap_or(0.0);
    assert!(errors >= 1.0, "accept errors are counted: {errors}");
    assert!(
        warnings <= 2,
        "{warnings} accept warnings in {recovered:?}, at most one per 10 s"
    );
    drop(idle);
}
