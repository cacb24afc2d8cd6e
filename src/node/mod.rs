//! This node's figures: process stats, runtime load, the sampled node stats
//! behind /metrics, and the admin `metrics` feed.

pub mod admin_feed;
pub mod process_stats;
pub mod runtime_load;
pub mod stats;
