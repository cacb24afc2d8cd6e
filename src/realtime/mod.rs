//! The socket side, namespace `/`: the connect middleware, one session per
//! socket, the ordered wrapper every event goes through, and the handlers by
//! feature (`auth`, `markets`, `chat`).

mod auth;
mod chat;
mod expiry;
mod markets;
mod ordered;
mod resume;
mod sequencer;
mod session;

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;

use crate::admin::AdminUi;
use crate::auth::patterns::Patterns;
use crate::auth::token::TokenVerifier;
use crate::chat::Chat;
use crate::market::groups::PriceGroups;
use crate::market::latest::LatestPrices;
use crate::market::rooms::Room;
use crate::metrics::Metrics;
use crate::protocol::{ClientEvent, PingAck, is_recoverable_room};
use crate::rate_limit::{RateLimitRules, UserLimiters};
use crate::recovery::{Hold, Recovery};

/// How long a `recover` socket's user-room events wait for its first `resume`
/// after the handshake (then they go out, in order).
const RESUME_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
use ordered::{Answer, Call, Turn};
use session::Session;

/// What every socket handler shares.
pub struct Realtime {
    pub tokens: TokenVerifier,
    pub rate_limits: Arc<RateLimitRules>,
    pub user_limits: Arc<UserLimiters>,
    pub metrics: Arc<Metrics>,
    pub price_groups: Arc<PriceGroups>,
    pub max_subscriptions: usize,
    /// What sockets without a `symbols` claim may subscribe to.
    pub public_symbols: Patterns,
    pub chat: Arc<Chat>,
    /// The Socket.IO Admin UI, told of connects, disconnects and room changes.
    pub admin: Option<Arc<AdminUi>>,
    pub latest: Arc<LatestPrices>,
    pub recovery: Arc<Recovery>,
}

/// Registers namespace `/` on `io`.
///
/// Everything a socket needs is set up in the connect middleware, not in the
/// connect handler: socketioxide awaits middleware before it sends the CONNECT
/// packet but spawns the handler after, so handlers registered there could
/// miss a client's first events.
pub fn register(io: &SocketIo, realtime: Arc<Realtime>) {
    let admin = realtime.admin.clone();
    let on_connect = move |socket: SocketRef| on_connect(admin.clone(), socket);
    let handshake = move |s: SocketRef, TryData(auth): TryData<Value>| {
        let realtime = realtime.clone();
        async move {
            let session = auth::check_handshake(&s, auth.ok(), realtime).await?;
            attach(&s, session);
            Ok::<(), auth::AuthenticationFailed>(())
        }
    };
    io.ns("/", on_connect.with(handshake));
}

async fn on_connect(admin: Option<Arc<AdminUi>>, socket: SocketRef) {
    if let Some(admin) = admin {
        admin.connected(&socket);
    }
    tracing::debug!(sid = %socket.id, "connected");
}

/// Every room a socket joins goes through here: the recoverable rooms of a
/// `recover` socket are joined through recovery (so their events carry
/// offsets; held as `hold` says), and the Admin UI follows every change.
/// Rooms come as `String`s or as interned names (`market::rooms`).
fn join_rooms<R: Into<Room> + AsRef<str>>(session: &Session, socket: &SocketRef, rooms: Vec<R>, hold: Hold) {
    let services = session.services();
    let names = services.admin.as_ref().map(|_| names_of(&rooms));
    if session.recover() {
        for room in rooms {
            if is_recoverable_room(room.as_ref()) {
                services.recovery.join(socket, room.as_ref(), hold);
            } else {
                socket.join(room.into());
            }
        }
    } else {
        socket.join(rooms.into_iter().map(Into::into).collect::<Vec<Room>>());
    }
    if let (Some(admin), Some(names)) = (&services.admin, names) {
        admin.joined(socket, &names);
    }
}

/// Every room a socket leaves goes through here.
fn leave_rooms<R: Into<Room> + AsRef<str>>(session: &Session, socket: &SocketRef, rooms: Vec<R>) {
    let services = session.services();
    let names = services.admin.as_ref().map(|_| names_of(&rooms));
    if session.recover() {
        for room in rooms {
            if is_recoverable_room(room.as_ref()) {
                services.recovery.leave(socket, room.as_ref());
            } else {
                socket.leave(room.into());
            }
        }
    } else {
        socket.leave(rooms.into_iter().map(Into::into).collect::<Vec<Room>>());
    }
    if let (Some(admin), Some(names)) = (&services.admin, names) {
        admin.left(socket, &names);
    }
}

fn names_of<R: AsRef<str>>(rooms: &[R]) -> Vec<String> {
    rooms.iter().map(|r| r.as_ref().to_owned()).collect()
}

/// A handler's room changes, for the calling socket.
fn join<R: Into<Room> + AsRef<str>>(call: &Call, rooms: Vec<R>, hold: Hold) {
    join_rooms(&call.session, &call.socket, rooms, hold);
}

fn leave<R: Into<Room> + AsRef<str>>(call: &Call, rooms: Vec<R>) {
    leave_rooms(&call.session, &call.socket, rooms);
}

/// Joins the identity's rooms, and registers the one event handler (every
/// event goes through it, see `ordered`) and the disconnect handler, which
/// hold the session (nothing goes into the socket's extensions map).
fn attach(socket: &SocketRef, session: Session) {
    let session = Arc::new(session);
    if let Some(identity) = session.identity() {
        if session.recover() {
            // The user room's live events wait (briefly) for the first
            // `resume`, so that none overtakes or repeats the replay.
            auth::join_identity_rooms(socket, &session, &identity, Hold::UntilResume);
            let recovery = session.services().recovery.clone();
            let sid = socket.id;
            tokio::spawn(async move {
                tokio::time::sleep(RESUME_WAIT).await;
                recovery.release_waiting(sid).await;
            });
        } else {
            auth::join_identity_rooms(socket, &session, &identity, Hold::No);
        }
        expiry::watch(socket, &session, &identity);
    }
    let for_events = session.clone();
    socket.on_fallback(move |received: ordered::Received| ordered::on_event(for_events, received));
    socket.on_disconnect(move |socket: SocketRef, reason: DisconnectReason| {
        on_disconnect(session, socket, reason)
    });
}

/// Routes one event, in its turn, to its feature's handler.
async fn route(call: Call, turn: &Turn, answer: Answer) {
    let Some(event) = ClientEvent::from_name(answer.event()) else {
        let message = format!("unknown event {:?}", answer.event());
        return answer.fail(&message);
    };
    match event {
        ClientEvent::Ping => answer.send(Ok::<_, Infallible>(PingAck::now())),
        ClientEvent::Authenticate => answer.send(auth::authenticate(&call, turn).await),
        ClientEvent::SubscribePrice => answer.send(markets::subscribe_price(&call, turn).await),
        ClientEvent::UnsubscribePrice => answer.send(markets::unsubscribe(&call, turn, markets::Feed::Price)),
        ClientEvent::SubscribeTrades => answer.send(markets::subscribe(&call, turn, markets::Feed::Trades)),
        ClientEvent::UnsubscribeTrades => {
            answer.send(markets::unsubscribe(&call, turn, markets::Feed::Trades))
        }
        ClientEvent::ChatJoin => answer.send(chat::join(&call, turn).await),
        ClientEvent::ChatSend => answer.send(chat::send(&call, turn).await),
        ClientEvent::ChatRead => answer.send(chat::read(&call, turn).await),
        ClientEvent::ChatHistory => answer.send(chat::history(&call, turn).await),
        ClientEvent::ChatLeave => answer.send(chat::leave(&call, turn).await),
        ClientEvent::ChatTyping => answer.send(chat::typing(&call, turn).await),
        ClientEvent::ChatEdit => answer.send(chat::edit(&call, turn).await),
        ClientEvent::ChatDelete => answer.send(chat::delete(&call, turn).await),
        ClientEvent::ChatRooms => answer.send(chat::rooms(&call, turn).await),
        ClientEvent::Resume => answer.send(resume::resume(&call, turn).await),
    }
}

async fn on_disconnect(session: Arc<Session>, socket: SocketRef, reason: DisconnectReason) {
    markets::forget_subscriptions(&session);
    if let Some(identity) = session.identity() {
        chat::depart_all(&session, &identity.user_id);
    }
    session.set_expiry_watch(None);
    if let Some(admin) = &session.services().admin {
        admin.disconnected(&socket, reason);
    }
    if session.recover() {
        session.services().recovery.forget(socket.id);
    }
    tracing::debug!(sid = %socket.id, "disconnected");
}
