//! The Admin UI's commands, in development mode only: `_disconnect`, `join`,
//! `leave` with `(nsp, room or close, filter?)`. The filter is a socket id
//! (socket.io puts each socket in a room named by its id; socketioxide does
//! not, so an id is looked up as a socket first), a room, or absent (every
//! socket of the namespace). A command runs on this node and, unless it
//! named a socket of this node, on every other node too.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::socket::Sid;

use super::wire::{Action, AdminRequest, Args, Command};
use super::{AdminUi, NAMESPACES};
use crate::cluster::fanout::Kind;
use crate::protocol::is_internal_room;

/// Longest room name a command may use.
const MAX_ROOM: usize = 256;

pub(super) fn register(socket: &SocketRef, admin: Arc<AdminUi>) {
    for event in ["_disconnect", "join", "leave"] {
        let admin = admin.clone();
        socket.on(event, move |TryData(args): TryData<Args>| {
            let admin = admin.clone();
            async move {
                match args.ok().and_then(|Args(args)| parse(event, args)) {
                    Some(command) => admin.run(command),
                    None => tracing::debug!(event, "admin UI command ignored: bad arguments"),
                }
            }
        });
    }
}

fn parse(event: &str, args: Vec<Value>) -> Option<Command> {
    let mut args = args.into_iter();
    let nsp = match args.next()? {
        Value::String(nsp) if NAMESPACES.contains(&nsp.as_str()) => nsp,
        _ => return None,
    };
    let second = args.next();
    let action = match event {
        "_disconnect" => Action::Disconnect,
        "join" | "leave" => {
            let room = match second {
                Some(Value::String(room))
                    if !room.is_empty() && room.len() <= MAX_ROOM && !is_internal_room(&room) =>
                {
                    room
                }
                _ => return None,
            };
            if event == "join" {
                Action::Join(room)
            } else {
                Action::Leave(room)
            }
        }
        _ => return None,
    };
    let filter = match args.next() {
        None | Some(Value::Null) => None,
        Some(Value::String(filter)) if !filter.is_empty() && filter.len() <= MAX_ROOM => Some(filter),
        Some(_) => return None,
    };
    Some(Command { nsp, action, filter })
}

impl AdminUi {
    fn run(&self, command: Command) {
        tracing::info!(?command, "admin UI command");
        if self.run_here(&command) {
            return;
        }
        if let Some(fanout) = &self.fanout {
            fanout.send(Kind::AdminRequest, &[AdminRequest::Command(command)]);
        }
    }

    /// Runs `command` on this node's sockets; `true` when its filter named a
    /// socket of this node (then no other node has work to do).
    pub(super) fn run_here(&self, command: &Command) -> bool {
        let Some(ns) = self.io.of(&command.nsp) else {
            return false;
        };
        let targets = match &command.filter {
            Some(filter) => {
                if let Some(socket) = filter.parse::<Sid>().ok().and_then(|sid| ns.get_socket(sid)) {
                    self.act(socket, &command.action);
                    return true;
                }
                ns.local().to(filter.clone()).sockets()
            }
            // "Clear room": the sockets of that room leave it.
            None => match &command.action {
                Action::Leave(room) => ns.local().to(room.clone()).sockets(),
                _ => ns.local().sockets(),
            },
        };
        for socket in targets {
            self.act(socket, &command.action);
        }
        false
    }

    fn act(&self, socket: SocketRef, action: &Action) {
        match action {
            Action::Disconnect => {
                let _ = socket.disconnect();
            }
            Action::Join(room) => {
                if !socket.rooms().iter().any(|r| r == room) {
                    socket.join(room.clone());
                    self.joined(&socket, std::slice::from_ref(room));
                }
            }
            Action::Leave(room) => {
                if socket.rooms().iter().any(|r| r == room) {
                    socket.leave(room.clone());
                    self.left(&socket, std::slice::from_ref(room));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(value: Value) -> Vec<Value> {
        value.as_array().unwrap().clone()
    }

    #[test]
    fn commands_are_checked() {
        let c = parse("_disconnect", args(json!(["/", false, "abc"]))).unwrap();
        assert!(matches!(c.action, Action::Disconnect) && c.filter.as_deref() == Some("abc"));
        let c = parse("leave", args(json!(["/", "chat:1"]))).unwrap();
        assert!(matches!(c.action, Action::Leave(r) if r == "chat:1") && c.filter.is_none());
        assert!(parse("join", args(json!(["/nope", "r", "abc"]))).is_none());
        assert!(parse("join", args(json!(["/", "$batch:1", "abc"]))).is_none());
        assert!(parse("join", args(json!(["/", 7]))).is_none());
        assert!(parse("emit", args(json!(["/", "r"]))).is_none());
        assert!(parse("_disconnect", vec![]).is_none());
    }
}
