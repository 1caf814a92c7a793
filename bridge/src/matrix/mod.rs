//! The Matrix side: the bot's client (login, saved session, fixed device,
//! cross-signing, sync, invites), room views and sends, a read-only probe
//! for `check-config`, and an end-to-end-encryption-capable reader for the
//! demo and the tests.

pub mod client;
pub mod probe;
pub mod reader;
pub mod room;

use std::time::{Duration, SystemTime};

use matrix_sdk::ruma::api::error::{ErrorKind, RetryAfter};
use matrix_sdk::ruma::{EventId, OwnedEventId};

pub use client::{Bot, BotError};
pub use room::SendError;

use crate::store::Part;

/// The Matrix transaction id for one part of delivering `key` (an
/// envelope, digest or event id) to `room`. Deterministic, so a resend
/// after a crash is deduplicated by the homeserver (per user, device and
/// transaction id).
pub fn txn_id(key: &str, room: &str, part: Part) -> String {
    let d = crate::hash::of(&[key, room, part.name()]);
    format!("varde-{}", &hex::encode(d)[..40])
}

/// An event id the bridge recorded (or read from the sync) as the typed id
/// that Matrix content refers to.
pub fn event_id(id: &str) -> Result<OwnedEventId, SendError> {
    EventId::parse(id).map_err(|source| SendError::BadEventId {
        id: id.to_string(),
        source,
    })
}

/// Sorts a matrix-sdk error into what the relay does about it.
pub fn classify(e: &matrix_sdk::Error) -> SendError {
    if let Some(api) = e.as_client_api_error() {
        let status = api.status_code.as_u16();
        if let Some(ErrorKind::LimitExceeded(data)) = api.error_kind() {
            let retry_after = data.retry_after.as_ref().and_then(|r| match r {
                RetryAfter::Delay(d) => Some(*d),
                RetryAfter::DateTime(t) => t.duration_since(SystemTime::now()).ok(),
            });
            return SendError::RateLimited { retry_after };
        }
        if status == 429 {
            return SendError::RateLimited { retry_after: None };
        }
        if status >= 500 {
            return SendError::Server { status };
        }
        let code = api
            .error_kind()
            .map(|k| k.errcode().to_string())
            .unwrap_or_default();
        return SendError::Refused { status, code };
    }
    match e {
        // matrix-sdk checks the server's upload limit itself: the same
        // final answer as the server's own 413.
        matrix_sdk::Error::Media(matrix_sdk::media::MediaError::MediaTooLargeToUpload {
            ..
        }) => SendError::Refused {
            status: 413,
            code: "M_TOO_LARGE".into(),
        },
        matrix_sdk::Error::Http(h) => match h.as_ref() {
            matrix_sdk::HttpError::Reqwest(r) => SendError::Network(r.to_string()),
            other => SendError::Other(other.to_string()),
        },
        other => SendError::Other(other.to_string()),
    }
}

/// Back-off for the n-th consecutive failure: 1 s doubling to 60 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(6)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_ids_are_stable_and_distinct() {
        let a = txn_id("e1", "!r:hs", Part::Post);
        assert_eq!(a, txn_id("e1", "!r:hs", Part::Post));
        assert_ne!(a, txn_id("e1", "!r:hs", Part::Edit));
        assert_ne!(a, txn_id("e1", "!s:hs", Part::Post));
        assert_ne!(a, txn_id("e2", "!r:hs", Part::Post));
        assert!(a.len() <= 64 && a.is_ascii());
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(10), Duration::from_secs(60));
    }
}
