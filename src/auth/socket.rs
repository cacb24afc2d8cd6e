//! Socket authentication (CONTRACT §2): the handshake middleware and the
//! `authenticate` event. An authenticated socket is in `user:<sub>`, an admin
//! also in `admin`.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};

use super::token::{Identity, TokenError};
use crate::realtime::Realtime;
use crate::realtime::events::{
    AUTHENTICATED, Authenticated, AuthenticatedAck, ErrorAck, UNAUTHORIZED, Unauthorized,
};
use crate::realtime::inbound::Inbound;
use crate::realtime::session::Session;

pub const ADMIN_ROOM: &str = "admin";

pub fn user_room(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The handshake refusal; its text is what `socket.io-client` shows as `err.message`.
#[derive(Debug, thiserror::Error)]
#[error("Authentication failed")]
pub struct AuthenticationFailed;

/// Connect middleware: `auth.token` valid → authenticated; absent → anonymous;
/// present but bad or expired → refused. Installs the socket's session.
pub fn check_handshake<A: Adapter>(
    socket: &SocketRef<A>,
    auth: Option<Value>,
    realtime: Arc<Realtime>,
) -> Result<(), AuthenticationFailed> {
    let token = auth
        .as_ref()
        .and_then(|a| a.get("token"))
        .filter(|t| !t.is_null());
    let identity = match token {
        None => None,
        Some(Value::String(token)) => match realtime.tokens.verify(token) {
            Ok(identity) => Some(identity),
            Err(reason) => {
                realtime.metrics.auth_failures.increment(1);
                tracing::info!(sid = %socket.id, reason = ?reason.to_string(), "handshake refused");
                return Err(AuthenticationFailed);
            }
        },
        Some(_) => {
            realtime.metrics.auth_failures.increment(1);
            tracing::info!(sid = %socket.id, "handshake refused: token is not a string");
            return Err(AuthenticationFailed);
        }
    };
    socket
        .extensions
        .insert(Arc::new(Session::new(realtime, identity)));
    Ok(())
}

pub fn join_identity_rooms<A: Adapter>(socket: &SocketRef<A>, identity: &Identity) {
    socket.join(user_room(&identity.user_id));
    if identity.is_admin {
        socket.join(ADMIN_ROOM);
    }
}

fn leave_identity_rooms<A: Adapter>(socket: &SocketRef<A>, identity: &Identity) {
    socket.leave(user_room(&identity.user_id));
    if identity.is_admin {
        socket.leave(ADMIN_ROOM);
    }
}

/// `authenticate` with a token string (or `{ token }`). Success replaces the
/// socket's identity; failure leaves the socket connected as anonymous.
pub async fn on_authenticate<A: Adapter>(
    inbound: Inbound<A>,
    TryData(payload): TryData<Value>,
    ack: AckSender<A>,
) {
    inbound.turn().await;
    let token = match &payload {
        Ok(Value::String(token)) => Some(token.as_str()),
        Ok(Value::Object(map)) => map.get("token").and_then(Value::as_str),
        _ => None,
    };
    let verified = match token {
        Some(token) => inbound.session.realtime.tokens.verify(token),
        None => Err(TokenError::Invalid),
    };
    let socket = &inbound.socket;
    let session = &inbound.session;
    match verified {
        Ok(identity) => {
            if let Some(previous) = session.set_identity(Some(identity.clone())) {
                leave_identity_rooms(socket, &previous);
            }
            join_identity_rooms(socket, &identity);
            tracing::info!(sid = %socket.id, user = ?identity.user_id, "authenticated");
            let _ = socket.emit(
                AUTHENTICATED,
                &Authenticated {
                    user_id: &identity.user_id,
                },
            );
            inbound.ok(
                ack,
                &AuthenticatedAck {
                    ok: true,
                    user_id: &identity.user_id,
                },
            );
        }
        Err(reason) => {
            session.realtime.metrics.auth_failures.increment(1);
            if let Some(previous) = session.set_identity(None) {
                leave_identity_rooms(socket, &previous);
            }
            let message = match (token, reason) {
                (None, _) => "Authentication failed: expected a token string".to_owned(),
                (Some(_), reason) => format!("Authentication failed: {reason}"),
            };
            tracing::info!(sid = %socket.id, reason = ?message, "authenticate refused");
            let _ = socket.emit(UNAUTHORIZED, &Unauthorized { message: &message });
            inbound.ok(ack, &ErrorAck { error: &message });
        }
    }
}
