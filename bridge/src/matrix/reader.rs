//! A member's view of a room with end-to-end encryption: logs in as a
//! person (not the bot) on a device of its own, cross-signs that device so
//! the bridge's identity-based key sharing includes it, and reads room
//! history decrypted. Used by `varde-bridge read-room` (the demo) and by
//! the integration tests as "a second account".

use std::path::Path;
use std::time::Duration;

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::TimelineEventKind;
use matrix_sdk::encryption::EncryptionSettings;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::uiaa;
use matrix_sdk::ruma::{RoomId, UInt};
use matrix_sdk::{Client, RoomState};
use matrix_sdk_crypto::CollectStrategy;
use serde_json::Value;

/// One timeline event as the reader sees it.
#[derive(Clone, Debug)]
pub struct ReadEvent {
    pub event_id: String,
    pub sender: String,
    /// The (decrypted) event type, e.g. `m.room.message`.
    pub event_type: String,
    /// The (decrypted) content.
    pub content: Value,
    /// Whether it arrived as `m.room.encrypted`.
    pub encrypted: bool,
    /// False for an encrypted event this device has no key for.
    pub decrypted: bool,
}

/// A logged-in member with E2EE.
#[derive(Clone, Debug)]
pub struct Reader {
    pub client: Client,
}

impl Reader {
    /// Logs in as `user` (restoring the session kept in `store` if there is
    /// one), with a SQLite crypto store in `store`, and cross-signs the
    /// device.
    pub async fn login(
        homeserver: &str,
        user: &str,
        password: &str,
        store: &Path,
        device_id: &str,
    ) -> anyhow::Result<Reader> {
        std::fs::create_dir_all(store)?;
        let client = Client::builder()
            .homeserver_url(homeserver)
            .sqlite_store(store, None)
            .with_encryption_settings(EncryptionSettings {
                auto_enable_cross_signing: false,
                ..Default::default()
            })
            .with_room_key_recipient_strategy(CollectStrategy::IdentityBasedStrategy)
            .build()
            .await?;
        let session_file = store.join("session.json");
        match std::fs::read(&session_file) {
            Ok(bytes) => {
                let s: MatrixSession = serde_json::from_slice(&bytes)?;
                client.restore_session(s).await?;
            }
            Err(_) => {
                client
                    .matrix_auth()
                    .login_username(user, password)
                    .device_id(device_id)
                    .initial_device_display_name("varde reader")
                    .send()
                    .await?;
                if let Some(s) = client.matrix_auth().session() {
                    std::fs::write(&session_file, serde_json::to_vec(&s)?)?;
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(
                            &session_file,
                            std::fs::Permissions::from_mode(0o600),
                        )?;
                    }
                }
            }
        }
        let enc = client.encryption();
        enc.wait_for_e2ee_initialization_tasks().await;
        if let Err(e) = enc.bootstrap_cross_signing_if_needed(None).await {
            let Some(info) = e.as_uiaa_response() else {
                return Err(e.into());
            };
            let user_id = client
                .user_id()
                .map(|u| u.to_string())
                .unwrap_or_else(|| user.to_string());
            let mut auth = uiaa::Password::new(
                uiaa::UserIdentifier::Matrix(uiaa::MatrixUserIdentifier::new(user_id)),
                password.to_owned(),
            );
            auth.session = info.session.clone();
            enc.bootstrap_cross_signing(Some(uiaa::AuthData::Password(auth)))
                .await?;
        }
        if let Some(me) = client.user_id() {
            let _ = enc.request_user_identity(me).await;
        }
        let reader = Reader { client };
        // Upload keys and learn about rooms.
        reader.sync_once().await?;
        Ok(reader)
    }

    /// Whether this device is signed by its owner's identity.
    pub async fn cross_signed(&self) -> bool {
        matches!(
            self.client.encryption().get_own_device().await,
            Ok(Some(d)) if d.is_cross_signed_by_owner()
        )
    }

    /// One sync: delivers to-device room keys and new events.
    pub async fn sync_once(&self) -> anyhow::Result<()> {
        self.client
            .sync_once(SyncSettings::default().timeout(Duration::from_millis(500)))
            .await?;
        Ok(())
    }

    /// Joins a room (after an invitation).
    pub async fn join(&self, room_id: &str) -> anyhow::Result<()> {
        let id = RoomId::parse(room_id)?;
        if let Some(room) = self.client.get_room(&id)
            && room.state() == RoomState::Joined
        {
            return Ok(());
        }
        self.client.join_room_by_id(&id).await?;
        Ok(())
    }

    /// Up to `limit` most recent events of the room, oldest first,
    /// decrypted where this device holds the key.
    pub async fn messages(&self, room_id: &str, limit: u32) -> anyhow::Result<Vec<ReadEvent>> {
        let id = RoomId::parse(room_id)?;
        let room = self
            .client
            .get_room(&id)
            .ok_or_else(|| anyhow::anyhow!("{room_id} is not known to this account"))?;
        let mut out = Vec::new();
        let mut from: Option<String> = None;
        while (out.len() as u32) < limit {
            let mut opts = MessagesOptions::backward();
            opts.limit = UInt::from(limit.min(1000));
            opts.from = from.clone();
            let page = room.messages(opts).await?;
            if page.chunk.is_empty() {
                break;
            }
            for ev in &page.chunk {
                let json: Value = serde_json::from_str(ev.raw().json().get())?;
                let (encrypted, decrypted) = match &ev.kind {
                    TimelineEventKind::Decrypted(_) => (true, true),
                    TimelineEventKind::UnableToDecrypt { .. } => (true, false),
                    TimelineEventKind::PlainText { .. } => (false, true),
                };
                out.push(ReadEvent {
                    event_id: ev.event_id().map(|e| e.to_string()).unwrap_or_default(),
                    sender: ev.sender().map(|s| s.to_string()).unwrap_or_default(),
                    event_type: json
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    content: json.get("content").cloned().unwrap_or(Value::Null),
                    encrypted,
                    decrypted,
                });
            }
            match page.end {
                Some(end) => from = Some(end),
                None => break,
            }
        }
        out.reverse();
        Ok(out)
    }
}
