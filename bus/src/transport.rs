//! NATS JetStream transport: connecting (TLS, nkeys), the scope streams
//! (`VARDE_COMMUNITY`, `VARDE_G_<group>`, `VARDE_O_<org>`) and the
//! directory KV bucket, and publishing sealed envelopes with
//! `Nats-Msg-Id` dedup and awaited PubAcks.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, kv, message::PublishMessage, stream};
use serde::Deserialize;

use crate::directory::VerifiedDirectory;
use crate::seal::Sealed;
use crate::subject::{self, Target};

pub const DIRECTORY_BUCKET: &str = "varde-directory";
/// The key holding the current signed directory in the bucket.
pub const DIRECTORY_KEY: &str = "signed";

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("cannot read NATS credentials {path}: {source}")]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error("JetStream {op} failed: {source}")]
    JetStream {
        op: &'static str,
        #[source]
        source: BoxError,
    },
    #[error(
        "stream {0} exists with memory storage; it must use file storage (delete and recreate it)"
    )]
    MemoryStorage(String),
    #[error(
        "stream VARDE from before one stream per scope is still on the broker ({messages} envelopes): its subjects overlap the scope streams'. Let its readers drain it (the envelopes are unchanged and open as before), then delete it (`nats stream rm VARDE`) and run `varde bus init` again"
    )]
    LegacyStream { messages: u64 },
    #[error("stream for {subject}: {source}")]
    Subject {
        subject: String,
        #[source]
        source: subject::SubjectError,
    },
    #[error("publish to {subject} failed: {source}")]
    Publish {
        subject: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "envelope {id} was not stored on {subject}: its message id `{msg_id}` was already taken on the stream by an earlier message that was not ours; someone may have claimed this id on purpose. Seal the message again (a new id) and publish it again"
    )]
    DuplicateId {
        id: uuid::Uuid,
        subject: String,
        msg_id: String,
    },
    #[error(
        "publish to {subject}: no PubAck in time (the broker may be electing a leader); the envelope may or may not be stored, and publishing it again is safe"
    )]
    AckTimedOut { subject: String },
    #[error("`{url}` is not a NATS server address: {detail}")]
    Url { url: String, detail: String },
    #[error("nats.{key}: {path} does not exist")]
    TlsFile { key: &'static str, path: PathBuf },
    #[error("nats.tls_cert and nats.tls_key go together: set both or neither")]
    TlsPair,
}

/// The async-nats error behind a failed operation, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A JetStream `op` that failed with `e`, keeping `e` as the source.
pub(crate) fn js_err<E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
) -> impl FnOnce(E) -> TransportError {
    move |e| TransportError::JetStream {
        op,
        source: Box::new(e),
    }
}

/// How to reach the broker. Every field can come from the config file or
/// `VARDE_NATS__…` environment variables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    /// `nats://host:4222` or `tls://host:4222`; several, comma separated,
    /// for a cluster.
    #[serde(default = "default_url")]
    pub url: String,
    /// nkey seed file (`SU…`) for this identity's NATS user.
    #[serde(default)]
    pub nkey_seed: Option<PathBuf>,
    /// A `.creds` file (JWT mode), as an alternative to `nkey_seed`.
    #[serde(default)]
    pub creds: Option<PathBuf>,
    /// CA bundle that signed the server certificate.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key, when the server verifies clients.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Refuse to talk to a server without TLS.
    #[serde(default)]
    pub tls_required: bool,
    /// Connection name shown in the server's monitoring.
    #[serde(default)]
    pub name: Option<String>,
    /// Prefix of this connection's reply subjects. Provisioned brokers let
    /// an org subscribe only to `_INBOX.<org>.>`, so it cannot read another
    /// org's replies; the settings loader defaults it to `_INBOX.<org>`.
    #[serde(default)]
    pub inbox_prefix: Option<String>,
}

fn default_url() -> String {
    "nats://127.0.0.1:4222".into()
}

impl Default for NatsSettings {
    fn default() -> Self {
        NatsSettings {
            url: default_url(),
            nkey_seed: None,
            creds: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_required: false,
            name: None,
            inbox_prefix: None,
        }
    }
}

impl NatsSettings {
    pub fn with_url(url: impl Into<String>) -> Self {
        NatsSettings {
            url: url.into(),
            ..Default::default()
        }
    }

    /// Client options from these settings (credentials, TLS, inbox prefix),
    /// without an event callback: callers that want to see server errors
    /// themselves (tests asserting a permission refusal) add their own.
    pub async fn connect_options(&self) -> Result<async_nats::ConnectOptions, TransportError> {
        install_tls_provider();
        let mut opts = async_nats::ConnectOptions::new()
            .name(self.name.clone().unwrap_or_else(|| "varde".into()))
            .connection_timeout(Duration::from_secs(5))
            // Keep reconnecting forever: a long-running bridge or hub must
            // survive broker restarts and cluster leader changes.
            .max_reconnects(None);
        if let Some(prefix) = &self.inbox_prefix {
            opts = opts.custom_inbox_prefix(prefix);
        }
        if let Some(seed) = &self.nkey_seed {
            crate::keys::check_private(seed)?;
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(seed).map_err(|source| {
                    TransportError::Credentials {
                        path: seed.clone(),
                        source,
                    }
                })?);
            let seed_line = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("SU"))
                .unwrap_or(text.trim())
                .to_string();
            opts = opts.nkey(seed_line);
        }
        if let Some(creds) = &self.creds {
            crate::keys::check_private(creds)?;
            opts = opts.credentials_file(creds).await.map_err(|source| {
                TransportError::Credentials {
                    path: creds.clone(),
                    source,
                }
            })?;
        }
        for (what, path) in [
            ("tls_ca", &self.tls_ca),
            ("tls_cert", &self.tls_cert),
            ("tls_key", &self.tls_key),
        ] {
            if let Some(p) = path
                && !p.exists()
            {
                return Err(TransportError::TlsFile {
                    key: what,
                    path: p.clone(),
                });
            }
        }
        if let Some(ca) = &self.tls_ca {
            opts = opts.add_root_certificates(ca.clone());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                crate::keys::check_private(key)?;
                opts = opts.add_client_certificate(cert.clone(), key.clone());
            }
            (None, None) => {}
            _ => return Err(TransportError::TlsPair),
        }
        if self.tls_required || self.tls_ca.is_some() || self.tls_cert.is_some() {
            opts = opts.require_tls(true);
        }
        Ok(opts)
    }

    /// The server addresses in `url` (comma separated for a cluster).
    pub fn addresses(&self) -> Result<Vec<async_nats::ServerAddr>, TransportError> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse().map_err(|e| TransportError::Url {
                    url: a.to_string(),
                    detail: format!("{e}"),
                })
            })
            .collect()
    }

    pub async fn connect(&self) -> Result<async_nats::Client, TransportError> {
        let opts = self
            .connect_options()
            .await?
            .event_callback(|event| async move {
                match event {
                    // Permission refusals and other server complaints reach the
                    // client only as events; log them so they are not silent.
                    async_nats::Event::ServerError(e) => {
                        tracing::warn!(error = %e, "NATS server error")
                    }
                    async_nats::Event::ClientError(e) => {
                        tracing::warn!(error = %e, "NATS client error")
                    }
                    async_nats::Event::Disconnected => tracing::info!("disconnected from NATS"),
                    async_nats::Event::Connected => tracing::debug!("connected to NATS"),
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            });
        self.connect_with(opts).await
    }

    /// Connects with `opts` (from [`NatsSettings::connect_options`]).
    pub async fn connect_with(
        &self,
        opts: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, TransportError> {
        let addrs = self.addresses()?;
        opts.connect(addrs.as_slice())
            .await
            .map_err(|source| TransportError::Connect {
                url: self.url.clone(),
                source,
            })
    }
}

/// Retention and durability of every scope stream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// 1 on a single server, 3 in a cluster.
    #[serde(default = "one")]
    pub replicas: usize,
    /// Messages older than this are dropped (retention by age).
    #[serde(default = "default_max_age", with = "humantime_serde_compat")]
    pub max_age: Duration,
    /// Window in which a repeated `Nats-Msg-Id` is dropped as a duplicate.
    #[serde(default = "default_dup_window", with = "humantime_serde_compat")]
    pub duplicate_window: Duration,
    /// Most envelopes one sender keeps of one kind in one stream (the
    /// stream's `max_msgs_per_subject`: a subject names exactly one sender,
    /// scope and kind). Past it the server drops that sender's oldest
    /// envelope of that kind, never another sender's, so one org flooding
    /// a stream bounds its own store and evicts nothing of anyone else's
    /// (deploy/README.md "What one member can store").
    #[serde(default = "default_per_sender_kind", deserialize_with = "at_least_one")]
    pub max_per_sender_kind: i64,
}

fn one() -> usize {
    1
}
fn default_max_age() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_dup_window() -> Duration {
    Duration::from_secs(5 * 60)
}
/// A week of one envelope a minute of one kind from one sender into one
/// scope: far above any org's legitimate rate (the hub batches indicators),
/// and 10,080 MiB at most per sender, kind and stream.
pub const DEFAULT_PER_SENDER_KIND: i64 = 7 * 24 * 60;
fn default_per_sender_kind() -> i64 {
    DEFAULT_PER_SENDER_KIND
}
/// 0 and -1 mean "no limit" to nats-server: refused, so the bound cannot
/// be switched off by a typo.
fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = i64::deserialize(d)?;
    if n < 1 {
        return Err(serde::de::Error::custom(format!(
            "{n} would let one sender store without limit; give at least 1"
        )));
    }
    Ok(n)
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            replicas: 1,
            max_age: default_max_age(),
            duplicate_window: default_dup_window(),
            max_per_sender_kind: DEFAULT_PER_SENDER_KIND,
        }
    }
}

/// Durations in config files as `7d`, `24h`, `2m` (jiff's friendly format).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        crate::time::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// The stream of one scope.
pub fn stream_config(s: &StreamSettings, scope: &Target) -> stream::Config {
    stream::Config {
        name: subject::stream_name(scope),
        description: Some(format!(
            "Varde sealed envelopes (TLP-labelled, signed, encrypted) to {}",
            match scope {
                Target::Community => "the community".to_string(),
                Target::Group(g) => format!("group {g}"),
                Target::Org(o) => format!("org {o}"),
            }
        )),
        subjects: vec![subject::stream_subject(scope)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: s.max_age,
        duplicate_window: s.duplicate_window,
        num_replicas: s.replicas,
        max_message_size: crate::envelope::MAX_ENVELOPE as i32,
        max_messages_per_subject: s.max_per_sender_kind,
        // Envelopes are immutable evidence: nobody deletes single messages.
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// The settings a stream was made with (to make the streams of new scopes
/// like the community's, which `init` made).
fn settings_of(c: &stream::Config) -> StreamSettings {
    StreamSettings {
        replicas: c.num_replicas,
        max_age: c.max_age,
        duplicate_window: c.duplicate_window,
        max_per_sender_kind: c.max_messages_per_subject,
    }
}

pub fn directory_bucket_config(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: DIRECTORY_BUCKET.into(),
        description: "Signed Varde member directory".into(),
        history: 16,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        max_value_size: crate::directory::MAX_DIRECTORY_BYTES as i32,
        ..Default::default()
    }
}

/// What `init` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    pub streams: StreamsReport,
    pub bucket_created: bool,
}

/// Streams made and reconciled, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamsReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
}

/// Creates or reconciles the community stream (and, with `dir`, every
/// scope's stream) and the KV bucket. Safe to run any number of times
/// (operator only: needs stream-admin rights). Refuses while the one
/// stream of before (`VARDE`) is still there.
pub async fn init(
    js: &jetstream::Context,
    s: &StreamSettings,
    dir: Option<&VerifiedDirectory>,
) -> Result<InitReport, TransportError> {
    match js.get_stream(subject::LEGACY_STREAM).await {
        Ok(mut legacy) => {
            let info = legacy.info().await.map_err(js_err("stream info"))?;
            return Err(TransportError::LegacyStream {
                messages: info.state.messages,
            });
        }
        Err(e) if stream_not_found(&e) => {}
        Err(e) => return Err(js_err("stream lookup")(e)),
    }
    let scopes = match dir {
        Some(d) => subject::scopes(d),
        None => vec![Target::Community],
    };
    let mut streams = StreamsReport::default();
    for scope in &scopes {
        reconcile(js, stream_config(s, scope), true, &mut streams).await?;
    }
    let mut bucket_created = false;
    match js.get_key_value(DIRECTORY_BUCKET).await {
        Ok(_) => {}
        Err(e)
            if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket
                && std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<jetstream::context::GetStreamError>())
                    .is_some_and(stream_not_found) =>
        {
            js.create_key_value(directory_bucket_config(s.replicas))
                .await
                .map_err(js_err("kv create"))?;
            bucket_created = true;
        }
        Err(e) => return Err(js_err("kv lookup")(e)),
    }
    Ok(InitReport {
        streams,
        bucket_created,
    })
}

/// Makes the stream of every scope of `dir` that has none yet, with the
/// community stream's settings (run by the operator when a directory is
/// pushed and at provisioning: a new org or group gets its stream before
/// anyone can publish to it). Existing streams are left as they are.
pub async fn ensure_streams(
    js: &jetstream::Context,
    dir: &VerifiedDirectory,
) -> Result<StreamsReport, TransportError> {
    let mut community = js
        .get_stream(subject::COMMUNITY_STREAM)
        .await
        .map_err(js_err(
            "community stream lookup (has `varde bus init` been run?)",
        ))?;
    let template = settings_of(
        &community
            .info()
            .await
            .map_err(js_err("stream info"))?
            .config,
    );
    let mut report = StreamsReport::default();
    for scope in subject::scopes(dir) {
        reconcile(js, stream_config(&template, &scope), false, &mut report).await?;
    }
    Ok(report)
}

/// Creates `want` if missing; with `update`, brings an existing stream's
/// settings to `want`.
async fn reconcile(
    js: &jetstream::Context,
    want: stream::Config,
    update: bool,
    report: &mut StreamsReport,
) -> Result<(), TransportError> {
    match js.get_stream(&want.name).await {
        Ok(mut existing) => {
            let info = existing.info().await.map_err(js_err("stream info"))?;
            let have = &info.config;
            if have.storage != want.storage {
                return Err(TransportError::MemoryStorage(want.name.clone()));
            }
            let differs = have.subjects != want.subjects
                || have.max_age != want.max_age
                || have.duplicate_window != want.duplicate_window
                || have.num_replicas != want.num_replicas
                || have.max_message_size != want.max_message_size
                || have.max_messages_per_subject != want.max_messages_per_subject
                || have.deny_delete != want.deny_delete;
            if update && differs {
                js.update_stream(&want)
                    .await
                    .map_err(js_err("stream update"))?;
                report.updated.push(want.name);
            } else {
                report.unchanged += 1;
            }
        }
        // Only a stream that is not there is created: any other failure
        // (no permission, no JetStream, a timeout) is reported, not
        // papered over by an attempt to create it.
        Err(e) if stream_not_found(&e) => {
            let name = want.name.clone();
            js.create_stream(want)
                .await
                .map_err(js_err("stream create"))?;
            report.created.push(name);
        }
        Err(e) => return Err(js_err("stream lookup")(e)),
    }
    Ok(())
}

fn stream_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(j)
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// JetStream context tuned for publishing: the ack window bounds how many
/// envelopes are in flight before `publish` waits.
pub fn jetstream(client: async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(10))
        .max_ack_inflight(4096)
        .backpressure_on_inflight(true)
        .build(client)
}

/// Where one copy of an envelope landed.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub sequence: u64,
    /// Already on the stream from an earlier attempt of ours (a retry
    /// after a lost PubAck); never set on a first attempt, where it is an
    /// error (`DuplicateId`).
    pub duplicate: bool,
}

/// Whether a copy may already be on the stream from our own earlier try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Never sent before: a duplicate PubAck means another publisher holds
    /// the message id, and our envelope was dropped.
    First,
    /// Sent before and its PubAck lost (a timeout, a leader change): a
    /// duplicate PubAck means our earlier copy is stored.
    Retry,
}

/// Tries per `publish` when the PubAck does not arrive in time.
const PUBLISH_ATTEMPTS: usize = 3;

/// Publishes every copy of `sealed` (one per subject) and waits for each
/// PubAck, sending again (same message ids, so the broker keeps one copy)
/// when a PubAck times out. A duplicate on the first attempt is refused as
/// `DuplicateId`: the broker dropped our envelope in favour of someone
/// else's message with the same id.
pub async fn publish(
    js: &jetstream::Context,
    sealed: &Sealed,
) -> Result<Vec<Stored>, TransportError> {
    let mut attempt = Attempt::First;
    let mut tries = 0;
    loop {
        tries += 1;
        let outcome = match send_attempt(js, sealed, attempt).await {
            Ok(pending) => confirm(pending).await,
            Err(e) => Err(e),
        };
        match outcome {
            Err(TransportError::AckTimedOut { .. }) if tries < PUBLISH_ATTEMPTS => {
                tracing::info!(id = %sealed.id(), tries, "PubAck timed out; publishing again");
                attempt = Attempt::Retry;
            }
            other => return other,
        }
    }
}

/// `publish` for an envelope that this process (or an earlier run of it)
/// may already have published with the same id, e.g. a re-seal with a
/// fixed id after a crash: a duplicate PubAck counts as stored. Safe only
/// when the id is one other members cannot guess.
pub async fn republish(
    js: &jetstream::Context,
    sealed: &Sealed,
) -> Result<Vec<Stored>, TransportError> {
    let pending = send_attempt(js, sealed, Attempt::Retry).await?;
    confirm(pending).await
}

/// A sent copy whose PubAck has not arrived yet.
pub struct Pending {
    subject: String,
    id: uuid::Uuid,
    msg_id: String,
    attempt: Attempt,
    ack: jetstream::context::PublishAckFuture,
}

/// Sends every copy without waiting for acks (pipelining many envelopes);
/// pass the result to `confirm`. A first attempt: see `resend` for retries.
pub async fn send(
    js: &jetstream::Context,
    sealed: &Sealed,
) -> Result<Vec<Pending>, TransportError> {
    send_attempt(js, sealed, Attempt::First).await
}

/// `send` again after our own earlier `send` of the same envelope failed
/// or its PubAck was lost: a duplicate PubAck is then our earlier copy.
pub async fn resend(
    js: &jetstream::Context,
    sealed: &Sealed,
) -> Result<Vec<Pending>, TransportError> {
    send_attempt(js, sealed, Attempt::Retry).await
}

pub async fn send_attempt(
    js: &jetstream::Context,
    sealed: &Sealed,
    attempt: Attempt,
) -> Result<Vec<Pending>, TransportError> {
    let mut out = Vec::with_capacity(sealed.copies.len());
    for (i, copy) in sealed.copies.iter().enumerate() {
        let subject = &copy.subject;
        let msg_id = sealed.msg_id(i);
        let stream = subject::stream_of(subject).map_err(|source| TransportError::Subject {
            subject: subject.clone(),
            source,
        })?;
        let msg = PublishMessage::build()
            .payload(copy.bytes.clone())
            .message_id(msg_id.clone())
            .expected_stream(stream);
        let ack =
            js.send_publish(subject.clone(), msg)
                .await
                .map_err(|e| TransportError::Publish {
                    subject: subject.clone(),
                    source: Box::new(e),
                })?;
        out.push(Pending {
            subject: subject.clone(),
            id: sealed.id(),
            msg_id,
            attempt,
            ack,
        });
    }
    Ok(out)
}

pub async fn confirm(pending: Vec<Pending>) -> Result<Vec<Stored>, TransportError> {
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let ack = p.ack.await.map_err(|e| {
            if e.kind() == jetstream::context::PublishErrorKind::TimedOut {
                TransportError::AckTimedOut {
                    subject: p.subject.clone(),
                }
            } else {
                TransportError::Publish {
                    subject: p.subject.clone(),
                    source: Box::new(e),
                }
            }
        })?;
        if ack.duplicate && p.attempt == Attempt::First {
            return Err(TransportError::DuplicateId {
                id: p.id,
                subject: p.subject,
                msg_id: p.msg_id,
            });
        }
        out.push(Stored {
            subject: p.subject,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        });
    }
    Ok(out)
}

/// Makes ring the process-wide rustls provider unless one is set already.
/// A process that links both ring (async-nats) and aws-lc-rs (reqwest in
/// the bridge, through matrix-sdk) has no automatic default, and rustls
/// panics on the first TLS connection; choosing one here keeps `tls://`
/// working in every binary that uses the bus.
pub fn install_tls_provider() {
    // Err means another provider was installed first, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
