//! Sealing and opening envelopes (README "How a message is sealed").
//!
//! Seal: the payload is encrypted once with XChaCha20-Poly1305 under a fresh
//! 32-byte content key (derived from a fresh age file key and the nonce), the
//! exact header bytes as associated data; the file key is wrapped for each
//! recipient key in age's X25519 stanza (`wrap.rs`); then the sender signs
//! (encrypt-then-sign) a BLAKE3 digest of everything before the signature.
//!
//! Open: frame → look up the signing key → verify the signature over the
//! exact received bytes → only then parse the header → check sender, subject,
//! label/audience, expiry, freshness, replay → find our one wrap, check its
//! shape → one X25519 → decrypt → parse the payload. Each step has its own
//! error.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signature, Signer, Verifier};
use jiff::{SignedDuration, Timestamp};
use rand_core::{OsRng, RngCore};
use uuid::Uuid;
use varde_schemas::payload::{MAX_INDICATORS, PayloadError};
use varde_schemas::{Audience, Header, KeyId, Kind, OrgId, Payload, Sender, Tlp};
use zeroize::Zeroizing;

use crate::audience::{self, AudienceError};
use crate::directory::{KeyState, VerifiedDirectory};
use crate::envelope::{
    self, FLAG_ENCRYPTED, FrameError, MAX_ENVELOPE, MAX_RECIPIENTS, WrapError, WrapFormat,
};
use crate::keys::Identity;
use crate::kind_rules::{self, KindRuleError};
pub use crate::replay::{DEFAULT_SKEW, ReplayGuard, ReplayKey};
use crate::replay::{DEFAULT_WINDOW, ReplayFile, ReplayFileError};
use crate::subject;
use crate::wrap::{self, StanzaError};

/// Domain separation for envelope signatures (cf. `directory.rs`).
const SIGNING_CONTEXT: &[u8] = b"varde/v1/envelope\n";
const NONCE_LEN: usize = 24;

/// What to seal.
#[derive(Clone, Debug)]
pub struct Draft {
    pub kind: Kind,
    pub label: Tlp,
    pub audience: Audience,
    /// Payload JSON. Built from a typed `Payload` by `Draft::new`.
    pub payload: Vec<u8>,
    pub expires: Option<Timestamp>,
    /// Fixed id (re-sealing the same logical message); random UUIDv7 if None.
    pub id: Option<Uuid>,
    /// Indicator count of a typed payload, checked against the limit.
    indicators: Option<usize>,
}

impl Draft {
    pub fn new(payload: &Payload, label: Tlp, audience: Audience) -> Self {
        Draft {
            kind: payload.kind(),
            label,
            audience,
            payload: payload.to_json(),
            expires: None,
            id: None,
            indicators: Some(payload.indicator_count()),
        }
    }

    /// A draft with arbitrary payload bytes (tools, and tests that need to
    /// seal hostile payloads to exercise `open`).
    pub fn raw(kind: Kind, label: Tlp, audience: Audience, payload: Vec<u8>) -> Self {
        Draft {
            kind,
            label,
            audience,
            payload,
            expires: None,
            id: None,
            indicators: None,
        }
    }

    pub fn expires(mut self, at: Timestamp) -> Self {
        self.expires = Some(at);
        self
    }

    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }
}

/// One envelope of a sealed message: what goes on one subject.
#[derive(Clone, Debug)]
pub struct Copy {
    pub subject: String,
    pub bytes: Bytes,
}

/// A sealed message, ready to publish: one envelope per subject its
/// audience routes to (`audience::routes`). The copies share the id, kind,
/// label, sender and times; each copy's header names only the part of the
/// audience its subject reaches, and it holds wraps for those keys only.
#[derive(Clone, Debug)]
pub struct Sealed {
    /// The message as the sender addressed it (the whole audience), for the
    /// sender's own records.
    pub header: Header,
    /// Never empty; sorted by subject.
    pub copies: Vec<Copy>,
}

impl Sealed {
    pub fn id(&self) -> Uuid {
        self.header.id
    }

    pub fn subjects(&self) -> Vec<&str> {
        self.copies.iter().map(|c| c.subject.as_str()).collect()
    }

    /// Bytes of all copies together: what the message costs the stream.
    pub fn stored_bytes(&self) -> usize {
        self.copies.iter().map(|c| c.bytes.len()).sum()
    }

    /// JetStream `Nats-Msg-Id` for copy number `i`: `<sender-org>.<id>` for
    /// the first (and usually only) copy, so retries dedupe in the broker;
    /// `<sender-org>.<id>.<i>` for further copies, which would otherwise be
    /// dropped as duplicates of the first.
    ///
    /// The broker's dedup is stream-wide and ids are the sender's choice, so
    /// the sender org is part of the dedup id: another member reusing this
    /// envelope id in its own envelope lands in its own slot instead of
    /// silently taking ours (a deliberate raw squat is caught by
    /// `transport::publish` as `DuplicateId`).
    pub fn msg_id(&self, i: usize) -> String {
        if i == 0 {
            format!("{}.{}", self.header.sender.org, self.header.id)
        } else {
            format!("{}.{}.{i}", self.header.sender.org, self.header.id)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Audience(#[from] AudienceError),
    #[error("the sender key {key} is not in directory version {version}; ask the CSIRT to add it")]
    SenderUnknown { key: KeyId, version: u64 },
    #[error("the sender key {key} is registered to `{registered}`, not `{claimed}`")]
    SenderOrgMismatch {
        key: KeyId,
        registered: OrgId,
        claimed: OrgId,
    },
    #[error("the sender key {key} is {state}; it can no longer sign")]
    SenderInactive { key: KeyId, state: String },
    #[error("the sealed envelope would be {size} bytes; the limit is {MAX_ENVELOPE}")]
    Oversized { size: usize },
    #[error("payload does not fit its kind: {0}")]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    KindRule(#[from] KindRuleError),
    #[error("cannot wrap the content key for {key}: {reason}")]
    Wrap { key: KeyId, reason: String },
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

/// Every way a received envelope can be refused. Never a panic.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("envelope is {size} bytes; the limit is {MAX_ENVELOPE}")]
    Oversized { size: usize },
    #[error("envelope lists {count} recipient keys; the limit is {MAX_RECIPIENTS}")]
    TooManyRecipients { count: usize },
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("signed by key {key}, which is not in directory version {version}")]
    UnknownSender { key: KeyId, version: u64 },
    #[error("signed by key {key} of `{org}`, revoked at {at}")]
    RevokedKey {
        key: KeyId,
        org: OrgId,
        at: Timestamp,
    },
    #[error("signed by key {key} of `{org}`, expired at {at}")]
    ExpiredKey {
        key: KeyId,
        org: OrgId,
        at: Timestamp,
    },
    #[error("signature by key {key} does not verify: the envelope was altered or forged")]
    BadSignature { key: KeyId },
    #[error("unsupported envelope header version {0}")]
    UnsupportedVersion(u8),
    #[error(
        "header names sender {claimed_org}/{claimed_key} but the signing key is {key} of `{org}`"
    )]
    SenderMismatch {
        key: KeyId,
        org: OrgId,
        claimed_key: KeyId,
        claimed_org: OrgId,
    },
    #[error("subject `{subject}` does not match the envelope: {reason}")]
    SubjectMismatch { subject: String, reason: String },
    #[error("label/audience mismatch: {0}")]
    LabelAudience(AudienceError),
    #[error("refused by the rule of its kind: {0}")]
    KindRule(KindRuleError),
    #[error("label {label} does not match the encryption flag of the envelope")]
    LabelEncryptionMismatch { label: Tlp },
    #[error("message {id} expired at {at}")]
    Expired { id: Uuid, at: Timestamp },
    #[error("message {id} claims creation at {at}, in the future")]
    FromTheFuture { id: Uuid, at: Timestamp },
    #[error(
        "message {id} was created at {at}, longer ago than the stream keeps messages: a replay of an old message"
    )]
    Stale { id: Uuid, at: Timestamp },
    #[error("message {id} signed by key {key} was already received")]
    Duplicate { id: Uuid, key: KeyId },
    #[error("this identity ({key}) is not among the message's {count} recipients")]
    NotARecipient { key: KeyId, count: usize },
    #[error(
        "the content key wrapped for {key} is refused before decryption: {reason} (not a wrap made by `seal`)"
    )]
    WrapRefused { key: KeyId, reason: WrapError },
    #[error("cannot unwrap the content key: {0}")]
    Unwrap(String),
    #[error("cannot decrypt the body: authentication failed")]
    Decrypt,
    #[error("{0}")]
    Payload(#[from] PayloadError),
}

impl OpenError {
    /// Stable short name, for metrics labels and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            OpenError::Oversized { .. } => "oversized",
            OpenError::TooManyRecipients { .. } => "too_many_recipients",
            OpenError::Malformed(_) => "malformed",
            OpenError::UnknownSender { .. } => "unknown_sender",
            OpenError::RevokedKey { .. } => "revoked_key",
            OpenError::ExpiredKey { .. } => "expired_key",
            OpenError::BadSignature { .. } => "bad_signature",
            OpenError::UnsupportedVersion(_) => "unsupported_version",
            OpenError::SenderMismatch { .. } => "sender_mismatch",
            OpenError::SubjectMismatch { .. } => "subject_mismatch",
            OpenError::LabelAudience(_) => "label_audience",
            OpenError::KindRule(_) => "kind_rule",
            OpenError::LabelEncryptionMismatch { .. } => "label_encryption",
            OpenError::Expired { .. } => "expired",
            OpenError::FromTheFuture { .. } => "from_the_future",
            OpenError::Stale { .. } => "stale",
            OpenError::Duplicate { .. } => "duplicate",
            OpenError::NotARecipient { .. } => "not_a_recipient",
            OpenError::WrapRefused { .. } => "wrap_refused",
            OpenError::Unwrap(_) => "unwrap",
            OpenError::Decrypt => "decrypt",
            OpenError::Payload(_) => "payload",
        }
    }

    /// Whether a later attempt could succeed: only an unknown sender, when
    /// our directory may lag behind the sender's. Everything else is a
    /// property of the bytes and will never change.
    pub fn may_succeed_later(&self) -> bool {
        matches!(self, OpenError::UnknownSender { .. })
    }
}

impl From<FrameError> for OpenError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Oversized { size } => OpenError::Oversized { size },
            FrameError::TooManyRecipients { count } => OpenError::TooManyRecipients { count },
            FrameError::Malformed(m) => OpenError::Malformed(m.to_string()),
        }
    }
}

fn signing_digest(signed: &[u8]) -> Vec<u8> {
    // BLAKE3 keeps the cost of hashing a 370-wrap key list (~90 KiB) small
    // next to one X25519, so opening stays flat in the audience size.
    let digest = blake3::hash(signed);
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + 32);
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(digest.as_bytes());
    m
}

/// Seals `draft` as `identity` for the audience resolved in `dir`.
pub fn seal(
    identity: &Identity,
    dir: &VerifiedDirectory,
    draft: Draft,
) -> Result<Sealed, SealError> {
    seal_at(identity, dir, draft, Timestamp::now())
}

/// `seal` with the clock given: `now` becomes the header's `created` and
/// is when the sender's key must be usable. A sender can always claim any
/// creation time, so this grants nothing; it lets tools and tests produce
/// what a sender with a wrong clock (or a replaying member) would.
pub fn seal_at(
    identity: &Identity,
    dir: &VerifiedDirectory,
    draft: Draft,
    now: Timestamp,
) -> Result<Sealed, SealError> {
    let me = dir.key(&identity.key_id).ok_or(SealError::SenderUnknown {
        key: identity.key_id,
        version: dir.version(),
    })?;
    let registered = &dir.org_at(me.org).id;
    if *registered != identity.org {
        return Err(SealError::SenderOrgMismatch {
            key: identity.key_id,
            registered: registered.clone(),
            claimed: identity.org.clone(),
        });
    }
    if let Some(state) = me.unusable(now) {
        return Err(SealError::SenderInactive {
            key: identity.key_id,
            state: match state {
                KeyState::Revoked(at) => format!("revoked since {at}"),
                KeyState::Expired(at) => format!("expired since {at}"),
            },
        });
    }
    // Refuse what every recipient would refuse anyway.
    if let Some(count) = draft.indicators
        && count > MAX_INDICATORS
    {
        return Err(PayloadError::TooManyIndicators { count }.into());
    }
    // The whole audience first: its errors (unknown names, inactive keys,
    // nobody to read it) are the sender's, whichever copy they fall in.
    audience::recipients(dir, draft.label, &draft.audience, now)?;
    kind_rules::check(dir, &identity.org, draft.kind, draft.label, &draft.audience)?;
    let header = Header {
        v: 1,
        id: draft.id.unwrap_or_else(Uuid::now_v7),
        kind: draft.kind,
        label: draft.label,
        sender: Sender {
            org: identity.org.clone(),
            key: identity.key_id,
        },
        audience: draft.audience,
        created: now,
        expires: draft.expires,
    };
    let mut copies = Vec::new();
    for route in audience::routes(dir, &identity.org, header.kind, &header.audience)? {
        let recipients = match audience::recipients(dir, header.label, &route.audience, now) {
            Ok(r) => r,
            // A named org without a usable key: nobody there could open a
            // copy (the audience as a whole has readers, checked above).
            Err(AudienceError::NoRecipients) => continue,
            Err(e) => return Err(e.into()),
        };
        let part = Header {
            audience: route.audience,
            ..header.clone()
        };
        copies.push(Copy {
            subject: route.subject,
            bytes: seal_copy(identity, &part, &recipients, &draft.payload)?,
        });
    }
    Ok(Sealed { header, copies })
}

/// Encrypts and signs one copy: `header` as it will be written, the keys of
/// the audience it names, the payload.
fn seal_copy(
    identity: &Identity,
    header: &Header,
    recipients: &[&crate::directory::KeyEntry],
    payload: &[u8],
) -> Result<Bytes, SealError> {
    if recipients.len() > MAX_RECIPIENTS {
        return Err(AudienceError::TooManyRecipients {
            count: recipients.len(),
            max: MAX_RECIPIENTS,
        }
        .into());
    }
    // Header serialisation of plain data cannot fail.
    let header_bytes = serde_json::to_vec(header).map_err(|e| SealError::Encrypt(e.to_string()))?;

    let encrypted = header.label.is_encrypted();
    let mut wraps = Vec::with_capacity(recipients.len());
    let body = if encrypted {
        let file_key = wrap::file_key();
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let key = wrap::content_key(&file_key, &nonce);
        let aead = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_slice()));
        let ct = aead
            .encrypt(
                XNonce::from_slice(&nonce),
                AeadPayload {
                    msg: payload,
                    aad: &header_bytes,
                },
            )
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        for r in recipients {
            let w = wrap::seal(&r.recipient, &file_key).map_err(|e| SealError::Wrap {
                key: r.key.id,
                reason: e.to_string(),
            })?;
            wraps.push((r.key.id, w));
        }
        let mut body = Vec::with_capacity(NONCE_LEN + ct.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ct);
        body
    } else {
        payload.to_vec()
    };

    let mut out = Vec::new();
    envelope::write_signed(
        &mut out,
        encrypted,
        identity.key_id,
        &header_bytes,
        &wraps,
        &body,
    );
    let size = out.len() + envelope::SIGNATURE_LEN;
    if size > MAX_ENVELOPE {
        return Err(SealError::Oversized { size });
    }
    let sig = identity.signing.sign(&signing_digest(&out));
    out.extend_from_slice(&sig.to_bytes());
    Ok(Bytes::from(out))
}

/// Writes and signs an envelope from parts with no policy check at all.
/// Only for tools and for tests that must produce validly signed but
/// otherwise bad envelopes to exercise `open`; `seal` is the real path.
pub fn assemble_unchecked(
    identity: &Identity,
    header: &Header,
    wraps: &[(KeyId, Vec<u8>)],
    body: &[u8],
    encrypted: bool,
) -> Bytes {
    assemble_unchecked_as(WrapFormat::Stanza, identity, header, wraps, body, encrypted)
}

/// `assemble_unchecked` in a given format: tests of the `VRD1` format (one
/// age file per wrap), which is still opened.
pub fn assemble_unchecked_as(
    format: WrapFormat,
    identity: &Identity,
    header: &Header,
    wraps: &[(KeyId, Vec<u8>)],
    body: &[u8],
    encrypted: bool,
) -> Bytes {
    let header_bytes = serde_json::to_vec(header).unwrap_or_default();
    let mut out = Vec::new();
    envelope::write_signed_as(
        &mut out,
        format,
        encrypted,
        identity.key_id,
        &header_bytes,
        wraps,
        body,
    );
    let sig = identity.signing.sign(&signing_digest(&out));
    out.extend_from_slice(&sig.to_bytes());
    Bytes::from(out)
}

/// Signs an already framed signed part (everything but the signature) and
/// appends the signature. Only for tools and fuzzing: it lets arbitrary
/// framings reach the checks behind the signature; `seal` is the real path.
pub fn sign_unchecked(identity: &Identity, signed: &[u8]) -> Bytes {
    let mut out = signed.to_vec();
    let sig = identity.signing.sign(&signing_digest(&out));
    out.extend_from_slice(&sig.to_bytes());
    Bytes::from(out)
}

/// An envelope whose signature and header checked out (nothing decrypted).
#[derive(Debug)]
pub struct Verified<'a> {
    pub header: Header,
    pub framed: envelope::Framed<'a>,
}

/// Checks an envelope without decrypting it: framing, signing key, the
/// signature over the exact bytes, then the header's claims. `subject` is
/// the subject it arrived on, when known.
pub fn verify<'a>(
    dir: &VerifiedDirectory,
    subject: Option<&str>,
    bytes: &'a [u8],
    now: Timestamp,
) -> Result<Verified<'a>, OpenError> {
    let framed = envelope::parse(bytes)?;
    let signer = dir.key(&framed.signer).ok_or(OpenError::UnknownSender {
        key: framed.signer,
        version: dir.version(),
    })?;
    let signer_org = &dir.org_at(signer.org).id;
    match signer.unusable(now) {
        Some(KeyState::Revoked(at)) => {
            return Err(OpenError::RevokedKey {
                key: framed.signer,
                org: signer_org.clone(),
                at,
            });
        }
        Some(KeyState::Expired(at)) => {
            return Err(OpenError::ExpiredKey {
                key: framed.signer,
                org: signer_org.clone(),
                at,
            });
        }
        None => {}
    }
    let sig = Signature::from_bytes(&framed.signature);
    signer
        .verifying
        .verify(&signing_digest(framed.signed), &sig)
        .map_err(|_| OpenError::BadSignature { key: framed.signer })?;

    // Authentic from here on; now the header may be parsed.
    let header: Header = serde_json::from_slice(framed.header)
        .map_err(|e| OpenError::Malformed(format!("header: {e}")))?;
    if header.v != 1 {
        return Err(OpenError::UnsupportedVersion(header.v));
    }
    if header.sender.key != framed.signer || header.sender.org != *signer_org {
        return Err(OpenError::SenderMismatch {
            key: framed.signer,
            org: signer_org.clone(),
            claimed_key: header.sender.key,
            claimed_org: header.sender.org.clone(),
        });
    }
    if let Some(subject) = subject {
        check_subject(dir, &header, subject)?;
    }
    if (framed.flags & FLAG_ENCRYPTED != 0) != header.label.is_encrypted() {
        return Err(OpenError::LabelEncryptionMismatch {
            label: header.label,
        });
    }
    audience::check(header.label, &header.audience).map_err(OpenError::LabelAudience)?;
    kind_rules::check(
        dir,
        &header.sender.org,
        header.kind,
        header.label,
        &header.audience,
    )
    .map_err(OpenError::KindRule)?;
    let members = audience::Members::new(dir, &header.audience);
    for (id, _) in &framed.wraps {
        // Keys our directory does not know yet (version skew) are tolerated;
        // a known key outside the audience means the sender leaked.
        if let Some(k) = dir.key(id)
            && !members.has_key(k)
        {
            return Err(OpenError::LabelAudience(
                AudienceError::WrappedOutsideAudience(*id),
            ));
        }
    }
    if let Some(at) = header.expires
        && at <= now
    {
        return Err(OpenError::Expired { id: header.id, at });
    }
    if header.created > now + DEFAULT_SKEW {
        return Err(OpenError::FromTheFuture {
            id: header.id,
            at: header.created,
        });
    }
    Ok(Verified { header, framed })
}

fn check_subject(dir: &VerifiedDirectory, header: &Header, subject: &str) -> Result<(), OpenError> {
    let mismatch = |reason: String| OpenError::SubjectMismatch {
        subject: subject.chars().take(200).collect(),
        reason,
    };
    let parsed = subject::parse(subject).map_err(|e| mismatch(e.reason.to_string()))?;
    if parsed.sender != header.sender.org {
        return Err(mismatch(format!(
            "sender token `{}` but the header's sender is `{}`",
            parsed.sender, header.sender.org
        )));
    }
    if parsed.kind != header.kind {
        return Err(mismatch(format!(
            "kind token `{}` but the header's kind is `{}`",
            parsed.kind, header.kind
        )));
    }
    let a = &header.audience;
    let routed = match &parsed.target {
        subject::Target::Community => a.community || a.is_empty(),
        subject::Target::Group(g) => a.groups.contains(g),
        subject::Target::Org(o) => {
            a.orgs.contains(o)
                || a.people
                    .iter()
                    .any(|k| dir.key(k).is_some_and(|e| dir.org_at(e.org).id == *o))
        }
    };
    if !routed {
        return Err(mismatch(format!(
            "the audience ({a}) does not route to this subject"
        )));
    }
    Ok(())
}

/// A successfully opened message.
#[derive(Debug, Clone)]
pub struct Opened {
    pub header: Header,
    pub payload: Payload,
    /// Envelope size on the wire.
    pub size: usize,
}

/// The replay memory and, when persistent, its file; one lock for both so
/// the file never lags behind a decision made from memory.
struct Memory {
    guard: ReplayGuard,
    file: Option<ReplayFile>,
}

impl Memory {
    /// Writes `key` to the file, if any. A failing disk degrades the memory
    /// to this process's lifetime; it does not stop reading.
    fn persist(&mut self, key: &ReplayKey) {
        if let Some(f) = &mut self.file
            && let Err(e) = f.append(&self.guard, key)
        {
            tracing::warn!(error = %e, "cannot record an envelope in the replay file; replays after a restart may open again");
        }
    }
}

/// Opens envelopes for one identity, refusing replays and stale envelopes.
///
/// Replay memory is keyed by (signing key, envelope id): ids are chosen by
/// senders, so one member reusing another's id must not make the genuine
/// envelope look like a replay. With a replay file (`persistent`) the
/// memory survives restarts; without one, a restart forgets, and only the
/// staleness bound still holds.
///
/// It also knows which opened envelopes a consumer still holds (handed out
/// by an `Inbox`, not yet acked): a redelivery of one of those waits for
/// the first copy, while a redelivery of one already settled is a lost ack.
/// It lives here, not in the `Inbox`, because a reader re-opens its inbox
/// after a reconnect and must keep knowing both.
pub struct Opener {
    identity: Arc<Identity>,
    /// How long after its creation an envelope may still be delivered: the
    /// stream's max age. Older ones can only be replays.
    max_age: SignedDuration,
    memory: Mutex<Memory>,
    /// Set once with the file, so asking never waits on the memory lock.
    persistent: bool,
    in_hand: Mutex<HashSet<ReplayKey>>,
}

impl Opener {
    pub fn new(identity: Arc<Identity>) -> Self {
        Opener {
            identity,
            max_age: DEFAULT_WINDOW,
            memory: Mutex::new(Memory {
                guard: ReplayGuard::default(),
                file: None,
            }),
            persistent: false,
            in_hand: Mutex::new(HashSet::new()),
        }
    }

    /// An opener whose replay memory is kept in `path` (created 0600 if
    /// missing) and so survives restarts.
    pub fn persistent(identity: Arc<Identity>, path: &Path) -> Result<Self, ReplayFileError> {
        Opener::new(identity).with_replay_file(path)
    }

    /// Loads and from now on keeps the replay memory in `path`. Set
    /// `max_age` first when it is longer than the default: entries outside
    /// the window are not loaded.
    pub fn with_replay_file(mut self, path: &Path) -> Result<Self, ReplayFileError> {
        let m = self.memory.get_mut().unwrap_or_else(|p| p.into_inner());
        m.file = Some(ReplayFile::open(path, &mut m.guard, Timestamp::now())?);
        self.persistent = true;
        Ok(self)
    }

    /// The stream's max age (default 7 days): envelopes created longer ago
    /// (plus clock skew) are refused as `Stale`, and replay memory is kept
    /// exactly as long.
    pub fn max_age(mut self, max_age: SignedDuration) -> Self {
        self.max_age = max_age;
        self.memory
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .guard
            .set_window(max_age + DEFAULT_SKEW);
        self
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether this opener keeps its replay memory in a file.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn in_hand(&self) -> std::sync::MutexGuard<'_, HashSet<ReplayKey>> {
        self.in_hand.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a consumer still holds `key` (opened, not yet settled or
    /// released).
    pub fn holds_key(&self, key: &ReplayKey) -> bool {
        self.in_hand().contains(key)
    }

    /// Whether a consumer holds an envelope with id `id`, whoever signed it.
    pub fn holds(&self, id: &Uuid) -> bool {
        self.in_hand().iter().any(|k| k.id == *id)
    }

    fn held_with_id(&self, id: &Uuid) -> Vec<ReplayKey> {
        self.in_hand()
            .iter()
            .filter(|k| k.id == *id)
            .copied()
            .collect()
    }

    /// The consumer is done with `key` (acked or terminated): later copies
    /// are replays, from now on also after a restart.
    pub fn settle_key(&self, key: &ReplayKey) {
        if self.in_hand().remove(key) {
            self.memory().persist(key);
        }
    }

    /// `settle_key` for every held envelope with id `id`, whoever signed it.
    pub fn settle(&self, id: &Uuid) {
        for k in self.held_with_id(id) {
            self.settle_key(&k);
        }
    }

    /// The consumer gave `key` back (nak, or dropped unanswered): the
    /// broker's redelivery must open again, not be refused as a replay.
    pub fn release_key(&self, key: &ReplayKey) {
        if self.in_hand().remove(key) {
            self.memory().guard.forget(key);
        }
    }

    /// `release_key` for every held envelope with id `id`.
    pub fn release(&self, id: &Uuid) {
        for k in self.held_with_id(id) {
            self.release_key(&k);
        }
    }

    /// Opens `bytes` received on `subject`, and remembers it at once (also
    /// in the replay file): for callers that take a message in one step.
    pub fn open(
        &self,
        dir: &VerifiedDirectory,
        subject: &str,
        bytes: &[u8],
    ) -> Result<Opened, OpenError> {
        self.open_at(dir, subject, bytes, Timestamp::now())
    }

    /// `open` with the clock given.
    pub fn open_at(
        &self,
        dir: &VerifiedDirectory,
        subject: &str,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Opened, OpenError> {
        let opened = self.open_inner(dir, subject, bytes, now, false)?;
        self.memory().persist(&ReplayKey::of(&opened.header));
        Ok(opened)
    }

    /// Opens for a consumer that acks later: the envelope is held until
    /// `settle_key` (written to the replay file then, so a crash before the
    /// ack lets the broker's redelivery open again) or `release`.
    pub fn open_held(
        &self,
        dir: &VerifiedDirectory,
        subject: &str,
        bytes: &[u8],
    ) -> Result<Opened, OpenError> {
        self.open_inner(dir, subject, bytes, Timestamp::now(), true)
    }

    fn open_inner(
        &self,
        dir: &VerifiedDirectory,
        subject: &str,
        bytes: &[u8],
        now: Timestamp,
        hold: bool,
    ) -> Result<Opened, OpenError> {
        let v = verify(dir, Some(subject), bytes, now)?;
        // Here and not in `verify`: a reader that kept an envelope to
        // handle later opens it again with `verify` and must not see it
        // go stale in its own store.
        let oldest = now
            .checked_sub(self.max_age + DEFAULT_SKEW)
            .unwrap_or(Timestamp::MIN);
        if v.header.created < oldest {
            return Err(OpenError::Stale {
                id: v.header.id,
                at: v.header.created,
            });
        }
        let key = ReplayKey::of(&v.header);
        let duplicate = OpenError::Duplicate {
            id: key.id,
            key: key.signer,
        };
        if self.memory().guard.contains(&key) {
            return Err(duplicate);
        }
        let opened = decrypt(&self.identity, v, bytes.len())?;
        let mut m = self.memory();
        // Checked again under the lock: two copies may have been opened
        // at the same time.
        if m.guard.contains(&key) {
            return Err(duplicate);
        }
        m.guard.insert(key, opened.header.created, now);
        if hold {
            self.in_hand().insert(key);
        }
        Ok(opened)
    }
}

/// Decrypts a verified envelope with `identity` (one X25519 operation) and
/// parses its payload. No replay check: see `Opener` for that.
pub fn decrypt(identity: &Identity, v: Verified<'_>, size: usize) -> Result<Opened, OpenError> {
    let Verified { header, framed } = v;
    let plaintext: Zeroizing<Vec<u8>> = if framed.flags & FLAG_ENCRYPTED == 0 {
        Zeroizing::new(framed.body.to_vec())
    } else {
        let wrap = framed
            .wraps
            .iter()
            .find(|(id, _)| *id == identity.key_id)
            .map(|(_, w)| *w)
            .ok_or(OpenError::NotARecipient {
                key: identity.key_id,
                count: framed.wraps.len(),
            })?;
        if framed.body.len() < NONCE_LEN {
            return Err(OpenError::Unwrap("body is shorter than its nonce".into()));
        }
        let refused = |reason| OpenError::WrapRefused {
            key: identity.key_id,
            reason,
        };
        let key: Zeroizing<[u8; 32]> = match framed.format {
            WrapFormat::Stanza => {
                let file_key = wrap::open(&identity.age, wrap).map_err(|e| match e {
                    StanzaError::Length { size } => refused(WrapError::StanzaLength { size }),
                    other => OpenError::Unwrap(other.to_string()),
                })?;
                wrap::content_key(&file_key, &framed.body[..NONCE_LEN])
            }
            WrapFormat::AgeFile => {
                // Before any X25519: a wrap with many stanzas costs one X25519 each.
                envelope::check_wrap(wrap).map_err(refused)?;
                let key = Zeroizing::new(
                    age::decrypt(&identity.age, wrap)
                        .map_err(|e| OpenError::Unwrap(e.to_string()))?,
                );
                let key: [u8; 32] = key
                    .as_slice()
                    .try_into()
                    .map_err(|_| OpenError::Unwrap("the content key is not 32 bytes".into()))?;
                Zeroizing::new(key)
            }
        };
        let (nonce, ct) = framed.body.split_at(NONCE_LEN);
        let aead = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_slice()));
        Zeroizing::new(
            aead.decrypt(
                XNonce::from_slice(nonce),
                AeadPayload {
                    msg: ct,
                    aad: framed.header,
                },
            )
            .map_err(|_| OpenError::Decrypt)?,
        )
    };
    let payload = Payload::from_json(header.kind, &plaintext)?;
    Ok(Opened {
        header,
        payload,
        size,
    })
}
