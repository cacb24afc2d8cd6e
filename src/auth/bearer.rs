//! HTTP bearer checks: the publish API's key (`Publisher`, compared in
//! constant time) and user JWTs (`User`). Missing or wrong is 401.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use socketioxide::adapter::Adapter;

use super::token::Identity;
use crate::http::AppState;
use crate::http::error::ApiError;

/// Proof that a request carried the publish key.
pub struct Publisher;

impl<A: Adapter> FromRequestParts<AppState<A>> for Publisher {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<A>) -> Result<Self, ApiError> {
        let presented = bearer_token(parts).ok_or(ApiError::Unauthorized("missing bearer publish key"))?;
        if constant_time_eq(presented.as_bytes(), state.publish_key.expose().as_bytes()) {
            Ok(Publisher)
        } else {
            Err(ApiError::Unauthorized("wrong publish key"))
        }
    }
}

/// The user of a request that carried a valid user JWT as bearer.
pub struct User(pub Identity);

impl<A: Adapter> FromRequestParts<AppState<A>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<A>) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized("missing bearer user token"))?;
        match state.tokens.verify_with_refresh(token).await {
            Ok(identity) => Ok(User(identity)),
            Err(_) => {
                state.metrics.auth_failures.increment(1);
                Err(ApiError::Unauthorized("invalid or expired user token"))
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
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
