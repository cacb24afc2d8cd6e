//! The request span of the HTTP trace layer: like tower-http's default
//! (`method`, `uri`, `version`, at DEBUG) but with credentials in the query
//! string (`/ws/chat?token=...`) replaced by `[redacted]`, so no log level
//! ever writes a token.

use axum::extract::Request;
use axum::http::Uri;
use tracing::Span;

/// Query parameters whose value is never logged (names compared case-insensitively, by substring).
const SECRET_PARAMS: &[&str] = &["token", "key", "secret", "password", "auth", "jwt"];

pub fn make_span(request: &Request) -> Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        uri = %redacted(request.uri()),
        version = ?request.version(),
    )
}

/// `uri` as text, with the values of secret query parameters replaced.
pub fn redacted(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.to_string();
    };
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}=[redacted]"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{}?{query}", uri.path())
}

fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|secret| name.contains(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_the_query_are_redacted_and_the_rest_kept() {
        let uri: Uri = "/ws/chat?sessionId=desk-1&token=eyJabc.def.ghi&x=1"
            .parse()
            .unwrap();
        assert_eq!(redacted(&uri), "/ws/chat?sessionId=desk-1&token=[redacted]&x=1");
        let uri: Uri = "/a?ACCESS_TOKEN=s3cret&apiKey=k".parse().unwrap();
        assert_eq!(redacted(&uri), "/a?ACCESS_TOKEN=[redacted]&apiKey=[redacted]");
        let uri: Uri = "/socket.io/?EIO=4&transport=websocket".parse().unwrap();
        assert_eq!(redacted(&uri), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(redacted(&"/healthz".parse().unwrap()), "/healthz");
    }
}
