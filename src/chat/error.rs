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
    /// Not this user's to change (edit, delete).
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}
