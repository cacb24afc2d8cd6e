//! Tokens expire on live sockets too (CONTRACT §7). When a socket is
//! authenticated, one task waits for its token's `exp`: shortly before (60 s,
//! or a tenth of the time left when that is shorter) it emits
//! `token:expiring { expiresAt }`; at `exp` it drops the socket to anonymous
//! (user, admin and chat rooms left; market data kept) and emits
//! `unauthorized { message: "Token expired" }`. A new `authenticate` replaces
//! the task; a disconnect cancels it.

use std::sync::Arc;
use std::time::Duration;

use socketioxide::extract::SocketRef;

use super::auth::leave_user_rooms;
use super::session::Session;
use crate::auth::token::Identity;
use crate::clock;
use crate::protocol::{TOKEN_EXPIRED, TOKEN_EXPIRING, TokenExpiring, UNAUTHORIZED, Unauthorized};

/// The longest warning before expiry.
const WARN_BEFORE_MAX_MS: u64 = 60_000;

/// When to warn, for a token expiring at `expires_at_ms`, seen at `now_ms`.
pub fn warn_at(expires_at_ms: u64, now_ms: u64) -> u64 {
    let left = expires_at_ms.saturating_sub(now_ms);
    expires_at_ms - (left / 10).min(WARN_BEFORE_MAX_MS)
}

/// Starts watching `identity`'s expiry on `socket` (replacing any earlier watch).
pub fn watch(socket: &SocketRef, session: &Arc<Session>, identity: &Identity) {
    let expires_at_ms = identity.expires_at.saturating_mul(1000);
    let warn_at_ms = warn_at(expires_at_ms, clock::unix_millis());
    let (socket, session_for_task) = (socket.clone(), session.clone());
    let task = tokio::spawn(async move {
        sleep_until_ms(warn_at_ms).await;
        let _ = socket.emit(
            TOKEN_EXPIRING,
            &TokenExpiring {
                expires_at: expires_at_ms,
            },
        );
        sleep_until_ms(expires_at_ms).await;
        let session = session_for_task;
        let expired = session.take_identity_if(|i| i.expires_at.saturating_mul(1000) == expires_at_ms);
        if let Some(identity) = expired {
            leave_user_rooms(&socket, &session, &identity);
            tracing::info!(sid = %socket.id, user = ?identity.user_id, "token expired: socket dropped to anonymous");
            let _ = socket.emit(
                UNAUTHORIZED,
                &Unauthorized {
                    message: TOKEN_EXPIRED,
                },
            );
        }
    });
    session.set_expiry_watch(Some(task.abort_handle()));
}

async fn sleep_until_ms(at_ms: u64) {
    let wait = at_ms.saturating_sub(clock::unix_millis());
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_comes_a_minute_before_or_a_tenth_of_the_time_left() {
        assert_eq!(warn_at(3_600_000, 0), 3_540_000, "an hour left: a minute before");
        assert_eq!(warn_at(100_000, 0), 90_000, "100 s left: 10 s before");
        assert_eq!(warn_at(5_000, 10_000), 5_000, "already expired: at once");
    }
}
