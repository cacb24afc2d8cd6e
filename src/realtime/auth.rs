//! Socket authentication (CONTRACT §2): the handshake middleware and the
//! `authenticate` event. An authenticated socket is in `user:<sub>`, an admin
//! also in `admin`.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::SocketRef;

use super::Realtime;
use super::expiry;
use super::ordered::{Call, Turn};
use super::session::Session;
use crate::auth::token::{Identity, TokenError};
use crate::protocol::{
    ADMIN_ROOM, AUTHENTICATED, AUTHENTICATION_FAILED, AuthenticateAck, Authenticated, UNAUTHORIZED,
    Unauthorized, chat_room, user_room,
};
use crate::recovery::Hold;

/// The handshake refusal; its text is what `socket.io-client` shows as `err.message`.
#[derive(Debug, thiserror::Error)]
#[error("{AUTHENTICATION_FAILED}")]
pub struct AuthenticationFailed;

/// Connect middleware: `auth.token` valid → authenticated; absent → anonymous;
/// present but bad or expired → refused. Returns the socket's session.
pub async fn check_handshake(
    socket: &SocketRef,
    auth: Option<Value>,
    realtime: Arc<Realtime>,
) -> Result<Session, AuthenticationFailed> {
    let token = auth
        .as_ref()
        .and_then(|a| a.get("token"))
        .filter(|t| !t.is_null());
    let identity = match token {
        None => None,
        Some(Value::String(token)) => match realtime.tokens.verify_with_refresh(token).await {
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
    let recover = auth.as_ref().and_then(|a| a.get("recover")) == Some(&Value::Bool(true));
    Ok(Session::new(realtime, identity, recover))
}

fn identity_rooms(identity: &Identity) -> Vec<String> {
    let mut rooms = vec![user_room(&identity.user_id)];
    if identity.is_admin {
        rooms.push(ADMIN_ROOM.to_owned());
    }
    rooms
}

/// Joins `user:<sub>` (with offsets for a `recover` socket, held as `hold`
/// says) and, for an admin, `admin`.
pub fn join_identity_rooms(socket: &SocketRef, session: &Session, identity: &Identity, hold: Hold) {
    super::join_rooms(session, socket, identity_rooms(identity), hold);
}

fn leave_identity_rooms(socket: &SocketRef, session: &Session, identity: &Identity) {
    super::leave_rooms(session, socket, identity_rooms(identity));
}

/// Leaves every room that came with `identity`: its user and admin rooms and
/// the chat rooms joined under it (market data stays).
pub fn leave_user_rooms(socket: &SocketRef, session: &Session, identity: &Identity) {
    leave_identity_rooms(socket, session, identity);
    let chat_rooms = super::chat::depart_all(session, &identity.user_id);
    super::leave_rooms(
        session,
        socket,
        chat_rooms.iter().map(|id| chat_room(id)).collect(),
    );
}

/// `authenticate` with a token string (or `{ token }`). Success replaces the
/// socket's identity; failure leaves the socket connected as anonymous. Both
/// also emit an event (`authenticated` / `unauthorized`); the ack says the same.
pub async fn authenticate(call: &Call, _turn: &Turn) -> Result<AuthenticateAck, Infallible> {
    let token = match &call.payload {
        Ok(Value::String(token)) => Some(token.as_str()),
        Ok(Value::Object(map)) => map.get("token").and_then(Value::as_str),
        _ => None,
    };
    let verified = match token {
        Some(token) => call.services.tokens.verify_with_refresh(token).await,
        None => Err(TokenError::Invalid),
    };
    let socket = &call.socket;
    let session = &call.session;
    match verified {
        Ok(identity) => {
            match session.set_identity(Some(identity.clone())) {
                // The same user with a fresh token: every room stays (nothing is missed).
                Some(previous)
                    if previous.user_id == identity.user_id && previous.is_admin && !identity.is_admin =>
                {
                    super::leave_rooms(session, socket, vec![ADMIN_ROOM.to_owned()]);
                }
                Some(previous) if previous.user_id == identity.user_id => {}
                Some(previous) => leave_user_rooms(socket, session, &previous),
                None => {}
            }
            join_identity_rooms(socket, session, &identity, Hold::No);
            expiry::watch(socket, session, &identity);
            tracing::info!(sid = %socket.id, user = ?identity.user_id, "authenticated");
            let _ = socket.emit(
                AUTHENTICATED,
                &Authenticated {
                    user_id: &identity.user_id,
                },
            );
            Ok(AuthenticateAck::Ok {
                ok: true,
                user_id: identity.user_id,
            })
        }
        Err(reason) => {
            call.services.metrics.auth_failures.increment(1);
            session.set_expiry_watch(None);
            if let Some(previous) = session.set_identity(None) {
                leave_user_rooms(socket, session, &previous);
            }
            let message = match (token, reason) {
                (None, _) => format!("{AUTHENTICATION_FAILED}: expected a token string"),
                (Some(_), reason) => format!("{AUTHENTICATION_FAILED}: {reason}"),
            };
            tracing::info!(sid = %socket.id, reason = ?message, "authenticate refused");
            let _ = socket.emit(UNAUTHORIZED, &Unauthorized { message: &message });
            Ok(AuthenticateAck::Refused { error: message })
        }
    }
}
