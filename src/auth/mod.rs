//! User-token verification: keys (an HS256 secret, a PEM public key, an
//! identity provider's JWKS), claims and their permission patterns,
//! identities, and the start-up step that turns the key flags into a
//! verifier. The socket and HTTP sides apply it.

pub mod jwks;
pub mod keys;
pub mod patterns;
pub mod setup;
pub mod token;
