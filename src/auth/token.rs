//! User token verification (CONTRACT §2, §7 "Keys"): pure checks, no I/O on
//! the hot path. Every configured key verifies only with its own algorithm
//! (the HS256 secret only HS256, an RSA key only RS256, an EC P-256 key only
//! ES256), so `alg: none` and algorithm confusion are refused. `sub` and
//! `exp` are required; `nbf` in the future is refused with the same leeway as
//! `exp`; `iss` and `aud` are checked when configured.
//!
//! [`TokenVerifier::verify`] never waits. A token naming a `kid` that the
//! JWKS does not hold fails with [`TokenError::UnknownKey`];
//! [`TokenVerifier::verify_with_refresh`] (what the entry points use) then
//! waits for one shared JWKS refresh, at most [`UNKNOWN_KID_WAIT`], and
//! verifies again, so a key the provider just rotated in works at once.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::jwks::{FETCH_TIMEOUT, Jwks, UNKNOWN_KID_MIN_INTERVAL};
use super::keys::VerifyingKey;
use super::patterns::Patterns;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 5;
/// Longest a token with an unknown `kid` waits for the JWKS refresh.
pub const UNKNOWN_KID_WAIT: Duration =
    Duration::from_secs(UNKNOWN_KID_MIN_INTERVAL.as_secs() + FETCH_TIMEOUT.as_secs() + 1);
/// Most JWKS keys tried for a token without `kid`.
const MAX_KEYS_WITHOUT_KID: usize = 10;

/// Who a socket or request belongs to, once its token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub is_admin: bool,
    /// The token's `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The `chat` claim: chat rooms this user may join, when the token says.
    pub chat: Option<Patterns>,
    /// The `symbols` claim: market symbols this user may subscribe to, when the token says.
    pub symbols: Option<Patterns>,
}

/// The claims roomcast reads (others are ignored).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbols: Option<Patterns>,
}

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token issuer not accepted")]
    WrongIssuer,
    #[error("token audience not accepted")]
    WrongAudience,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("invalid token")]
    Invalid,
}

/// The keys and checks in force.
#[derive(Debug, Default)]
pub struct VerifierOptions {
    /// `--jwt-secret`: HS256.
    pub secret: Option<Vec<u8>>,
    /// `--jwt-public-key`: RS256 or ES256.
    pub public_key: Option<VerifyingKey>,
    /// `--jwks-url`.
    pub jwks: Option<Arc<Jwks>>,
    /// `--jwt-issuer`: `iss` must equal it.
    pub issuer: Option<String>,
    /// `--jwt-audience`: `aud` must contain it.
    pub audience: Option<String>,
}

/// Verifies user tokens against every configured key. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Option<(DecodingKey, TokenSigner)>,
    public_key: Option<VerifyingKey>,
    jwks: Option<Arc<Jwks>>,
    hs256: Validation,
    rs256: Validation,
    es256: Validation,
}

impl TokenVerifier {
    pub fn new(options: VerifierOptions) -> Self {
        let validation = |alg| {
            let mut v = Validation::new(alg);
            let mut required = vec!["exp", "sub"];
            v.leeway = LEEWAY_SECS;
            v.validate_nbf = true;
            if let Some(issuer) = &options.issuer {
                v.set_issuer(&[issuer]);
                required.push("iss");
            }
            match &options.audience {
                Some(audience) => {
                    v.set_audience(&[audience]);
                    required.push("aud");
                }
                None => v.validate_aud = false,
            }
            v.set_required_spec_claims(&required);
            v
        };
        Self {
            inner: Arc::new(Inner {
                hs256: validation(Algorithm::HS256),
                rs256: validation(Algorithm::RS256),
                es256: validation(Algorithm::ES256),
                secret: options
                    .secret
                    .map(|s| (DecodingKey::from_secret(&s), TokenSigner::hs256(&s))),
                public_key: options.public_key,
                jwks: options.jwks,
            }),
        }
    }

    /// A verifier with one HS256 secret and no other checks (tests, tools).
    pub fn hs256(secret: &[u8]) -> Self {
        Self::new(VerifierOptions {
            secret: Some(secret.to_vec()),
            ..VerifierOptions::default()
        })
    }

    /// The HS256 signer of `--jwt-secret`, when one is configured.
    pub fn signer(&self) -> Option<&TokenSigner> {
        self.inner.secret.as_ref().map(|(_, signer)| signer)
    }

    /// Checks `token` against the keys in force now; never waits.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let inner = &*self.inner;
        let validation = match header.alg {
            Algorithm::HS256 => &inner.hs256,
            Algorithm::RS256 => &inner.rs256,
            Algorithm::ES256 => &inner.es256,
            _ => return Err(TokenError::Invalid),
        };
        let mut outcome = Err(TokenError::Invalid);
        if header.alg == Algorithm::HS256 {
            if let Some((key, _)) = &inner.secret {
                outcome = check(token, key, validation);
            }
            return outcome;
        }
        if let Some(public) = inner.public_key.as_ref().filter(|k| k.alg == header.alg) {
            outcome = check(token, &public.key, validation);
            if settled(&outcome) {
                return outcome;
            }
        }
        let Some(jwks) = &inner.jwks else {
            return outcome;
        };
        let keys = jwks.keys();
        match &header.kid {
            Some(kid) => match keys.get(kid) {
                Some(key) if key.alg == header.alg => check(token, &key.key, validation),
                Some(_) => Err(TokenError::Invalid),
                None => Err(TokenError::UnknownKey),
            },
            None => {
                let same_alg = keys.values().filter(|k| k.alg == header.alg);
                for key in same_alg.take(MAX_KEYS_WITHOUT_KID) {
                    outcome = check(token, &key.key, validation);
                    if settled(&outcome) {
                        break;
                    }
                }
                outcome
            }
        }
    }

    /// [`verify`](Self::verify), and for a `kid` the JWKS does not hold: one
    /// shared JWKS refresh (at most [`UNKNOWN_KID_WAIT`]), then again.
    pub async fn verify_with_refresh(&self, token: &str) -> Result<Identity, TokenError> {
        let asked_at = tokio::time::Instant::now();
        match self.verify(token) {
            Err(TokenError::UnknownKey) => {}
            outcome => return outcome,
        }
        let Some(jwks) = &self.inner.jwks else {
            return Err(TokenError::UnknownKey);
        };
        let _ = tokio::time::timeout(UNKNOWN_KID_WAIT, jwks.refresh_for_unknown_kid(asked_at)).await;
        self.verify(token)
    }
}

/// True once a key's signature matched (accepted, or refused for its claims):
/// no other key needs trying.
fn settled(outcome: &Result<Identity, TokenError>) -> bool {
    !matches!(outcome, Err(TokenError::Invalid))
}

fn check(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Identity, TokenError> {
    let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        _ => TokenError::Invalid,
    })?;
    let claims = data.claims;
    if claims.sub.is_empty() {
        return Err(TokenError::Invalid);
    }
    Ok(Identity {
        is_admin: claims.role.as_deref() == Some("admin"),
        user_id: claims.sub,
        expires_at: claims.exp,
        chat: claims.chat,
        symbols: claims.symbols,
    })
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("hs256", &self.inner.secret.is_some())
            .field("public_key", &self.inner.public_key)
            .field("jwks", &self.inner.jwks)
            .finish()
    }
}

/// Signs HS256 user tokens with `--jwt-secret` (the `token` command, the
/// demo's token endpoint, tests).
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
}

impl TokenSigner {
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
        }
    }

    /// A token for `sub` valid `ttl_secs` from now.
    pub fn mint(&self, sub: &str, role: Option<&str>, ttl_secs: u64) -> String {
        self.sign(&Claims {
            sub: sub.to_owned(),
            exp: crate::clock::unix_secs() + ttl_secs,
            role: role.map(str::to_owned),
            chat: None,
            symbols: None,
        })
    }

    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(HS256)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sign(alg: Algorithm, secret: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn future() -> u64 {
        crate::clock::unix_secs() + 600
    }

    fn user(id: &str, is_admin: bool, expires_at: u64) -> Identity {
        Identity {
            user_id: id.into(),
            is_admin,
            expires_at,
            chat: None,
            symbols: None,
        }
    }

    #[test]
    fn a_valid_token_gives_the_user_role_expiry_and_permissions() {
        let v = TokenVerifier::hs256(b"s3cret");
        let exp = future();
        let t = sign(
            Algorithm::HS256,
            b"s3cret",
            json!({"sub": "42", "exp": exp, "role": "admin"}),
        );
        assert_eq!(v.verify(&t), Ok(user("42", true, exp)));
        let t = v.signer().unwrap().mint("7", None, 60);
        assert_eq!(
            v.verify(&t).map(|i| (i.user_id, i.is_admin)),
            Ok(("7".into(), false))
        );
        let t = sign(
            Algorithm::HS256,
            b"s3cret",
            json!({"sub": "1", "exp": exp, "chat": ["desk-*"], "symbols": "BTC-*"}),
        );
        let identity = v.verify(&t).unwrap();
        let chat = identity.chat.unwrap();
        assert!(chat.allows("desk-1") && !chat.allows("xdesk-1"));
        assert!(identity.symbols.unwrap().allows("BTC-USD"));
    }

    #[test]
    fn expired_wrong_secret_wrong_alg_and_missing_claims_are_refused() {
        let v = TokenVerifier::hs256(b"s3cret");
        let now = crate::clock::unix_secs();
        let expired = sign(
            Algorithm::HS256,
            b"s3cret",
            json!({"sub": "1", "exp": now - 3600}),
        );
        assert_eq!(v.verify(&expired), Err(TokenError::Expired));
        let early = sign(
            Algorithm::HS256,
            b"s3cret",
            json!({"sub": "1", "exp": future(), "nbf": now + 60}),
        );
        assert_eq!(v.verify(&early), Err(TokenError::NotYetValid));
        let within_leeway = sign(
            Algorithm::HS256,
            b"s3cret",
            json!({"sub": "1", "exp": future(), "nbf": now + 2}),
        );
        assert!(v.verify(&within_leeway).is_ok());
        let cases = [
            sign(Algorithm::HS256, b"other", json!({"sub": "1", "exp": future()})),
            sign(Algorithm::HS384, b"s3cret", json!({"sub": "1", "exp": future()})),
            sign(Algorithm::HS256, b"s3cret", json!({"sub": "1"})),
            sign(Algorithm::HS256, b"s3cret", json!({"exp": future()})),
            sign(Algorithm::HS256, b"s3cret", json!({"sub": 5, "exp": future()})),
            sign(Algorithm::HS256, b"s3cret", json!({"sub": "", "exp": future()})),
            sign(
                Algorithm::HS256,
                b"s3cret",
                json!({"sub": "1", "exp": future(), "chat": [1]}),
            ),
            "not.a.token".to_owned(),
            // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.".to_owned(),
        ];
        for token in cases {
            assert_eq!(v.verify(&token), Err(TokenError::Invalid), "{token}");
        }
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let v = TokenVerifier::new(VerifierOptions {
            secret: Some(b"s3cret".to_vec()),
            issuer: Some("https://idp.example/".into()),
            audience: Some("roomcast".into()),
            ..VerifierOptions::default()
        });
        let token = |claims| sign(Algorithm::HS256, b"s3cret", claims);
        let (iss, exp) = ("https://idp.example/", future());
        let good = json!({"sub": "1", "exp": exp, "iss": iss, "aud": "roomcast"});
        assert!(v.verify(&token(good)).is_ok());
        let in_list = json!({"sub": "1", "exp": exp, "iss": iss, "aud": ["api", "roomcast"]});
        assert!(v.verify(&token(in_list)).is_ok());
        let refusals = [
            (
                json!({"sub": "1", "exp": exp, "iss": "https://evil/", "aud": "roomcast"}),
                TokenError::WrongIssuer,
            ),
            (
                json!({"sub": "1", "exp": exp, "aud": "roomcast"}),
                TokenError::Invalid,
            ),
            (
                json!({"sub": "1", "exp": exp, "iss": iss, "aud": "other"}),
                TokenError::WrongAudience,
            ),
            (
                json!({"sub": "1", "exp": exp, "iss": iss, "aud": ["a", "b"]}),
                TokenError::WrongAudience,
            ),
            (json!({"sub": "1", "exp": exp, "iss": iss}), TokenError::Invalid),
        ];
        for (claims, error) in refusals {
            assert_eq!(v.verify(&token(claims.clone())), Err(error), "{claims}");
        }
        // Without --jwt-audience, a token that names an audience is fine.
        let open = TokenVerifier::hs256(b"s3cret");
        assert!(
            open.verify(&token(json!({"sub": "1", "exp": exp, "aud": "x"})))
                .is_ok()
        );
    }

    #[test]
    fn without_a_secret_hs256_tokens_are_refused_and_nothing_can_be_minted() {
        let v = TokenVerifier::new(VerifierOptions::default());
        let t = sign(Algorithm::HS256, b"", json!({"sub": "1", "exp": future()}));
        assert_eq!(v.verify(&t), Err(TokenError::Invalid));
        assert!(v.signer().is_none());
    }
}
