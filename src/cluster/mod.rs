//! Multi-node mode (`--redis-url`): socketioxide-redis syncs rooms through a
//! driver that survives Redis outages; published items fan out to every node;
//! Redis channels feed every node's clients.

pub mod channels;
pub mod driver;
pub mod fanout;
pub mod health;
