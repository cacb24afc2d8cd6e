//! HTTP bearer checks as extractors, generic over the router's state: the
//! publish API's key (`Publisher`, compared in constant time) and user JWTs
//! (`User`). Missing or wrong is 401 `{ error }` with `WWW-Authenticate: Bearer`.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use metrics::Counter;

use super::error::ApiError;
use crate::auth::token::{Identity, TokenVerifier};
use crate::config::Secret;

/// The publish API key in force.
#[derive(Clone)]
pub struct PublishKey(pub Arc<Secret>);

/// What checking a user token needs: the verifier, and the failure counter.
#[derive(Clone)]
pub struct UserTokens {
    pub verifier: TokenVerifier,
    pub failures: Counter,
}

/// Proof that a request carried the publish key.
pub struct Publisher;

impl<S: Send + Sync> FromRequestParts<S> for Publisher
where
    PublishKey: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let PublishKey(key) = PublishKey::from_ref(state);
        let presented = bearer_token(parts).ok_or(ApiError::Unauthorized("missing bearer publish key"))?;
        if constant_time_eq(presented.as_bytes(), key.expose().as_bytes()) {
            Ok(Publisher)
        } else {
            Err(ApiError::Unauthorized("wrong publish key"))
        }
    }
}

/// The user of a request that carried a valid user JWT as bearer.
pub struct User(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for User
where
    UserTokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let tokens = UserTokens::from_ref(state);
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized("missing bearer user token"))?;
        match tokens.verifier.verify_with_refresh(token).await {
            Ok(identity) => Ok(User(identity)),
            Err(_) => {
                tokens.failures.increment(1);
                Err(ApiError::Unauthorized("invalid or expired user token"))
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_whole_keys() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
