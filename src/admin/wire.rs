//! What nodes tell each other about the Admin UI, over the one path across
//! nodes (`cluster::fanout`): the events for every node's admin sockets
//! ([`Kind::AdminEvents`]), what a node with an admin socket asks of every
//! node ([`Kind::AdminRequest`]: keep reporting, list your sockets, run a
//! command) and the answers to a list ([`Kind::AdminReply`]). Also the
//! positional-arguments shape of the Admin UI's events.
//!
//! [`Kind::AdminEvents`]: crate::cluster::fanout::Kind::AdminEvents
//! [`Kind::AdminRequest`]: crate::cluster::fanout::Kind::AdminRequest
//! [`Kind::AdminReply`]: crate::cluster::fanout::Kind::AdminReply

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One Admin UI event (`server_stats`, `socket_connected`, `room_joined`, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminEvent {
    pub event: String,
    pub args: Vec<Value>,
}

/// What a node with admin sockets asks of every node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum AdminRequest {
    /// An Admin UI is connected: report events and stats for a while.
    Watch,
    /// Answer with every socket of the node ([`AdminReply`]).
    List { request: String },
    /// A command of the UI (development mode).
    Command(Command),
}

/// A node's sockets, for one `List`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminReply {
    pub request: String,
    pub server: String,
    pub sockets: Vec<Value>,
}

/// `_disconnect`, `join` or `leave` in namespace `nsp`, on the sockets the
/// filter names: a socket id, a room, or (none) every socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Command {
    pub nsp: String,
    pub action: Action,
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Disconnect,
    Join(String),
    Leave(String),
}

/// Positional event arguments: serialized as a tuple, so socketioxide sends
/// each as its own argument; read from any number of arguments.
#[derive(Debug, Default)]
pub struct Args(pub Vec<Value>);

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Args, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<Value>()? {
                    args.push(arg);
                }
                Ok(Args(args))
            }
        }
        deserializer.deserialize_tuple_struct("Args", 16, ArgsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_their_shape_across_nodes() {
        let command = AdminRequest::Command(Command {
            nsp: "/".into(),
            action: Action::Join("vip".into()),
            filter: Some("abc".into()),
        });
        let text = serde_json::to_string(&command).unwrap();
        assert_eq!(
            text,
            r#"{"op":"command","nsp":"/","action":{"join":"vip"},"filter":"abc"}"#
        );
        let back: AdminRequest = serde_json::from_str(&text).unwrap();
        assert!(
            matches!(back, AdminRequest::Command(Command { action: Action::Join(room), .. }) if room == "vip")
        );
        let list: AdminRequest = serde_json::from_str(r#"{"op":"list","request":"r1"}"#).unwrap();
        assert!(matches!(list, AdminRequest::List { request } if request == "r1"));
    }
}
