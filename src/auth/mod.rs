//! Pure user-token verification: keys, claims, identities. No I/O; the socket
//! and HTTP sides apply it.

pub mod token;
