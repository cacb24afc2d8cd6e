//! Authentication: user tokens (pure verification), the socket handshake and
//! `authenticate` event, and the publish API's bearer key.

pub mod bearer;
pub mod socket;
pub mod token;
