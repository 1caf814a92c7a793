//! The bot's Matrix client: one account on one fixed device, its session
//! saved (0600) and restored on every start (never logged out: logging out
//! would delete the device and with it Synapse's transaction-id memory and
//! the bot's encryption keys), matrix-sdk's SQLite state and crypto store,
//! cross-signing bootstrapped so the device is verified by its owner, room
//! keys shared only with devices their owners cross-signed
//! (identity-based strategy), and invitations accepted only from users or
//! servers the directory or the configuration allows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::encryption::{BackupDownloadStrategy, EncryptionSettings};
use matrix_sdk::ruma::api::client::uiaa;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId, UserId};
use matrix_sdk::{Client, Room, SessionMeta, SessionTokens};
use matrix_sdk_crypto::CollectStrategy;
use varde_bus::directory::DirectoryHandle;
use varde_schemas::OrgId;

use crate::config;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("cannot build the Matrix client for {homeserver}: {detail}")]
    Build { homeserver: String, detail: String },
    #[error("cannot read or write the Matrix session file {path}: {detail}")]
    Session { path: PathBuf, detail: String },
    #[error(
        "the saved session {path} is for {found}, but the configuration says {configured}; move the store aside or fix matrix.user / matrix.device_id"
    )]
    SessionMismatch {
        path: PathBuf,
        found: String,
        configured: String,
    },
    #[error("login as {user} failed: {detail}")]
    Login { user: String, detail: String },
    #[error(
        "the access token belongs to device {found}, not matrix.device_id = {configured}; log in with that device or fix the configuration"
    )]
    WrongDevice { found: String, configured: String },
    #[error(
        "the homeserver rejected the saved access token and no password is configured; set matrix.password (or password_file) so the bot can log in again on device {device}"
    )]
    TokenRejected { device: String },
    #[error("first Matrix sync failed: {0}")]
    Sync(String),
}

/// The logged-in bot.
#[derive(Clone, Debug)]
pub struct Bot {
    pub client: Client,
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
}

fn builder(cfg: &config::Matrix) -> matrix_sdk::ClientBuilder {
    Client::builder()
        .homeserver_url(cfg.homeserver.as_str())
        .sqlite_store(&cfg.store, cfg.store_passphrase.as_deref())
        .with_encryption_settings(EncryptionSettings {
            // Done explicitly below, with the password when the server asks.
            auto_enable_cross_signing: false,
            backup_download_strategy: BackupDownloadStrategy::default(),
            auto_enable_backups: false,
        })
        // Room keys only for devices signed by their owner's cross-signing
        // identity (MSC4153): an unverified device added to a member's
        // account does not get to read TLP:AMBER.
        .with_room_key_recipient_strategy(CollectStrategy::IdentityBasedStrategy)
        // The relay retries sends itself (with retry_after, per room);
        // everything else gets a few quick retries.
        .request_config(
            RequestConfig::new()
                .timeout(Duration::from_secs(30))
                .retry_limit(3),
        )
}

fn read_session(path: &Path) -> Result<Option<MatrixSession>, BotError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| BotError::Session {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BotError::Session {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

/// Writes the session atomically, readable by the owner only.
fn write_session(path: &Path, session: &MatrixSession) -> Result<(), BotError> {
    let err = |detail: String| BotError::Session {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = serde_json::to_vec_pretty(session).map_err(|e| err(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| err(e.to_string()))?;
        f.write_all(&bytes).map_err(|e| err(e.to_string()))?;
        f.sync_all().map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

fn private_dir(path: &Path) -> Result<(), BotError> {
    std::fs::create_dir_all(path).map_err(|e| BotError::Session {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

fn unknown_token(e: &matrix_sdk::HttpError) -> bool {
    matches!(e.client_api_error_kind(), Some(ErrorKind::UnknownToken(_)))
}

impl Bot {
    /// Logs in (or restores the saved session) and sets up encryption.
    /// Does not sync; see [`Bot::start_sync`].
    pub async fn connect(cfg: &config::Matrix) -> Result<Bot, BotError> {
        private_dir(&cfg.store)?;
        let build = || async {
            builder(cfg).build().await.map_err(|e| BotError::Build {
                homeserver: cfg.homeserver.to_string(),
                detail: e.to_string(),
            })
        };
        let session_file = cfg.session_file();
        let configured = format!("{} on device {}", cfg.user, cfg.device_id);
        let mut client = build().await?;
        let mut logged_in = false;
        if let Some(saved) = read_session(&session_file)? {
            let found = format!("{} on device {}", saved.meta.user_id, saved.meta.device_id);
            if saved.meta.user_id.as_str() != cfg.user
                || saved.meta.device_id.as_str() != cfg.device_id
            {
                return Err(BotError::SessionMismatch {
                    path: session_file,
                    found,
                    configured,
                });
            }
            client
                .restore_session(saved)
                .await
                .map_err(|e| BotError::Login {
                    user: cfg.user.clone(),
                    detail: e.to_string(),
                })?;
            match client.whoami().await {
                Ok(_) => logged_in = true,
                Err(e) if unknown_token(&e) => {
                    tracing::warn!(
                        device = %cfg.device_id,
                        "the saved access token was rejected; logging in again on the same device"
                    );
                    if cfg.password.is_none() {
                        return Err(BotError::TokenRejected {
                            device: cfg.device_id.clone(),
                        });
                    }
                    // A client holds one session for life: start afresh on
                    // the same store (same device, same keys).
                    drop(client);
                    client = build().await?;
                }
                // The homeserver may be down right now; the session is
                // restored and sync will keep trying.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check the saved session now; continuing");
                    logged_in = true;
                }
            }
        }
        if !logged_in {
            if let (Some(token), None) = (&cfg.access_token, &cfg.password) {
                let user_id = UserId::parse(&cfg.user).map_err(|e| BotError::Login {
                    user: cfg.user.clone(),
                    detail: e.to_string(),
                })?;
                let session = MatrixSession {
                    meta: SessionMeta {
                        user_id,
                        device_id: cfg.device_id.as_str().into(),
                    },
                    tokens: SessionTokens {
                        access_token: token.clone(),
                        refresh_token: None,
                    },
                };
                client
                    .restore_session(session)
                    .await
                    .map_err(|e| BotError::Login {
                        user: cfg.user.clone(),
                        detail: e.to_string(),
                    })?;
                let who = client.whoami().await.map_err(|e| BotError::Login {
                    user: cfg.user.clone(),
                    detail: e.to_string(),
                })?;
                let found = who.device_id.map(|d| d.to_string()).unwrap_or_default();
                if found != cfg.device_id {
                    return Err(BotError::WrongDevice {
                        found,
                        configured: cfg.device_id.clone(),
                    });
                }
            } else if let Some(password) = &cfg.password {
                client
                    .matrix_auth()
                    .login_username(&cfg.user, password)
                    .device_id(&cfg.device_id)
                    .initial_device_display_name(&cfg.display_name)
                    .send()
                    .await
                    .map_err(|e| BotError::Login {
                        user: cfg.user.clone(),
                        detail: e.to_string(),
                    })?;
            } else {
                return Err(BotError::Login {
                    user: cfg.user.clone(),
                    detail: "no saved session, password or access token".into(),
                });
            }
            tracing::info!(user = %cfg.user, device = %cfg.device_id, "logged in to Matrix");
        }
        let session = client
            .matrix_auth()
            .session()
            .ok_or_else(|| BotError::Login {
                user: cfg.user.clone(),
                detail: "no session after login".into(),
            })?;
        write_session(&session_file, &session)?;
        let bot = Bot {
            user_id: session.meta.user_id.clone(),
            device_id: session.meta.device_id.clone(),
            client,
        };
        Ok(bot)
    }

    /// Makes sure the account has a cross-signing identity and that this
    /// device is signed by it. The first upload needs no password on
    /// current Synapse; when the server asks, the configured password
    /// answers. Returns whether the device is cross-signed.
    pub async fn ensure_cross_signed(&self, password: Option<&str>) -> bool {
        let enc = self.client.encryption();
        enc.wait_for_e2ee_initialization_tasks().await;
        if let Err(e) = enc.bootstrap_cross_signing_if_needed(None).await {
            match (e.as_uiaa_response(), password) {
                (Some(uiaa_info), Some(password)) => {
                    let mut auth = uiaa::Password::new(
                        uiaa::UserIdentifier::Matrix(uiaa::MatrixUserIdentifier::new(
                            self.user_id.to_string(),
                        )),
                        password.to_owned(),
                    );
                    auth.session = uiaa_info.session.clone();
                    if let Err(e) = enc
                        .bootstrap_cross_signing(Some(uiaa::AuthData::Password(auth)))
                        .await
                    {
                        tracing::warn!(error = %e, "cross-signing set-up failed");
                    }
                }
                (Some(_), None) => tracing::warn!(
                    "the homeserver wants the password to set up cross-signing; set matrix.password once"
                ),
                (None, _) => tracing::warn!(error = %e, "cross-signing set-up failed"),
            }
        }
        // The signatures just uploaded reach the local device list with
        // the next key query; ask for it now.
        if let Err(e) = enc.request_user_identity(&self.user_id).await {
            tracing::debug!(error = %e, "cannot refresh our own keys");
        }
        let signed = match enc.get_own_device().await {
            Ok(Some(d)) => d.is_cross_signed_by_owner(),
            _ => false,
        };
        if signed {
            tracing::info!(device = %self.device_id, "the bot's device is cross-signed");
        } else {
            tracing::warn!(
                device = %self.device_id,
                "the bot's device is not cross-signed; members' clients will show it as unverified"
            );
        }
        signed
    }

    /// Accepts invitations from allowed inviters (joining with back-off,
    /// since a join right after the invite can race the homeserver).
    pub fn handle_invites(&self, policy: Arc<InvitePolicy>) {
        let own = self.user_id.clone();
        self.client.add_event_handler(
            move |ev: StrippedRoomMemberEvent, room: Room| {
                let policy = policy.clone();
                let own = own.clone();
                async move {
                    if ev.state_key != own || ev.content.membership != MembershipState::Invite {
                        return;
                    }
                    let inviter = ev.sender.to_string();
                    let room_id = room.room_id().to_owned();
                    if !policy.allows(&inviter) {
                        tracing::warn!(%room_id, %inviter, "invitation declined: the inviter is neither a user of this bridge's organisation nor in matrix.allowed_inviters");
                        if let Err(e) = room.leave().await {
                            tracing::debug!(%room_id, error = %e, "cannot decline the invitation");
                        }
                        return;
                    }
                    tokio::spawn(async move {
                        let mut attempt = 0u32;
                        loop {
                            match room.join().await {
                                Ok(()) => {
                                    tracing::info!(%room_id, %inviter, "joined room on invitation");
                                    return;
                                }
                                Err(e) if attempt < 12 => {
                                    let wait = super::backoff(attempt);
                                    tracing::info!(%room_id, error = %e, ?wait, "join failed; retrying");
                                    tokio::time::sleep(wait).await;
                                    attempt += 1;
                                }
                                Err(e) => {
                                    tracing::warn!(%room_id, error = %e, "giving up joining the room");
                                    return;
                                }
                            }
                        }
                    });
                }
            },
        );
    }

    /// First sync (so room state is known before anything is posted).
    pub async fn first_sync(&self) -> Result<String, BotError> {
        let settings = SyncSettings::default().timeout(Duration::from_secs(0));
        let mut attempt = 0;
        loop {
            match self.client.sync_once(settings.clone()).await {
                Ok(r) => return Ok(r.next_batch),
                Err(e) if attempt < 5 => {
                    tracing::warn!(error = %e, "first Matrix sync failed; retrying");
                    tokio::time::sleep(super::backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(BotError::Sync(e.to_string())),
            }
        }
    }

    /// Keeps syncing forever (state, membership, to-device keys), recording
    /// each success for `/healthz`.
    pub async fn sync_forever(&self, token: String, health: Arc<crate::metrics::Health>) {
        let settings = SyncSettings::default()
            .token(token)
            .timeout(Duration::from_secs(30));
        let failures = std::sync::atomic::AtomicU32::new(0);
        let result = self
            .client
            .sync_with_result_callback(settings, |r| {
                let health = health.clone();
                let failures = &failures;
                async move {
                    match r {
                        Ok(_) => {
                            failures.store(0, std::sync::atomic::Ordering::Relaxed);
                            health.last_sync_ms.store(
                                crate::store::now_ms(),
                                std::sync::atomic::Ordering::Relaxed,
                            );
                        }
                        Err(e) => {
                            let n = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::warn!(error = %e, "Matrix sync failed; retrying");
                            tokio::time::sleep(super::backoff(n)).await;
                        }
                    }
                    Ok(matrix_sdk::LoopCtrl::Continue)
                }
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "Matrix sync stopped");
        }
    }
}

/// Who may invite the bot: users of the bridge's own org, and
/// `matrix.allowed_inviters`. A member of another org cannot pull this
/// org's bot into its rooms (where it would relay, and sign, for them).
pub struct InvitePolicy {
    pub allowed: Vec<String>,
    pub directory: DirectoryHandle,
    pub own_org: OrgId,
}

impl InvitePolicy {
    pub fn allows(&self, inviter: &str) -> bool {
        let server = inviter.split_once(':').map_or("", |(_, s)| s);
        self.allowed
            .iter()
            .any(|a| a == inviter || (!a.starts_with('@') && a == server))
            || self
                .directory
                .current()
                .org_of_matrix_user(inviter)
                .is_some_and(|o| o.id == self.own_org)
    }
}
