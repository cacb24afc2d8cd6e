//! `--demo`, in one place: a synthetic market (`feed`) and dev tokens for the
//! console (`token`). Never on unless asked for.

pub mod feed;
pub mod token;
