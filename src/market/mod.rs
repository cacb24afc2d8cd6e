//! The market domain: symbols, what services publish, its delivery, and the
//! `price:batch` batcher with its subscription groups.

pub mod batch_sink;
pub mod batcher;
pub mod feed;
pub mod groups;
pub mod latest;
pub mod publish;
pub mod rooms;
pub mod symbol;
