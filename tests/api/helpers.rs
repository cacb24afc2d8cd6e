//! `spawn_app()` and a minimal Socket.IO v4 client over WebSocket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use roomcast::{Application, Config};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tokio_util::sync::CancellationToken;

pub const PUBLISH_KEY: &str = "api-test-publish-key";
pub const JWT_SECRET: &str = "api-test-jwt-secret";
const WAIT: Duration = Duration::from_secs(5);

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// Mints HS256 tokens with the app's `--jwt-secret` (else with [`JWT_SECRET`]).
    pub tokens: roomcast::auth::token::TokenSigner,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::for_tests();
    config.publish_key = Some(roomcast::config::Secret::new(PUBLISH_KEY));
    config.jwt_secret = Some(roomcast::config::Secret::new(JWT_SECRET));
    // Chat tests need open rooms; the access tests turn it off to test privacy.
    config.chat_open = true;
    configure(&mut config);
    let app = Application::build(config).await.expect("app builds");
    let addr = app.local_addr();
    let tokens = app
        .tokens()
        .signer()
        .cloned()
        .unwrap_or_else(|| roomcast::auth::token::TokenSigner::hs256(JWT_SECRET.as_bytes()));
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        tokens,
        stop,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` (raw text) to the publish API with `key` as bearer.
    pub async fn post_raw(
        &self,
        route: &str,
        body: impl Into<reqwest::Body>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.post(self.url(&format!("/api/v1/{route}"))).body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn publish(&self, route: &str, body: Value) -> (u16, Value) {
        self.post_raw(route, body.to_string(), Some(PUBLISH_KEY)).await
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn socket(&self, auth: Option<Value>) -> RawSocket {
        RawSocket::connect(self.addr, auth)
            .await
            .expect("socket connects")
    }

    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("stops within 10 s")
            .expect("server task")
            .expect("clean stop");
    }
}

/// The value of one sample line of a Prometheus exposition; `series` is
/// written without the `node` label every line carries.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .map(without_node_label)
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn without_node_label(line: &str) -> String {
    let Some(start) = line.find("node=\"") else {
        return line.to_owned();
    };
    let end = start + 6 + line[start + 6..].find('"').unwrap_or(0) + 1;
    let rest = line[end..].strip_prefix(',').unwrap_or(&line[end..]);
    format!("{}{rest}", &line[..start]).replace("{}", "")
}

/// A Socket.IO v4 client speaking the wire protocol over one WebSocket.
pub struct RawSocket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
    /// Events received while waiting for something else.
    backlog: VecDeque<(String, Value)>,
}

impl RawSocket {
    /// Connects and sends `ping` (ack id 0) the moment the server's CONNECT
    /// reply arrives, as a fast client does; returns the ack.
    pub async fn connect_and_ping_at_once(addr: SocketAddr) -> Value {
        let mut socket = Self::connect(addr, None).await.expect("connects");
        socket.ws.send(Message::text(r#"420["ping"]"#)).await.unwrap();
        loop {
            let frame = socket.frame().await;
            if let Some(body) = frame.strip_prefix("430") {
                let args: Value = serde_json::from_str(body).unwrap();
                return args[0].clone();
            }
        }
    }

    /// Connects to namespace `/`; `Err` carries the connect_error message.
    pub async fn connect(addr: SocketAddr, auth: Option<Value>) -> Result<Self, String> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = connect_async(url).await.map_err(|e| e.to_string())?;
        let mut socket = Self {
            ws,
            next_ack: 0,
            backlog: VecDeque::new(),
        };
        let open = socket.frame().await;
        assert!(open.starts_with('0'), "engine.io open, got {open}");
        let connect = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        socket
            .ws
            .send(Message::text(connect))
            .await
            .map_err(|e| e.to_string())?;
        let reply = socket.frame().await;
        if let Some(err) = reply.strip_prefix("44") {
            let err: Value = serde_json::from_str(err).unwrap();
            return Err(err["message"].as_str().unwrap_or_default().to_owned());
        }
        assert!(reply.starts_with("40"), "socket.io connect, got {reply}");
        Ok(socket)
    }

    /// The next Engine.IO message that is not a ping (pings are answered).
    async fn frame(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the timeout")
                .expect("connection open")
                .expect("frame");
            match message {
                Message::Text(text) if text.as_str() == "2" => {
                    self.ws.send(Message::text("3")).await.unwrap();
                }
                Message::Text(text) => return text.to_string(),
                Message::Close(_) => panic!("connection closed"),
                _ => {}
            }
        }
    }

    pub async fn emit(&mut self, event: &str, data: Value) {
        let frame = format!("42{}", json!([event, data]));
        self.ws.send(Message::text(frame)).await.unwrap();
    }

    /// Emits with an ack id and returns the ack's first argument.
    pub async fn ask(&mut self, event: &str, data: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let frame = format!("42{id}{}", json!([event, data]));
        self.ws.send(Message::text(frame)).await.unwrap();
        let prefix = format!("43{id}");
        loop {
            let frame = self.frame().await;
            if let Some(body) = frame.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(body).unwrap();
                return args[0].clone();
            }
            self.stash(&frame);
        }
    }

    fn stash(&mut self, frame: &str) {
        if let Some(body) = frame.strip_prefix("42") {
            let args: Value = serde_json::from_str(body).unwrap();
            self.backlog
                .push_back((args[0].as_str().unwrap().to_owned(), args[1].clone()));
        }
    }

    /// The next `event` (earlier ones of other names are kept for later).
    pub async fn next(&mut self, event: &str) -> Value {
        if let Some(pos) = self.backlog.iter().position(|(name, _)| name == event) {
            return self.backlog.remove(pos).unwrap().1;
        }
        loop {
            let frame = self.frame().await;
            self.stash(&frame);
            if let Some(pos) = self.backlog.iter().position(|(name, _)| name == event) {
                return self.backlog.remove(pos).unwrap().1;
            }
        }
    }

    /// Sends one raw Engine.IO text message (e.g. a hand-made Socket.IO packet).
    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// Sends one binary WebSocket frame (a Socket.IO binary attachment).
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        let _ = self.ws.send(Message::binary(bytes)).await;
    }

    /// Whether the server closes the connection within `within` (pings are
    /// answered meanwhile, so only the server's own decision closes it).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                    let _ = self.ws.send(Message::text("3")).await;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The text frames received until the connection closes, or `None` when it
    /// is still open after `within` (pings are answered meanwhile).
    pub async fn frames_until_closed(&mut self, within: Duration) -> Option<Vec<String>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Some(frames),
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                    let _ = self.ws.send(Message::text("3")).await;
                }
                Ok(Some(Ok(Message::Text(text)))) => frames.push(text.to_string()),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Whether the server disconnects this socket (a Socket.IO DISCONNECT
    /// packet, or the connection closing) within `within`.
    pub async fn disconnected_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "41" => return true,
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                    let _ = self.ws.send(Message::text("3")).await;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Whether `event` arrives within `within` (for asserting that it does not).
    pub async fn receives(&mut self, event: &str, within: Duration) -> bool {
        tokio::time::timeout(within, self.next(event)).await.is_ok()
    }
}

/// A redis-server of the test's own on a free port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` every 20 ms until it gives `Some`; panics naming `what` after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts `count` chat messages `"<i> <text>"` into `room` over REST as the
/// holder of `token`, four requests at a time; every one must be stored (201).
pub async fn flood_chat(app: &TestApp, room: &str, token: &str, count: usize, text: &str) {
    let senders: Vec<_> = (0..4)
        .map(|task| {
            let (http, url, token, text) = (
                app.http.clone(),
                app.url(&format!("/api/v1/chat/{room}/messages")),
                token.to_owned(),
                text.to_owned(),
            );
            tokio::spawn(async move {
                for i in (task..count).step_by(4) {
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({ "message": format!("{i} {text}"), "clientMsgId": format!("m{i}") }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 201);
                }
            })
        })
        .collect();
    for task in senders {
        task.await.unwrap();
    }
}
