//! Tokens from identity providers (CONTRACT §7 "Keys"): RSA and EC keys made
//! with the `openssl` CLI for each test, tokens signed with them, a JWKS
//! served by a small local HTTP server that the test rotates and takes down.
//! Every token is tried where a user would present it: the Socket.IO
//! handshake, the `authenticate` event, the chat REST API and `/ws/chat`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use roomcast::{Application, Config};
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, RawSocket, TestApp, spawn_app_with};

const ISSUER: &str = "https://tenant.idp.test/";
const AUDIENCE: &str = "https://roomcast.test/api";

/// A key pair made by `openssl`, its public half as PEM and as a JWK.
struct TestKey {
    alg: Algorithm,
    private_pem: Vec<u8>,
    public_pem_path: PathBuf,
    public_pem: Vec<u8>,
    jwk: Value,
}

impl TestKey {
    fn rsa(dir: &Path, kid: &str) -> Self {
        let private = dir.join(format!("{kid}.key.pem"));
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ],
            &private,
        );
        let public = public_half(&private, dir, kid);
        let modulus = String::from_utf8(openssl_out(
            &["rsa", "-pubin", "-noout", "-modulus", "-in"],
            &public,
        ))
        .unwrap();
        let n = hex(modulus.trim().trim_start_matches("Modulus="));
        let jwk =
            json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64url(&n), "e": "AQAB"});
        Self::load(Algorithm::RS256, &private, public, jwk)
    }

    fn ec(dir: &Path, kid: &str) -> Self {
        let private = dir.join(format!("{kid}.key.pem"));
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ],
            &private,
        );
        let public = public_half(&private, dir, kid);
        let der = openssl_out(&["pkey", "-pubin", "-outform", "DER", "-in"], &public);
        let point = &der[der.len() - 64..]; // the uncompressed point's x || y
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64url(&point[..32]), "y": b64url(&point[32..])});
        Self::load(Algorithm::ES256, &private, public, jwk)
    }

    fn load(alg: Algorithm, private: &Path, public: PathBuf, jwk: Value) -> Self {
        Self {
            alg,
            private_pem: std::fs::read(private).unwrap(),
            public_pem: std::fs::read(&public).unwrap(),
            public_pem_path: public,
            jwk,
        }
    }

    fn kid(&self) -> &str {
        self.jwk["kid"].as_str().unwrap()
    }

    /// Signs `claims` with this key, naming `kid` (this key's when `None`).
    fn sign_as(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.unwrap_or(self.kid()).to_owned());
        let key = match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&self.private_pem),
            _ => EncodingKey::from_ec_pem(&self.private_pem),
        }
        .unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(None, claims)
    }
}

fn openssl(args: &[&str], path: &Path) {
    let status = Command::new("openssl")
        .args(args)
        .arg(path)
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

fn openssl_out(args: &[&str], path: &Path) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .arg(path)
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?}");
    output.stdout
}

fn public_half(private: &Path, dir: &Path, kid: &str) -> PathBuf {
    let public = dir.join(format!("{kid}.pub.pem"));
    let status = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(private)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl runs");
    assert!(status.success());
    public
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roomcast-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims an identity provider would issue for `sub`, valid for 10 minutes.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 600, "iat": now(), "iss": ISSUER, "aud": [AUDIENCE, "https://tenant.idp.test/userinfo"]})
}

/// A JWKS endpoint on loopback: serves the current key set, or 503 while "down";
/// counts the requests it gets.
#[derive(Clone, Default)]
struct JwksServer {
    keys: Arc<Mutex<Option<Vec<Value>>>>,
    fetches: Arc<AtomicUsize>,
    url: String,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            url: format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap()),
            ..Self::default()
        };
        server.publish(keys);
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        server
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.keys.lock().unwrap() = Some(keys);
    }

    fn go_down(&self) {
        *self.keys.lock().unwrap() = None;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(server): State<JwksServer>) -> Response {
    server.fetches.fetch_add(1, Ordering::SeqCst);
    match server.keys.lock().unwrap().clone() {
        Some(keys) => axum::Json(json!({ "keys": keys })).into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// A node that trusts only `jwks` (no --jwt-secret), with issuer and audience set.
async fn spawn_idp_app(jwks: &JwksServer) -> TestApp {
    let url = jwks.url.clone();
    spawn_app_with(|config| {
        config.jwt_secret = None;
        config.jwks_url = Some(url);
        config.jwt_issuer = Some(ISSUER.to_owned());
        config.jwt_audience = Some(AUDIENCE.to_owned());
    })
    .await
}

async fn handshake(app: &TestApp, token: &str) -> Result<RawSocket, String> {
    RawSocket::connect(app.addr, Some(json!({ "token": token }))).await
}

/// Status of a chat REST post with `token` as bearer.
async fn rest_status(app: &TestApp, token: &str) -> u16 {
    app.http
        .post(app.url("/api/v1/chat/idp-room/messages"))
        .bearer_auth(token)
        .json(&json!({ "message": "hello" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// HTTP status of a `/ws/chat` upgrade with `token` (101 when upgraded).
async fn ws_chat_status(app: &TestApp, token: &str) -> u16 {
    let url = format!("ws://{}/ws/chat?sessionId=idp-room&token={token}", app.addr);
    match tokio_tungstenite::connect_async(url).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("ws/chat: {e}"),
    }
}

#[tokio::test]
async fn tokens_from_a_jwks_work_everywhere_and_rotation_needs_no_restart() {
    let dir = temp_dir("jwks-rotation");
    let (rsa1, ec1, rsa2) = (
        TestKey::rsa(&dir, "rsa-1"),
        TestKey::ec(&dir, "ec-1"),
        TestKey::rsa(&dir, "rsa-2"),
    );
    let jwks = JwksServer::start(vec![rsa1.jwk.clone(), ec1.jwk.clone()]).await;
    let app = spawn_idp_app(&jwks).await;

    // RS256 at the handshake, ES256 through `authenticate`, both on REST and /ws/chat.
    let rs256 = rsa1.sign(&claims("alice"));
    let mut alice = handshake(&app, &rs256)
        .await
        .expect("RS256 token accepted at the handshake");
    app.publish(
        "emit",
        json!({"room": "user:alice", "event": "notice", "data": "for alice"}),
    )
    .await;
    assert_eq!(alice.next("notice").await, json!("for alice"));
    let es256 =
        ec1.sign(&json!({"sub": "bob", "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE, "role": "admin"}));
    let mut bob = app.socket(None).await;
    assert_eq!(
        bob.ask("authenticate", json!(es256)).await,
        json!({"ok": true, "userId": "bob"})
    );
    assert_eq!(rest_status(&app, &rs256).await, 201);
    assert_eq!(rest_status(&app, &es256).await, 201);
    assert_eq!(ws_chat_status(&app, &rs256).await, 101);

    // The provider rotates: rsa-2 in, rsa-1 out. No restart: the new kid is
    // fetched on first sight, the removed key no longer verifies.
    jwks.publish(vec![rsa2.jwk.clone(), ec1.jwk.clone()]);
    let rotated = rsa2.sign(&claims("carol"));
    handshake(&app, &rotated)
        .await
        .expect("a key rotated in is accepted without a restart");
    assert_eq!(rest_status(&app, &rotated).await, 201);
    assert_eq!(
        handshake(&app, &rsa1.sign(&claims("alice")))
            .await
            .err()
            .as_deref(),
        Some("Authentication failed")
    );

    // The endpoint goes down: the last keys stay in force, unknown kids are refused.
    jwks.go_down();
    let fetches_before = jwks.fetches();
    let rsa3 = TestKey::rsa(&dir, "rsa-3");
    let unknown = rsa3.sign(&claims("mallory"));
    let attempts: Vec<_> = (0..8).map(|_| handshake(&app, &unknown)).collect();
    for refused in futures_util::future::join_all(attempts).await {
        assert_eq!(refused.err().as_deref(), Some("Authentication failed"));
    }
    let fetched = jwks.fetches() - fetches_before;
    assert!(
        (1..=2).contains(&fetched),
        "8 tokens with an unknown kid fetched the JWKS {fetched} times"
    );
    handshake(&app, &rsa2.sign(&claims("carol")))
        .await
        .expect("last keys stay in force while the JWKS is down");
    handshake(&app, &ec1.sign(&claims("dave")))
        .await
        .expect("ES256 key kept too");

    let _ = std::fs::remove_dir_all(dir);
    app.stop().await;
}

#[tokio::test]
async fn forged_and_unfit_tokens_are_refused_at_every_entry_point() {
    let dir = temp_dir("jwks-refusals");
    let (rsa, ec, stranger) = (
        TestKey::rsa(&dir, "rsa-1"),
        TestKey::ec(&dir, "ec-1"),
        TestKey::rsa(&dir, "other"),
    );
    let jwks = JwksServer::start(vec![rsa.jwk.clone(), ec.jwk.clone()]).await;
    let app = spawn_idp_app(&jwks).await;
    let good = rsa.sign(&claims("u1"));
    handshake(&app, &good)
        .await
        .expect("the control token is accepted");

    let with = |patch: Value| {
        let mut c = claims("u1");
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let b64 = |v: &Value| b64url(v.to_string().as_bytes());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})),
        b64(&claims("u1"))
    );
    // Algorithm confusion: HS256 with the RSA public key's PEM as the HMAC secret.
    let confused = |kid: Option<&str>| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims("u1"), &EncodingKey::from_secret(&rsa.public_pem)).unwrap()
    };
    let cases = [
        ("alg none", alg_none),
        (
            "HS256 with the RSA public key as secret (kid)",
            confused(Some("rsa-1")),
        ),
        ("HS256 with the RSA public key as secret (no kid)", confused(None)),
        (
            "ES256 token naming the RSA kid",
            ec.sign_as(Some("rsa-1"), &claims("u1")),
        ),
        (
            "signed by a key not in the set, naming a listed kid",
            stranger.sign_as(Some("rsa-1"), &claims("u1")),
        ),
        ("kid not in the set", stranger.sign(&claims("u1"))),
        (
            "wrong issuer",
            rsa.sign(&with(json!({"iss": "https://evil.test/"}))),
        ),
        ("no issuer", rsa.sign(&with(json!({"iss": null})))),
        (
            "wrong audience",
            rsa.sign(&with(json!({"aud": "https://other.test/api"}))),
        ),
        (
            "audience list without ours",
            rsa.sign(&with(json!({"aud": ["a", "b"]}))),
        ),
        ("no audience", rsa.sign(&with(json!({"aud": null})))),
        ("nbf in the future", rsa.sign(&with(json!({"nbf": now() + 60})))),
        ("expired", rsa.sign(&with(json!({"exp": now() - 60})))),
        ("no exp", rsa.sign(&with(json!({"exp": null})))),
        ("HS256 with the test secret (no --jwt-secret configured)", {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims("u1"),
                &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
            )
            .unwrap()
        }),
    ];
    for (case, token) in &cases {
        // The four entry points at once: a token with an unknown kid waits for
        // one shared JWKS refresh, not one each.
        let authenticate = async {
            let mut socket = app.socket(None).await;
            let ack = socket.ask("authenticate", json!(token)).await;
            let event = match ack.get("error") {
                Some(_) => socket.next("unauthorized").await,
                None => Value::Null,
            };
            (ack, event)
        };
        let (refused, (ack, event), rest, ws) = tokio::join!(
            handshake(&app, token),
            authenticate,
            rest_status(&app, token),
            ws_chat_status(&app, token)
        );
        assert_eq!(
            refused.err().as_deref(),
            Some("Authentication failed"),
            "handshake: {case}"
        );
        let error = ack["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("Authentication failed"),
            "authenticate: {case}: {ack}"
        );
        assert!(event["message"].is_string(), "unauthorized event: {case}");
        assert_eq!(rest, 401, "REST: {case}");
        assert_eq!(ws, 401, "/ws/chat: {case}");
    }
    // nbf within the 5 s leeway is fine, as for exp.
    handshake(&app, &rsa.sign(&with(json!({"nbf": now() + 2}))))
        .await
        .expect("nbf within the leeway");
    let _ = std::fs::remove_dir_all(dir);
    app.stop().await;
}

#[tokio::test]
async fn a_pem_public_key_pins_its_algorithm_and_no_random_secret_is_generated() {
    let dir = temp_dir("pem-keys");
    let (rsa, ec) = (TestKey::rsa(&dir, "rsa"), TestKey::ec(&dir, "ec"));
    for (key, other) in [(&rsa, &ec), (&ec, &rsa)] {
        let path = key.public_pem_path.clone();
        let app = spawn_app_with(|config| {
            config.jwt_secret = None;
            config.jwt_public_key = Some(path);
            config.demo = true;
        })
        .await;
        let sub = json!({"sub": "p1", "exp": now() + 600});
        handshake(&app, &key.sign(&sub))
            .await
            .expect("token of the configured key accepted");
        let mut without_kid = Header::new(key.alg);
        without_kid.kid = None;
        let signing = match key.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&key.private_pem),
            _ => EncodingKey::from_ec_pem(&key.private_pem),
        }
        .unwrap();
        let plain = jsonwebtoken::encode(&without_kid, &sub, &signing).unwrap();
        handshake(&app, &plain)
            .await
            .expect("no kid needed with --jwt-public-key");
        assert!(
            handshake(&app, &other.sign(&sub)).await.is_err(),
            "the other key type is refused"
        );
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &sub,
            &EncodingKey::from_secret(&key.public_pem),
        )
        .unwrap();
        assert!(
            handshake(&app, &confused).await.is_err(),
            "HS256 with the PEM as secret is refused"
        );
        // No HS256 secret exists, so nothing can be minted: the demo's token endpoint says why.
        let response = app
            .http
            .get(app.url("/api/v1/demo/token?sub=x"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 503);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("--jwt-secret"), "{body}");
        app.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn start_up_fails_with_one_line_when_the_jwks_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/.well-known/jwks.json"); // the listener is dropped: nothing answers
    let mut config = Config::for_tests();
    config.jwks_url = Some(url.clone());
    let started = std::time::Instant::now();
    let error = match Application::build(config).await {
        Ok(_) => panic!("a node whose JWKS is unreachable must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(error.contains("--jwks-url") && error.contains(&url), "{error}");
    assert!(!error.contains('\n'), "one line: {error}");

    // The binary exits non-zero with that line.
    let output = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--publish-key",
            "k".repeat(32).as_str(),
            "--jwks-url",
            &url,
        ])
        .env_remove("ROOMCAST_JWT_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("roomcast: error: --jwks-url: cannot fetch")),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_token_command_mints_what_the_server_accepts() {
    let bin = env!("CARGO_BIN_EXE_roomcast");
    let secret = "a-token-command-secret-of-32-bytes!";
    let output = Command::new(bin)
        .args([
            "token",
            "--sub",
            "42",
            "--role",
            "admin",
            "--chat",
            "desk-*",
            "--symbols",
            "BTC-*",
            "--ttl",
            "1h",
        ])
        .env("ROOMCAST_JWT_SECRET", secret)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let identity = roomcast::auth::token::TokenVerifier::hs256(secret.as_bytes())
        .verify(&token)
        .unwrap();
    assert_eq!((identity.user_id.as_str(), identity.is_admin), ("42", true));
    assert!(identity.chat.unwrap().allows("desk-1") && identity.symbols.unwrap().allows("BTC-USD"));
    assert!((3590..=3600).contains(&(identity.expires_at - now())));

    let app = spawn_app_with(|config| config.jwt_secret = Some(roomcast::config::Secret::new(secret))).await;
    let mut admin = handshake(&app, &token)
        .await
        .expect("the server accepts the command's token");
    app.publish("emit", json!({"room": "admin", "event": "notice", "data": 1}))
        .await;
    assert_eq!(admin.next("notice").await, json!(1));
    app.stop().await;

    let output = Command::new(bin)
        .args(["token", "--sub", "42"])
        .env_remove("ROOMCAST_JWT_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no --jwt-secret"));
}

#[tokio::test]
async fn short_secrets_are_accepted_with_a_warning_that_never_shows_them() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--jwt-secret",
            "shortjwt",
            "--publish-key",
            "shortpub",
        ])
        .env_remove("ROOMCAST_JWT_SECRET")
        .env_remove("ROOMCAST_PUBLISH_KEY")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout).lines().take(50) {
            let line = line.unwrap_or_default();
            let listening = line.contains("listening");
            seen.push(line);
            if listening {
                break;
            }
        }
        seen
    });
    let lines = tokio::time::timeout(Duration::from_secs(10), lines).await;
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.expect("the node starts within 10 s").unwrap();
    let text = lines.join("\n");
    assert!(text.contains("--jwt-secret is 8 bytes long"), "{text}");
    assert!(text.contains("--publish-key is 8 bytes long"), "{text}");
    assert!(!text.contains("shortjwt") && !text.contains("shortpub"), "{text}");
    assert!(text.contains("listening"), "the node still starts: {text}");
}
