//! roomcast: a Socket.IO-compatible realtime server. See README.md.
//!
//! The public surface is [`Application`] and [`Config`]; the modules the
//! black-box tests and the load tool reach into are public, the rest private.

mod admin;
mod app;
pub mod auth;
mod chat;
pub mod cli;
pub mod clock;
mod cluster;
pub mod config;
mod demo;
mod dispatch;
mod http;
mod market;
mod metrics;
mod node;
pub mod protocol;
/// Chat presence, for the cost test in `tests/api/presence_cost.rs`.
pub use chat::presence;
/// The Redis command connection (one Redis or a cluster), for the same test.
pub use cluster::conn::Commands;
mod rate_limit;
mod realtime;
mod recovery;
mod server;
mod sessions;
pub mod store;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
