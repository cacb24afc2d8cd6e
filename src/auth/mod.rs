//! Authentication: user tokens (pure verification against an HS256 secret, a
//! PEM public key or an identity provider's JWKS; the claims' permission
//! patterns), the socket handshake and `authenticate` event, and the publish
//! API's bearer key.

pub mod bearer;
pub mod jwks;
pub mod keys;
pub mod patterns;
pub mod setup;
pub mod socket;
pub mod token;
