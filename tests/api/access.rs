//! Who may see what (CONTRACT §7): private chat rooms on every entry point,
//! market entitlements, tokens that expire on live sockets, sending a user away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;
use futures_util::StreamExt;
use roomcast::auth::patterns::Patterns;
use roomcast::auth::token::Claims;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::helpers::{JWT_SECRET, PUBLISH_KEY, TestApp, spawn_app, spawn_app_with};

const SHORT: Duration = Duration::from_millis(400);

fn token_with(
    app: &TestApp,
    sub: &str,
    ttl_secs: u64,
    chat: Option<&[&str]>,
    symbols: Option<&[&str]>,
) -> String {
    app.tokens.sign(&Claims {
        sub: sub.to_owned(),
        exp: roomcast::clock::unix_secs() + ttl_secs,
        role: None,
        chat: chat.map(|c| Patterns::new(c.iter().copied()).unwrap()),
        symbols: symbols.map(|s| Patterns::new(s.iter().copied()).unwrap()),
    })
}

async fn rest_send(app: &TestApp, token: &str, room: &str, message: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url(&format!("/api/v1/chat/{room}/messages")))
        .bearer_auth(token)
        .json(&json!({ "message": message }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The HTTP status of a refused `/ws/chat` upgrade, or 101.
async fn plain_upgrade_status(addr: SocketAddr, room: &str, token: &str) -> u16 {
    let url = format!("ws://{addr}/ws/chat?sessionId={room}&token={token}");
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected upgrade error: {e}"),
    }
}

#[tokio::test]
async fn chat_rooms_are_private_by_default_on_every_entry_point() {
    let app = spawn_app_with(|c| c.chat_open = false).await;
    let alice = token_with(&app, "alice", 600, Some(&["dm-alice-*"]), None);
    let mallory = token_with(&app, "mallory", 600, None, None);

    let mut alice_socket = app.socket(Some(json!({ "token": alice }))).await;
    let joined = alice_socket
        .ask("chat:join", json!({ "roomId": "dm-alice-bob" }))
        .await;
    assert_eq!(joined["ok"], true, "the chat claim allows it: {joined}");
    let sent = alice_socket
        .ask(
            "chat:send",
            json!({ "roomId": "dm-alice-bob", "message": "secret: the wire code is 4711" }),
        )
        .await;
    assert_eq!(sent["ok"], true);
    alice_socket.next("chat:message").await; // her own, as every member gets it
    let refused = alice_socket
        .ask("chat:join", json!({ "roomId": "xdm-alice-bob" }))
        .await;
    assert_eq!(
        refused,
        json!({ "error": "not allowed in this room" }),
        "patterns match whole ids"
    );

    let mut mallory_socket = app.socket(Some(json!({ "token": mallory }))).await;
    let refused = mallory_socket
        .ask("chat:join", json!({ "roomId": "dm-alice-bob" }))
        .await;
    assert_eq!(
        refused,
        json!({ "error": "not allowed in this room" }),
        "no history, no unread"
    );
    let history = mallory_socket
        .ask("chat:history", json!({ "roomId": "dm-alice-bob" }))
        .await;
    assert!(history.get("messages").is_none(), "{history}");
    let (status, body) = rest_send(&app, &mallory, "dm-alice-bob", "let me in").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not allowed in this room"))
    );
    assert_eq!(
        plain_upgrade_status(app.addr, "dm-alice-bob", &mallory).await,
        403
    );
    assert!(
        !alice_socket.receives("chat:message", SHORT).await,
        "nothing mallory tried reached the room"
    );
    app.stop().await;
}

#[tokio::test]
async fn chat_open_lets_any_user_in_unless_a_claim_decides() {
    let app = spawn_app_with(|c| c.chat_open = true).await;
    let anyone = token_with(&app, "anyone", 600, None, None);
    let limited = token_with(&app, "limited", 600, Some(&[]), None);
    let mut socket = app.socket(Some(json!({ "token": anyone }))).await;
    assert_eq!(
        socket.ask("chat:join", json!({ "roomId": "lobby" })).await["ok"],
        true
    );
    let mut socket = app.socket(Some(json!({ "token": limited }))).await;
    assert_eq!(
        socket.ask("chat:join", json!({ "roomId": "lobby" })).await,
        json!({ "error": "not allowed in this room" }),
        "an empty chat claim allows nothing, even with --chat-open"
    );
    app.stop().await;
}

/// An app backend that allows `alice` into `room-1` only, counting questions.
async fn spawn_authorizer(asked: Arc<AtomicUsize>, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/authorize",
        post(move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
            let asked = asked.clone();
            async move {
                asked.fetch_add(1, Ordering::SeqCst);
                let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
                if bearer != Some(&format!("Bearer {PUBLISH_KEY}")) {
                    return StatusCode::UNAUTHORIZED;
                }
                if body == json!({ "userId": "alice", "roomId": "room-1" }) {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::FORBIDDEN
                }
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });
    addr
}

#[tokio::test]
async fn the_authorizer_decides_is_cached_and_fails_closed() {
    let asked = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let backend = spawn_authorizer(asked.clone(), stop.clone()).await;
    let app = spawn_app_with(|c| {
        c.chat_authorizer = Some(format!("http://{backend}/authorize"));
        c.chat_authorizer_cache_s = 30;
    })
    .await;
    let alice = token_with(&app, "alice", 600, None, None);
    let bob = token_with(&app, "bob", 600, None, None);
    let mut socket = app.socket(Some(json!({ "token": alice }))).await;
    assert_eq!(
        socket.ask("chat:join", json!({ "roomId": "room-1" })).await["ok"],
        true
    );
    assert_eq!(
        socket.ask("chat:join", json!({ "roomId": "room-2" })).await,
        json!({ "error": "not allowed in this room" })
    );
    let mut bob_socket = app.socket(Some(json!({ "token": bob }))).await;
    assert_eq!(
        bob_socket.ask("chat:join", json!({ "roomId": "room-1" })).await,
        json!({ "error": "not allowed in this room" })
    );
    assert_eq!(rest_send(&app, &bob, "room-1", "hi").await.0, 403);
    assert_eq!(plain_upgrade_status(app.addr, "room-1", &bob).await, 403);
    let before = asked.load(Ordering::SeqCst);
    assert_eq!(rest_send(&app, &alice, "room-1", "cached").await.0, 201);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        before,
        "the answer came from the cache"
    );

    stop.cancel();
    let carol = token_with(&app, "carol", 600, None, None);
    let mut carol_socket = app.socket(Some(json!({ "token": carol }))).await;
    assert_eq!(
        carol_socket.ask("chat:join", json!({ "roomId": "room-1" })).await,
        json!({ "error": "authorization unavailable" }),
        "a backend that is down refuses"
    );
    app.stop().await;
}

#[tokio::test]
async fn symbols_are_entitled_by_claim_or_public_list() {
    let app = spawn_app_with(|c| c.public_symbols = Patterns::new(["PUB-*"]).unwrap()).await;
    let mut anonymous = app.socket(None).await;
    assert_eq!(anonymous.ask("subscribe:price", json!("PUB-1")).await["ok"], true);
    assert_eq!(
        anonymous
            .ask("subscribe:price", json!(["PUB-2", "BTC-USD"]))
            .await,
        json!({ "error": "not entitled to BTC-USD" })
    );
    app.publish("prices", json!({ "symbol": "PUB-2", "price": 1 }))
        .await;
    assert!(!anonymous.receives("price:update", SHORT).await, "all or nothing");
    let trader = token_with(&app, "trader", 600, None, Some(&["BTC-*"]));
    let mut socket = app.socket(Some(json!({ "token": trader }))).await;
    assert_eq!(socket.ask("subscribe:trades", json!("BTC-USD")).await["ok"], true);
    assert_eq!(
        socket.ask("subscribe:price", json!("PUB-1")).await,
        json!({ "error": "not entitled to PUB-1" }),
        "the claim alone decides"
    );
    app.publish("prices", json!({ "symbol": "PUB-1", "price": 2 }))
        .await;
    assert!(
        !socket.receives("price:update", SHORT).await,
        "nothing was joined"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_expiring_token_warns_then_drops_the_socket_to_anonymous() {
    let app = spawn_app_with(|c| c.chat_open = true).await;
    let token = token_with(&app, "temp", 3, None, None);
    let mut socket = app.socket(Some(json!({ "token": token }))).await;
    assert_eq!(
        socket.ask("chat:join", json!({ "roomId": "expiry" })).await["ok"],
        true
    );
    assert_eq!(socket.ask("subscribe:price", json!("KEEP")).await["ok"], true);
    let expiring = socket.next("token:expiring").await;
    assert!(expiring["expiresAt"].as_u64().unwrap() > roomcast::clock::unix_millis());
    let unauthorized = socket.next("unauthorized").await;
    assert_eq!(unauthorized, json!({ "message": "Token expired" }));
    app.publish(
        "emit",
        json!({ "room": "user:temp", "event": "notification", "data": 1 }),
    )
    .await;
    assert!(!socket.receives("notification", SHORT).await, "user room left");
    let other = app.tokens.mint("other", None, 600);
    let mut other_socket = app.socket(Some(json!({ "token": other }))).await;
    other_socket.ask("chat:join", json!({ "roomId": "expiry" })).await;
    other_socket
        .ask("chat:send", json!({ "roomId": "expiry", "message": "after" }))
        .await;
    assert!(!socket.receives("chat:message", SHORT).await, "chat room left");
    app.publish("prices", json!({ "symbol": "KEEP", "price": 3 }))
        .await;
    assert_eq!(
        socket.next("price:update").await["price"],
        3.0,
        "market data kept"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_fresh_token_for_the_same_user_extends_without_missing_anything() {
    let app = spawn_app().await;
    let mut socket = app
        .socket(Some(json!({ "token": token_with(&app, "ext", 3, None, None) })))
        .await;
    let publisher = {
        let http = app.http.clone();
        let url = app.url("/api/v1/emit");
        tokio::spawn(async move {
            for i in 0..40 {
                http.post(&url)
                    .bearer_auth(PUBLISH_KEY)
                    .json(&json!({ "room": "user:ext", "event": "notification", "data": i }))
                    .send()
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    socket.next("token:expiring").await;
    let fresh = token_with(&app, "ext", 600, None, None);
    assert_eq!(socket.ask("authenticate", json!(fresh)).await["ok"], true);
    let mut seen = Vec::new();
    while seen.len() < 40 {
        seen.push(socket.next("notification").await.as_u64().unwrap());
    }
    publisher.await.unwrap();
    assert_eq!(
        seen,
        (0..40).collect::<Vec<_>>(),
        "every notification across the refresh"
    );
    assert!(!socket.receives("unauthorized", Duration::from_secs(1)).await);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_authenticate_leaves_every_room_the_user_had() {
    let app = spawn_app_with(|c| c.chat_open = true).await;
    let mut socket = app
        .socket(Some(json!({ "token": app.tokens.mint("gone", None, 600) })))
        .await;
    assert_eq!(
        socket.ask("chat:join", json!({ "roomId": "left" })).await["ok"],
        true
    );
    let refused = socket.ask("authenticate", json!("not-a-token")).await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("Authentication failed")
    );
    let mut other = app
        .socket(Some(json!({ "token": app.tokens.mint("stay", None, 600) })))
        .await;
    other.ask("chat:join", json!({ "roomId": "left" })).await;
    other
        .ask(
            "chat:send",
            json!({ "roomId": "left", "message": "still there?" }),
        )
        .await;
    assert!(
        !socket.receives("chat:message", SHORT).await,
        "the chat room was left"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_user_is_sent_away_from_every_connection() {
    let app = spawn_app_with(|c| c.chat_open = true).await;
    let token = app.tokens.mint("evicted", None, 600);
    let mut first = app.socket(Some(json!({ "token": token }))).await;
    let mut second = app.socket(Some(json!({ "token": token }))).await;
    let url = format!("ws://{}/ws/chat?sessionId=lobby&token={token}", app.addr);
    let (mut plain, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut bystander = app
        .socket(Some(json!({ "token": app.tokens.mint("stays", None, 600) })))
        .await;
    let (status, body) = app
        .publish("users/evicted/disconnect", json!({ "reason": "account closed" }))
        .await;
    assert_eq!((status, body), (202, json!({ "disconnected": 3 })));
    assert!(first.disconnected_within(Duration::from_secs(2)).await);
    assert!(second.disconnected_within(Duration::from_secs(2)).await);
    let close = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match plain.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(close, Some(4003));
    let _ = plain.close(None).await;
    assert_eq!(bystander.ask("ping", json!(null)).await["ok"], true);
    let (status, _) = app.post_raw("users/evicted/disconnect", "", None).await;
    assert_eq!(status, 401, "the publish key is required");
    app.stop().await;
}

/// `--demo`'s token endpoint (CONTRACT §7 "a token for trying it"): tokens
/// that may chat in any room (so two browser tabs can chat without
/// `--chat-open`), and admin tokens for loopback clients. The refusal of
/// admin tokens to other peers is unit-tested in `demo::token` (a test
/// cannot come from a non-loopback address).
#[tokio::test]
async fn demo_tokens_chat_anywhere_and_admin_tokens_reach_loopback() {
    let app = spawn_app_with(|config| {
        config.demo = true;
        config.chat_open = false;
    })
    .await;
    let fetch = |query: &'static str| {
        let request = app.http.get(app.url(&format!("/api/v1/demo/token?{query}")));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, user) = fetch("sub=ann").await;
    assert_eq!(status, 200, "{user}");
    let token = user["token"].as_str().unwrap().to_owned();
    let mut ann = app.socket(Some(json!({ "token": token }))).await;
    let joined = ann.ask("chat:join", json!({ "roomId": "demo-room" })).await;
    assert_eq!(
        joined["ok"], true,
        "a demo token may join a private room: {joined}"
    );

    let (status, admin) = fetch("sub=boss&role=admin").await;
    assert_eq!(status, 200, "loopback gets an admin token: {admin}");
    let verifier = roomcast::auth::token::TokenVerifier::hs256(JWT_SECRET.as_bytes());
    let identity = verifier.verify(admin["token"].as_str().unwrap()).unwrap();
    assert!(identity.is_admin);
    app.stop().await;
}
