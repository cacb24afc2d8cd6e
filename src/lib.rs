//! roomcast: a Socket.IO-compatible realtime server. See README.md.

pub mod app;
pub mod auth;
pub mod batcher;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod http;
pub mod market;
pub mod metrics;
pub mod process_stats;
pub mod realtime;
pub mod runtime_load;
pub mod store;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
