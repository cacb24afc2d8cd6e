//! The one path across nodes (`--redis-url`): envelopes out (`fanout`),
//! arrivals in handed to a local dispatcher (`consumers`), a Redis pub/sub
//! connection that survives outages (`redis`), and Redis health (`health`).
//! socketioxide itself runs on its local adapter; nothing else crosses nodes.

pub mod consumers;
pub mod fanout;
pub mod health;
pub mod redis;
