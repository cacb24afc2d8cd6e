//! Authentication: user tokens (pure verification), the socket handshake and
//! `authenticate` event, and the publish API's bearer key.

pub mod publish_key;
pub mod socket;
pub mod token;
