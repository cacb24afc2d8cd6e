//! User token verification: pure, no I/O. HS256 only (the algorithm is pinned,
//! so a token signed with `none` or another algorithm is refused), `exp` and
//! `sub` required.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Seconds of clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 5;

/// Who a socket or request belongs to, once its token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub is_admin: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

/// Verifies (and, for the demo and tests, mints) HS256 user tokens.
#[derive(Clone)]
pub struct TokenVerifier {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Self {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            }
        })?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(TokenError::Invalid);
        }
        Ok(Identity {
            is_admin: claims.role.as_deref() == Some("admin"),
            user_id: claims.sub,
        })
    }

    /// Signs a token for `sub` valid `ttl_secs` from now.
    pub fn mint(&self, sub: &str, role: Option<&str>, ttl_secs: u64) -> String {
        let claims = Claims {
            sub: sub.to_owned(),
            exp: crate::clock::unix_secs() + ttl_secs,
            role: role.map(str::to_owned),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(HS256)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::EncodingKey;
    use serde_json::json;

    fn sign(alg: Algorithm, secret: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn future() -> u64 {
        crate::clock::unix_secs() + 600
    }

    #[test]
    fn a_valid_token_gives_the_user_and_role() {
        let v = TokenVerifier::hs256(b"s3cret");
        let t = sign(
            Algorithm::HS256,
            b"s3cret",
            json!({"sub": "42", "exp": future(), "role": "admin"}),
        );
        assert_eq!(
            v.verify(&t),
            Ok(Identity {
                user_id: "42".into(),
                is_admin: true
            })
        );
        let t = v.mint("7", None, 60);
        assert_eq!(
            v.verify(&t),
            Ok(Identity {
                user_id: "7".into(),
                is_admin: false
            })
        );
    }

    #[test]
    fn expired_wrong_secret_wrong_alg_and_missing_claims_are_refused() {
        let v = TokenVerifier::hs256(b"s3cret");
        let past = crate::clock::unix_secs() - 3600;
        let expired = sign(Algorithm::HS256, b"s3cret", json!({"sub": "1", "exp": past}));
        assert_eq!(v.verify(&expired), Err(TokenError::Expired));
        let cases = [
            sign(Algorithm::HS256, b"other", json!({"sub": "1", "exp": future()})),
            sign(Algorithm::HS384, b"s3cret", json!({"sub": "1", "exp": future()})),
            sign(Algorithm::HS256, b"s3cret", json!({"sub": "1"})),
            sign(Algorithm::HS256, b"s3cret", json!({"exp": future()})),
            sign(Algorithm::HS256, b"s3cret", json!({"sub": 5, "exp": future()})),
            sign(Algorithm::HS256, b"s3cret", json!({"sub": "", "exp": future()})),
            "not.a.token".to_owned(),
            // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.".to_owned(),
        ];
        for token in cases {
            assert_eq!(v.verify(&token), Err(TokenError::Invalid), "{token}");
        }
    }
}
