//! `GET /api/v1/demo/token?sub=&role=`: a short-lived user token, for the
//! console in `--demo` mode only. Not routed at all otherwise.
//!
//! Demo tokens carry the `chat` claim `["*"]`, so two browser tabs can chat
//! in any room without `--chat-open`. An admin token (`role=admin`) goes only
//! to clients on loopback unless `--demo-admin-tokens-anywhere` is set; other
//! peers get 403.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::patterns::Patterns;
use crate::auth::token::Claims;
use crate::http::error::ApiError;
use crate::http::extract::UserTokens;

/// Lifetime of a demo token.
pub const DEMO_TOKEN_TTL_SECS: u64 = 15 * 60;

/// Who may get which demo token.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// `--demo-admin-tokens-anywhere`: admin tokens for any peer, not only loopback.
    pub admin_anywhere: bool,
}

impl Policy {
    /// May a client at `peer` (unknown: `None`) get an admin token?
    pub fn admin_allowed(self, peer: Option<IpAddr>) -> bool {
        self.admin_anywhere || peer.is_some_and(|ip| ip.to_canonical().is_loopback())
    }
}

pub fn router<S>(policy: Policy) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    UserTokens: FromRef<S>,
{
    Router::new()
        .route("/api/v1/demo/token", get(token))
        .layer(Extension(policy))
}

#[derive(Deserialize)]
struct Params {
    sub: Option<String>,
    role: Option<String>,
}

async fn token(
    State(tokens): State<UserTokens>,
    Extension(policy): Extension<Policy>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(params): Query<Params>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sub = params.sub.unwrap_or_else(|| "demo-user".to_owned());
    if sub.is_empty() || sub.len() > 64 {
        return Err(ApiError::BadRequest("sub must be 1-64 characters".into()));
    }
    let role = match params.role.as_deref() {
        None | Some("") => None,
        Some("admin") => Some("admin"),
        Some(_) => return Err(ApiError::BadRequest("role must be admin or absent".into())),
    };
    if role.is_some() && !policy.admin_allowed(peer.map(|Extension(ConnectInfo(addr))| addr.ip())) {
        return Err(ApiError::Forbidden(
            "demo admin tokens go to loopback clients only (--demo-admin-tokens-anywhere to allow others)"
                .into(),
        ));
    }
    tracing::warn!(user = ?sub, ?role, "DEMO MODE: issued a dev token to whoever asked");
    let signer = tokens.verifier.signer().ok_or_else(|| {
        ApiError::Unavailable("demo tokens need --jwt-secret (only HS256 tokens can be minted)".into())
    })?;
    let token = signer.sign(&Claims {
        sub: sub.clone(),
        exp: crate::clock::unix_secs() + DEMO_TOKEN_TTL_SECS,
        role: role.map(str::to_owned),
        chat: Patterns::new(["*"]).ok(),
        symbols: None,
    });
    Ok(Json(
        json!({ "token": token, "userId": sub, "expiresIn": DEMO_TOKEN_TTL_SECS }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn admin_tokens_go_to_loopback_only_unless_allowed_anywhere() {
        let local = Policy::default();
        let v4_loopback = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
        let v6_loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let mapped_loopback = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        let lan = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
        let public_v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mapped_lan = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 5).to_ipv6_mapped());
        for ip in [v4_loopback, v6_loopback, mapped_loopback] {
            assert!(local.admin_allowed(Some(ip)), "{ip} is loopback");
        }
        for ip in [lan, public_v6, mapped_lan] {
            assert!(!local.admin_allowed(Some(ip)), "{ip} is not loopback");
        }
        assert!(!local.admin_allowed(None), "an unknown peer is not loopback");
        let anywhere = Policy { admin_anywhere: true };
        for ip in [lan, public_v6, mapped_lan, v4_loopback] {
            assert!(anywhere.admin_allowed(Some(ip)));
        }
        assert!(anywhere.admin_allowed(None));
    }
}
