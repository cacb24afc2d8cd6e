//! Start-up: the key flags of [`Config`] become the [`TokenVerifier`] in
//! force (CONTRACT §7 "Keys"). A PEM file that cannot be read or a JWKS
//! endpoint that cannot be reached fails start-up with one line; short
//! secrets are accepted with a warning (never printing them).

use anyhow::Context;
use rand::RngCore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::jwks::Jwks;
use crate::auth::keys;
use crate::auth::token::{TokenVerifier, VerifierOptions};
use crate::config::{Config, Secret};

/// Secrets shorter than this many bytes are accepted with a warning.
pub const MIN_SECRET_BYTES: usize = 32;

/// The verifier of `config`'s keys, and the JWKS refresher task when
/// `--jwks-url` is set. Only when no key at all is configured is a random
/// HS256 secret generated (dev only, with a warning).
pub async fn verifier(
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<(TokenVerifier, Option<JoinHandle<()>>)> {
    let public_key = match &config.jwt_public_key {
        None => None,
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --jwt-public-key {}", path.display()))?;
            let key = keys::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--jwt-public-key {} {e}", path.display()))?;
            tracing::info!(alg = ?key.alg, "user tokens: public key loaded");
            Some(key)
        }
    };
    let jwks = match &config.jwks_url {
        None => None,
        Some(url) => {
            warn_if_plain_http(url);
            Some(Jwks::fetch(url).await.context("--jwks-url")?)
        }
    };
    let secret = match &config.jwt_secret {
        Some(secret) => {
            warn_if_short("--jwt-secret", secret);
            Some(secret.expose().as_bytes().to_vec())
        }
        None if public_key.is_none() && jwks.is_none() => {
            tracing::warn!(
                "no --jwt-secret, --jwt-public-key or --jwks-url set: generated a random HS256 \
                 secret for this run (dev only); tokens signed by your services will be refused"
            );
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            Some(bytes.to_vec())
        }
        None => None,
    };
    let refresher = jwks.clone().map(|jwks| jwks.spawn_refresher(shutdown));
    let verifier = TokenVerifier::new(VerifierOptions {
        secret,
        public_key,
        jwks,
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
    });
    Ok((verifier, refresher))
}

/// Logs a warning when `secret` is shorter than [`MIN_SECRET_BYTES`].
pub fn warn_if_short(flag: &str, secret: &Secret) {
    let len = secret.expose().len();
    if len < MIN_SECRET_BYTES {
        tracing::warn!(
            "{flag} is {len} bytes long; use at least {MIN_SECRET_BYTES} random bytes \
             (e.g. openssl rand -hex 32)"
        );
    }
}

fn warn_if_plain_http(url: &str) {
    let safe = reqwest::Url::parse(url).ok().is_some_and(|u| {
        u.scheme() == "https" || matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
    });
    if !safe {
        tracing::warn!("--jwks-url is plain http: keys can be tampered with in transit; use https");
    }
}
