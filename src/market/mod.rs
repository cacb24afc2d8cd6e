//! The market domain: symbols, what services publish, and its delivery.

pub mod feed;
pub mod groups;
pub mod publish;
pub mod symbol;
