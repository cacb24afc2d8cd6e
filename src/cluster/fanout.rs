//! Node-to-node delivery of published items. The node that receives a publish
//! (HTTP API) delivers to its own sockets at once and sends one envelope per
//! request on `roomcast:fanout`; every other node delivers the items to its
//! own sockets and its own batcher. So each socket gets each item once, and a
//! price is in every node's `price:batch`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide_redis::drivers::Driver;

use super::driver::ResilientDriver;

pub const FANOUT_CHANNEL: &str = "roomcast:fanout";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Prices,
    Trades,
    Emits,
    Chat,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node's process id; it skips its own envelopes.
    pub origin: String,
    pub kind: Kind,
    /// The items, shaped like the matching publish body (array form).
    pub items: Value,
}

/// Sends envelopes from this node.
#[derive(Clone)]
pub struct Fanout {
    driver: ResilientDriver,
    origin: String,
}

impl Fanout {
    pub fn new(driver: ResilientDriver, origin: String) -> Self {
        Self { driver, origin }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub async fn send(&self, kind: Kind, items: Value) {
        let envelope = Envelope {
            origin: self.origin.clone(),
            kind,
            items,
        };
        match serde_json::to_vec(&envelope) {
            Ok(bytes) => {
                let _ = self.driver.publish(FANOUT_CHANNEL.to_owned(), bytes).await;
            }
            Err(e) => tracing::error!(error = %e, "could not encode fanout envelope"),
        }
    }
}
