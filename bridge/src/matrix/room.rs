//! What the relay does with a room: look at it (members, encryption) and
//! send into it with a derived transaction id.

use std::time::Duration;

use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::client::membership::get_member_events;
use matrix_sdk::ruma::events::room::history_visibility::HistoryVisibility;
use matrix_sdk::ruma::events::room::join_rules::JoinRule;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedTransactionId, RoomId};
use matrix_sdk::{Room, RoomMemberships, RoomState};
use serde_json::Value;

use super::{Bot, classify, txn_id};
use crate::policy::RoomView;
use crate::store::{Part, Recorded, Store};

/// Why a send (or a look at a room) did not work, sorted by what to do.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("rate limited by the homeserver")]
    RateLimited { retry_after: Option<Duration> },
    #[error("homeserver error (HTTP {status})")]
    Server { status: u16 },
    #[error("cannot reach the homeserver: {0}")]
    Network(String),
    #[error("the bot is not joined to room {room}")]
    NotJoined { room: String },
    #[error("refused by the homeserver: HTTP {status} {code}")]
    Refused { status: u16, code: String },
    #[error("{0}")]
    Other(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// An event id from the store or the sync that does not parse: only a
    /// damaged store gives one, and sending again cannot mend it.
    #[error("`{id}` is not a Matrix event id: {source}")]
    BadEventId {
        id: String,
        #[source]
        source: matrix_sdk::ruma::IdParseError,
    },
}

impl SendError {
    /// Stable short name for the retries metric.
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::RateLimited { .. } => "rate_limited",
            SendError::Server { .. } => "server_error",
            SendError::Network(_) => "network",
            SendError::NotJoined { .. } => "not_joined",
            SendError::Refused { .. } => "refused",
            SendError::Other(_) => "other",
            SendError::Store(_) => "store",
            SendError::BadEventId { .. } => "bad_event_id",
        }
    }

    /// Whether the homeserver refused this very event for good: too large
    /// (413), malformed (400), or forbidden (403). Sending it again cannot
    /// work; the message is withheld from the room instead of holding up
    /// everything behind it. A 403 is only final after `attempts` > 1,
    /// since power levels or membership may just have been changing.
    pub fn is_final(&self, attempts: u32) -> bool {
        match self {
            SendError::Refused {
                status: 413 | 400, ..
            } => true,
            SendError::Refused { status: 403, .. } => attempts > 1,
            SendError::BadEventId { .. } => true,
            _ => false,
        }
    }

    /// The server's own `retry_after`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

impl From<matrix_sdk::Error> for SendError {
    fn from(e: matrix_sdk::Error) -> Self {
        classify(&e)
    }
}

impl From<matrix_sdk::HttpError> for SendError {
    fn from(e: matrix_sdk::HttpError) -> Self {
        classify(&matrix_sdk::Error::Http(Box::new(e)))
    }
}

/// A send is retried by the relay (with the server's `retry_after`), not
/// inside matrix-sdk, so one room's trouble shows in metrics and never
/// stalls a task for long.
fn send_config() -> RequestConfig {
    RequestConfig::new()
        .timeout(Duration::from_secs(30))
        .disable_retry()
}

impl Bot {
    /// The joined room, joining it first if the bot may (invited, or a
    /// public room named in the configuration).
    pub async fn joined_room(&self, room_id: &RoomId) -> Result<Room, SendError> {
        if let Some(room) = self.client.get_room(room_id)
            && room.state() == RoomState::Joined
        {
            return Ok(room);
        }
        match self.client.join_room_by_id(room_id).await {
            Ok(room) => Ok(room),
            Err(e) => {
                let class = classify(&e);
                tracing::info!(room = %room_id, error = %e, "cannot join the room");
                Err(match class {
                    SendError::Refused { .. } => SendError::NotJoined {
                        room: room_id.to_string(),
                    },
                    other => other,
                })
            }
        }
    }

    /// Resolves an alias (`#soc:example.org`) to a room id.
    pub async fn resolve_alias(&self, alias: &str) -> Result<OwnedRoomId, SendError> {
        let alias = matrix_sdk::ruma::RoomAliasId::parse(alias)
            .map_err(|e| SendError::Other(format!("`{alias}`: {e}")))?;
        let r = self.client.resolve_room_alias(&alias).await?;
        Ok(r.room_id)
    }

    /// The room's encryption and members (joined and invited, without the
    /// bot). `fresh` asks the homeserver for the member list now instead of
    /// trusting the last sync: used before every post at TLP:AMBER and up.
    pub async fn view(&self, room: &Room, fresh: bool) -> Result<RoomView, SendError> {
        // Encryption can be turned on but never off, so the synced state
        // is never too permissive.
        let encrypted = room.latest_encryption_state().await?.is_encrypted();
        let mut members: Vec<String> = if fresh {
            let req = get_member_events::v3::Request::new(room.room_id().to_owned());
            let resp = self.client.send(req).await?;
            resp.chunk
                .iter()
                .filter_map(|raw| serde_json::from_str::<Value>(raw.json().get()).ok())
                .filter(|ev| {
                    matches!(
                        ev.pointer("/content/membership").and_then(Value::as_str),
                        Some("join" | "invite")
                    )
                })
                .filter_map(|ev| {
                    ev.get("state_key")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect()
        } else {
            room.members(RoomMemberships::JOIN | RoomMemberships::INVITE)
                .await?
                .iter()
                .map(|m| m.user_id().to_string())
                .collect()
        };
        members.retain(|m| m != self.user_id.as_str());
        members.sort();
        members.dedup();
        // From the synced state (kept current by the sync loop); a room
        // without these events has the spec's defaults, invite and shared.
        let open_to_join = matches!(
            room.join_rule(),
            Some(JoinRule::Public | JoinRule::Restricted(_) | JoinRule::KnockRestricted(_))
        );
        let world_readable =
            room.history_visibility_or_default() == HistoryVisibility::WorldReadable;
        Ok(RoomView {
            encrypted,
            members,
            open_to_join,
            world_readable,
        })
    }

    /// Sends an `m.room.message` with the given transaction id; returns the
    /// event id. Encrypted rooms are encrypted by matrix-sdk.
    pub async fn send(
        &self,
        room: &Room,
        content: RoomMessageEventContent,
        txn: &str,
    ) -> Result<String, SendError> {
        let txn: OwnedTransactionId = txn.into();
        let r = room
            .send(content)
            .with_transaction_id(txn)
            .with_request_config(send_config())
            .await?;
        Ok(r.response.event_id.to_string())
    }

    /// Sends `part` of delivering `key` into `room` once: if the store has
    /// its event, that is the answer; otherwise it is sent with the
    /// part's derived transaction id (so a crash between the send and the
    /// record costs no second post: the homeserver deduplicates the
    /// resend) and recorded. Every exactly-once post goes through here or
    /// `send_file_once`.
    pub async fn send_once(
        &self,
        store: &Store,
        room: &Room,
        key: &str,
        part: Part,
        content: RoomMessageEventContent,
    ) -> Result<String, SendError> {
        let rid = room.room_id().as_str();
        if let Some(Recorded { event_id: Some(e) }) = store.part(key, rid, part)? {
            return Ok(e);
        }
        let e = self.send(room, content, &txn_id(key, rid, part)).await?;
        store.record(key, rid, part, Some(&e))?;
        Ok(e)
    }

    /// `send_once` for a file.
    pub async fn send_file_once(
        &self,
        store: &Store,
        room: &Room,
        key: &str,
        part: Part,
        file: (&str, &mime::Mime, Vec<u8>),
    ) -> Result<String, SendError> {
        let rid = room.room_id().as_str();
        if let Some(Recorded { event_id: Some(e) }) = store.part(key, rid, part)? {
            return Ok(e);
        }
        let (name, mime, data) = file;
        let e = self
            .send_file(room, name, mime, data, &txn_id(key, rid, part))
            .await?;
        store.record(key, rid, part, Some(&e))?;
        Ok(e)
    }

    /// Uploads a file (encrypted in an encrypted room) and sends its
    /// `m.file` event with the given transaction id.
    pub async fn send_file(
        &self,
        room: &Room,
        name: &str,
        mime: &mime::Mime,
        data: Vec<u8>,
        txn: &str,
    ) -> Result<String, SendError> {
        let config = AttachmentConfig::new().txn_id(txn.into());
        let r = room.send_attachment(name, mime, data, config).await?;
        Ok(r.event_id.to_string())
    }
}
