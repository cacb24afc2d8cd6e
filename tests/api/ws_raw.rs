//! A hand-made WebSocket client for `/ws/chat`: a real HTTP upgrade on a TCP
//! connection, then frames written byte by byte, so tests can send what no
//! WebSocket library would (reserved bits, unmasked frames, bad close codes).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A frame as written on the wire, masked unless `masked` is false.
pub struct Raw {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Raw {
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            masked: true,
            payload: payload.into(),
        }
    }

    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }

    pub fn unmasked(mut self) -> Self {
        self.masked = false;
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = vec![(u8::from(self.fin) << 7) | (self.rsv << 4) | self.opcode];
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let len = self.payload.len();
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= 0xFFFF {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if self.masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(&self.payload);
        }
        out
    }
}

/// A close frame payload: code, then reason bytes.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// What the server sent, frame by frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Frame {
        opcode: u8,
        payload: Vec<u8>,
    },
    /// The TCP connection ended (EOF or reset) without a further frame.
    Ended,
}

pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    pub async fn connect(addr: SocketAddr, room: &str, token: &str) -> Self {
        Self::connect_with(addr, room, token, None).await
    }

    /// Connects with an optional small receive buffer (a client that reads slowly).
    pub async fn connect_with(addr: SocketAddr, room: &str, token: &str, recv_buffer: Option<u32>) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let mut stream = socket.connect(addr).await.expect("connects");
        let head = format!(
            "GET /ws/chat?sessionId={room}&token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let end = timeout(Duration::from_secs(5), async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return i + 4;
                }
                let mut chunk = [0u8; 1024];
                let n = stream.read(&mut chunk).await.expect("reads the upgrade answer");
                assert!(n > 0, "closed during the upgrade");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("upgrade answer within 5 s");
        let answer = String::from_utf8_lossy(&buf[..end]).to_string();
        assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
        assert!(
            answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "accept key: {answer}"
        );
        buf.drain(..end);
        Self { stream, buf }
    }

    pub async fn send(&mut self, frame: Raw) {
        // The server may already have closed: a failed write is read as such by `next`.
        let _ = self.stream.write_all(&frame.bytes()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send(Raw::new(OP_TEXT, text.as_bytes())).await;
    }

    /// The next frame, or `Ended`; `None` when nothing came within `within`.
    /// Chat presence frames (a connection gets its own user's arrival) are
    /// skipped: these tests are about the WebSocket protocol.
    pub async fn next(&mut self, within: Duration) -> Option<Got> {
        let deadline = Instant::now() + within;
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                if is_presence(&frame) {
                    continue;
                }
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .ok()?;
            match read {
                Ok(0) | Err(_) => return Some(Got::Ended),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until a close frame; its code (1005 for an empty one), or `None`
    /// when the connection ended without one or nothing came within `within`.
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await? {
                Got::Frame {
                    opcode: OP_CLOSE,
                    payload,
                } if payload.len() >= 2 => {
                    return Some(u16::from_be_bytes([payload[0], payload[1]]));
                }
                Got::Frame { opcode: OP_CLOSE, .. } => return Some(1005),
                Got::Frame { .. } => continue,
                Got::Ended => return None,
            }
        }
    }

    /// The next text frame as JSON, answering pings on the way.
    pub async fn next_json(&mut self, within: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await? {
                Got::Frame {
                    opcode: OP_TEXT,
                    payload,
                } => return serde_json::from_slice(&payload).ok(),
                Got::Frame {
                    opcode: OP_PING,
                    payload,
                } => self.send(Raw::new(OP_PONG, payload)).await,
                Got::Frame { .. } => continue,
                Got::Ended => return None,
            }
        }
    }

    /// After the server's close frame: the connection ends within `within`.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => return false,
                Some(Got::Ended) => return true,
                Some(Got::Frame { .. }) => continue,
            }
        }
    }
}

/// One complete server frame at the start of `buf` (servers never mask).
fn parse(buf: &[u8]) -> Option<(Got, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0F;
    let (len, start) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < start + len {
        return None;
    }
    let payload = buf[start..start + len].to_vec();
    Some((Got::Frame { opcode, payload }, start + len))
}

fn is_presence(frame: &Got) -> bool {
    match frame {
        Got::Frame {
            opcode: OP_TEXT,
            payload,
        } => serde_json::from_slice::<serde_json::Value>(payload)
            .is_ok_and(|f| f.get("type").and_then(|t| t.as_str()) == Some("presence")),
        _ => false,
    }
}
