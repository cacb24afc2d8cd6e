//! User-token verification: keys (an HS256 secret, a PEM public key, an
//! identity provider's JWKS), claims and their permission patterns,
//! identities. `app::keys` turns the key flags into a verifier at start-up;
//! the socket and HTTP sides apply it.

pub mod jwks;
pub mod keys;
pub mod patterns;
pub mod token;
