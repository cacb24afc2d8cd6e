//! The chat boundary's one error; every entry point maps it to its transport.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("authentication required")]
    AuthRequired,
    #[error("join the room first (chat:join)")]
    NotJoined,
    #[error("not allowed in this room")]
    NotAllowed,
    #[error("authorization unavailable")]
    AuthorizationUnavailable,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
