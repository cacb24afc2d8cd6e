//! Gives Socket.IO WebSocket upgrade requests a request head of their own,
//! holding only what is used. hyper parses the URI and headers as slices of
//! its per-connection read buffer (8 KiB), and socketioxide keeps each
//! socket's request parts for its lifetime, so every upgraded socket kept
//! that whole buffer alive (heap profile: 7.6 KiB per connection). A copy of
//! the head lets the buffer go at the upgrade; copying only what is read
//! after (engineioxide reads the URI's query and `Sec-WebSocket-Key`, and
//! takes hyper's `OnUpgrade`) keeps the copy small. With the Admin UI on,
//! every header and the client address are kept too: the UI shows them.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::Uri;
use axum::http::header::{HeaderMap, HeaderName, HeaderValue, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::upgrade::OnUpgrade;

use super::conn::Registration;

/// socketioxide's path prefix.
const SOCKET_IO_PATH: &str = "/socket.io/";
/// What socket.io-client asks for when it opens a WebSocket directly: kept
/// as a static URI, without an allocation.
const PLAIN_WS_URI: &str = "/socket.io/?EIO=4&transport=websocket";

/// What of an upgrade request's head a Socket.IO socket keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKept {
    /// What engineioxide reads: the URI and `Sec-WebSocket-Key`.
    Least,
    /// Every header and the client address as well (the Admin UI shows them).
    ForAdminUi,
}

/// Replaces the head of a Socket.IO WebSocket upgrade request with an owned
/// copy of what `kept` says; other requests pass untouched.
pub async fn own_upgrade_head(kept: HeadKept, request: Request) -> Request {
    if !request.uri().path().starts_with(SOCKET_IO_PATH) || !request.headers().contains_key(UPGRADE) {
        return request;
    }
    let (mut parts, body) = request.into_parts();
    let mut owned = Request::new(body);
    *owned.method_mut() = parts.method;
    *owned.version_mut() = parts.version;
    *owned.uri_mut() = owned_uri(&parts.uri);
    *owned.headers_mut() = match kept {
        HeadKept::Least => least_headers(&parts.headers),
        HeadKept::ForAdminUi => owned_headers(&parts.headers),
    };
    if let Some(upgrade) = parts.extensions.remove::<OnUpgrade>() {
        owned.extensions_mut().insert(upgrade);
    }
    // The connection, so a client that stops reading can lose its transport.
    if let Some(connection) = parts.extensions.remove::<Registration>() {
        owned.extensions_mut().insert(connection);
    }
    if kept == HeadKept::ForAdminUi
        && let Some(peer) = parts.extensions.remove::<ConnectInfo<SocketAddr>>()
    {
        owned.extensions_mut().insert(peer);
    }
    owned
}

fn owned_uri(uri: &Uri) -> Uri {
    if *uri == *PLAIN_WS_URI {
        return Uri::from_static(PLAIN_WS_URI);
    }
    Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
}

/// `Sec-WebSocket-Key` alone, copied (in a map sized for one: a default
/// map takes room for several, ~0.6 KiB).
fn least_headers(headers: &HeaderMap) -> HeaderMap {
    let mut least = HeaderMap::with_capacity(1);
    if let Some(key) = headers.get(SEC_WEBSOCKET_KEY)
        && let Ok(copy) = HeaderValue::from_bytes(key.as_bytes())
    {
        least.insert(SEC_WEBSOCKET_KEY, copy);
    }
    least
}

/// A copy of `headers` that shares no bytes with them.
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let (Ok(name), Ok(mut copy)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            continue; // unreachable: both were valid already
        };
        copy.set_sensitive(value.is_sensitive());
        owned.append(name, copy);
    }
    owned
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::body::Bytes;
    use axum::extract::OriginalUri;

    fn upgrade_request(uri: &str) -> Request {
        let buffer = Bytes::from_static(b"websocket x-custom-thing yes");
        let mut request = Request::builder()
            .uri(uri)
            .header(
                UPGRADE,
                HeaderValue::from_maybe_shared(buffer.slice(0..9)).unwrap(),
            )
            .header(SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .header("x-custom-thing", "yes")
            .header("x-custom-thing", "again")
            .body(Body::empty())
            .unwrap();
        let original = OriginalUri(request.uri().clone());
        request.extensions_mut().insert(original);
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    #[tokio::test]
    async fn a_socket_keeps_only_what_engineioxide_reads() {
        let uri = "/socket.io/?EIO=4&transport=websocket&x=1";
        let kept = own_upgrade_head(HeadKept::Least, upgrade_request(uri)).await;
        assert_eq!(kept.uri(), uri);
        assert_eq!(kept.headers().len(), 1);
        assert_eq!(kept.headers()[SEC_WEBSOCKET_KEY], "dGhlIHNhbXBsZSBub25jZQ==");
        assert!(kept.extensions().get::<OriginalUri>().is_none());
        assert!(kept.extensions().get::<ConnectInfo<SocketAddr>>().is_none());
        let plain = own_upgrade_head(HeadKept::Least, upgrade_request(PLAIN_WS_URI)).await;
        assert_eq!(plain.uri(), PLAIN_WS_URI);
    }

    #[tokio::test]
    async fn with_the_admin_ui_every_header_and_the_address_are_kept() {
        let kept = own_upgrade_head(HeadKept::ForAdminUi, upgrade_request(PLAIN_WS_URI)).await;
        assert_eq!(kept.headers()[UPGRADE], "websocket");
        let custom: Vec<_> = kept.headers().get_all("x-custom-thing").iter().collect();
        assert_eq!(custom, ["yes", "again"]);
        assert!(kept.extensions().get::<ConnectInfo<SocketAddr>>().is_some());
    }

    #[tokio::test]
    async fn other_requests_pass_untouched() {
        let plain = Request::builder().uri("/healthz").body(Body::empty()).unwrap();
        assert_eq!(own_upgrade_head(HeadKept::Least, plain).await.uri(), "/healthz");
        let mut chat = upgrade_request("/ws/chat");
        chat.headers_mut()
            .insert("x-other", HeaderValue::from_static("1"));
        let chat = own_upgrade_head(HeadKept::Least, chat).await;
        assert!(
            chat.headers().contains_key("x-other"),
            "only Socket.IO upgrades are cut"
        );
        assert!(chat.extensions().get::<OriginalUri>().is_some());
    }
}
