//! The one path across nodes (`--redis-url`): envelopes out (`fanout`),
//! arrivals in handed to a local dispatcher (`consumers`), a Redis pub/sub
//! connection that survives outages (`redis`; on a Redis Cluster
//! `cluster_pubsub`, sharded), the connection for commands (`conn`), Redis
//! health (`health`), the wire format of `@socket.io/redis-emitter`
//! (`emitter`), and which node holds which long-polling session (`owners`).
//! socketioxide itself runs on its local adapter; nothing else crosses nodes.

pub mod cluster_pubsub;
pub mod conn;
pub mod consumers;
pub mod emitter;
pub mod fanout;
pub mod health;
pub mod owners;
pub mod redis;
