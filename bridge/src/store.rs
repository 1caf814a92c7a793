//! The bridge's own persistent store (SQLite, WAL): which envelope became
//! which event in which room, the first post of each advisory (for
//! revisions), withheld messages and release requests, parked messages of
//! rooms that keep failing, and open indicator digests.
//!
//! Messages kept for later (withheld, parked, digest items) are stored as
//! the sealed envelope received from the bus, never as plaintext, and are
//! opened again with the bridge's key when they are posted.
//!
//! `varde-bridge release` writes a request here and the running bridge
//! (which owns the Matrix device and its crypto store) carries it out, so
//! two processes never drive one Matrix device.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
#[error("bridge store {path}: {op}: {source}")]
pub struct StoreError {
    path: PathBuf,
    op: &'static str,
    #[source]
    source: rusqlite::Error,
}

type Result<T> = std::result::Result<T, StoreError>;

/// A status column's text that no version of the bridge writes.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a known status")]
pub struct UnknownStatus(pub String);

/// An enum for a status column of the store. The text in SQLite is
/// `as_str()`, exactly what the bridge wrote before the enums, so existing
/// stores read and match the same.
macro_rules! status_column {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownStatus(s.to_string())),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
    };
}

status_column! {
    /// Where a withheld message stands (`withheld.status`).
    WithheldStatus {
        /// Kept out of the room; `varde-bridge release` may still post it.
        Withheld = "withheld",
        /// Posted into the room by a release since.
        Released = "released",
    }
}

status_column! {
    /// Where a `varde-bridge release` request stands (`releases.state`).
    ReleaseState {
        /// Waiting for the running bridge to carry it out.
        Pending = "pending",
        Posted = "posted",
        /// The room still does not comply, or the request cannot be done.
        Refused = "refused",
        /// The store could not be read; done with, not retried.
        Failed = "failed",
    }
}

status_column! {
    /// Whether an indicator digest still collects (`digests.state`).
    DigestState {
        Open = "open",
        Posted = "posted",
    }
}

status_column! {
    /// Whether an incident is going on (`incidents.state`).
    IncidentState {
        Open = "open",
        Closed = "closed",
    }
}

/// What the bridge does at most once per key (an envelope, digest or event
/// id) and room: each is a row of the `posts` table, and the Matrix
/// transaction id of a send is derived from it (`matrix::txn_id`). The
/// names are stored, so they never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The post of a message, a digest or a shared chat.
    Post,
    /// The file sent with a rendered post (a digest's CSV, an oversized
    /// post's full text).
    PostFile,
    /// A room's indicator digest.
    Digest,
    /// The digest's CSV of every value.
    DigestFile,
    /// A shared chat's attachment.
    File,
    /// An advisory revision's edit of the room's first post of it.
    Edit,
    /// An advisory revision's note in the first post's thread.
    Thread,
    /// The notice posted instead of withheld messages.
    Withheld,
    /// A redaction of a shared message.
    Redact,
    /// The room side's answer to a member's command.
    Answer,
    /// A member's event the room side has handled.
    Handled,
    /// An incident room's pinned opening summary.
    Pin,
    /// An incident room's closing summary.
    Summary,
    /// An incident note, taken once whatever the rooms.
    Note,
    /// The report room's line on an opened incident.
    Opened,
    /// The report room's line on a closed incident.
    Closed,
    /// The envelope is finished for the room.
    Done,
}

impl Part {
    /// The part for the file that goes with a rendered post or digest.
    pub const fn file(self) -> Part {
        match self {
            Part::Digest => Part::DigestFile,
            _ => Part::PostFile,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Part::Post => "post",
            Part::PostFile => "post-file",
            Part::Digest => "digest",
            Part::DigestFile => "digest-file",
            Part::File => "file",
            Part::Edit => "edit",
            Part::Thread => "thread",
            Part::Withheld => "withheld",
            Part::Redact => "redact",
            Part::Answer => "answer",
            Part::Handled => "handled",
            Part::Pin => "pin",
            Part::Summary => "summary",
            Part::Note => "note",
            Part::Opened => "opened",
            Part::Closed => "closed",
            Part::Done => "done",
        }
    }
}

/// A part recorded in the `posts` table: done, with the event it became
/// when it was sent (none when it was done without a post).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub event_id: Option<String>,
}

/// A sealed envelope as it came off the bus.
#[derive(Clone, Debug)]
pub struct StoredEnvelope {
    pub envelope_id: Uuid,
    pub subject: String,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Withheld {
    pub envelope_id: Uuid,
    pub room_id: String,
    pub reason: String,
    pub detail: String,
    pub label: String,
    pub kind: String,
    pub at_ms: i64,
    pub status: WithheldStatus,
    pub envelope: StoredEnvelope,
}

#[derive(Clone, Debug)]
pub struct ReleaseRequest {
    pub id: i64,
    pub envelope_id: Uuid,
    pub room_id: String,
    pub state: ReleaseState,
    pub detail: Option<String>,
    pub event_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Parked {
    pub seq: i64,
    pub envelope: StoredEnvelope,
}

#[derive(Clone, Debug)]
pub struct DigestRow {
    pub id: Uuid,
    pub room_id: String,
    pub opened_ms: i64,
    pub due_ms: i64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS posts (
    key TEXT NOT NULL,
    room_id TEXT NOT NULL,
    part TEXT NOT NULL,
    event_id TEXT,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (key, room_id, part)
);
CREATE TABLE IF NOT EXISTS advisories (
    room_id TEXT NOT NULL,
    advisory_id TEXT NOT NULL,
    first_event_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (room_id, advisory_id)
);
CREATE TABLE IF NOT EXISTS withheld (
    envelope_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    envelope BLOB NOT NULL,
    at_ms INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'withheld',
    PRIMARY KEY (envelope_id, room_id)
);
CREATE TABLE IF NOT EXISTS releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    detail TEXT,
    event_id TEXT
);
CREATE TABLE IF NOT EXISTS parked (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id TEXT NOT NULL,
    envelope_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    envelope BLOB NOT NULL,
    at_ms INTEGER NOT NULL,
    UNIQUE (room_id, envelope_id)
);
CREATE TABLE IF NOT EXISTS digests (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    opened_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'open'
);
CREATE TABLE IF NOT EXISTS digest_items (
    room_id TEXT NOT NULL,
    envelope_id TEXT NOT NULL,
    digest_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    envelope BLOB NOT NULL,
    indicators INTEGER NOT NULL,
    PRIMARY KEY (room_id, envelope_id)
);
CREATE INDEX IF NOT EXISTS digest_items_by_digest ON digest_items (digest_id);
CREATE TABLE IF NOT EXISTS events (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    envelope_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    audience TEXT NOT NULL,
    sender_org TEXT NOT NULL,
    origin INTEGER NOT NULL,
    PRIMARY KEY (room_id, event_id)
);
CREATE INDEX IF NOT EXISTS events_by_envelope ON events (envelope_id, room_id);
CREATE TABLE IF NOT EXISTS acks (
    of_envelope TEXT NOT NULL,
    user_id TEXT NOT NULL,
    ack_envelope TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (of_envelope, user_id)
);
CREATE TABLE IF NOT EXISTS seen_values (
    value_hash TEXT NOT NULL,
    envelope_id TEXT NOT NULL,
    PRIMARY KEY (value_hash, envelope_id)
);
CREATE TABLE IF NOT EXISTS seen_envelopes (
    envelope_id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    envelope BLOB NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
    incident_id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    participants TEXT NOT NULL,
    opened_ms INTEGER NOT NULL,
    room_id TEXT,
    notes INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'open',
    subject TEXT NOT NULL,
    envelope BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Columns added after the first release, for stores made before them.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_author = conn
        .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'author'")?
        .exists([])?;
    if !has_author {
        // The Matrix user whose words an event carries (chat only): only
        // that user may edit or redact them.
        conn.execute_batch("ALTER TABLE events ADD COLUMN author TEXT")?;
    }
    Ok(())
}

/// The store's digest key, made on first use. A store that had an index of
/// unkeyed digests drops it: those digests can be reversed, and the keyed
/// ones would never match them.
fn load_secret(conn: &Connection) -> rusqlite::Result<[u8; 32]> {
    let stored: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(hex_key) = stored
        && let Ok(bytes) = hex::decode(hex_key.trim())
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
    conn.execute_batch("DELETE FROM seen_values")?;
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('secret', ?1)",
        params![hex::encode(key)],
    )?;
    Ok(key)
}

/// The `advisories` table's key: the sender org and its advisory id (org
/// ids are slugs, so `/` cannot occur in them).
fn advisory_key(sender: &str, advisory_id: &str) -> String {
    format!("{sender}/{advisory_id}")
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The bridge's store; cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Key of the store's keyed digests (derived envelope ids, the `ioc`
    /// index): random, made on first open, never leaves the store.
    secret: [u8; 32],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed, 0600) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let err = |op, source| StoreError {
            path: path.to_path_buf(),
            op,
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                err(
                    "creating its directory",
                    rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
                )
            })?;
        }
        let conn = Connection::open(path).map_err(|e| err("opening", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Envelope ids, room ids and sealed envelopes: not secret like a
            // key, but nobody else's business either.
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        // WAL: the CLI (`release`, `status`) reads and writes while the
        // bridge runs. NORMAL sync survives a killed process.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err("setting WAL mode", e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err("setting synchronous", e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| err("setting the busy timeout", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| err("creating tables", e))?;
        migrate(&conn).map_err(|e| err("upgrading tables", e))?;
        let secret = load_secret(&conn).map_err(|e| err("reading the store's secret", e))?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            secret,
        })
    }

    /// A keyed hash of `parts` (see `hash::keyed`).
    pub fn digest(&self, parts: &[&str]) -> [u8; 32] {
        crate::hash::keyed(&self.secret, parts)
    }

    /// A UUID derived from `parts` and the store's secret, for ids that
    /// must come out the same when the same thing is done twice (a Matrix
    /// event seen again after a restart, a second ✅ on the same alert) but
    /// that no one else can compute ahead of us.
    pub fn derived_id(&self, parts: &[&str]) -> Uuid {
        let d = self.digest(parts);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        uuid::Builder::from_custom_bytes(b).into_uuid()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn with<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| StoreError {
            path: self.path.clone(),
            op,
            source,
        })
    }

    /// What is recorded for `part` of `key` (an envelope or digest id) in
    /// `room`; `None` when the part is not done.
    pub fn part(&self, key: &str, room: &str, part: Part) -> Result<Option<Recorded>> {
        self.with("reading a post", |c| {
            c.query_row(
                "SELECT event_id FROM posts WHERE key = ?1 AND room_id = ?2 AND part = ?3",
                params![key, room, part.name()],
                |r| {
                    Ok(Recorded {
                        event_id: r.get(0)?,
                    })
                },
            )
            .optional()
        })
    }

    pub fn record(&self, key: &str, room: &str, part: Part, event_id: Option<&str>) -> Result<()> {
        self.with("recording a post", |c| {
            c.execute(
                "INSERT OR REPLACE INTO posts (key, room_id, part, event_id, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, room, part.name(), event_id, now_ms()],
            )
            .map(|_| ())
        })
    }

    /// Whether the envelope is finished for the room (posted, withheld
    /// with a notice, or taken into a digest).
    pub fn is_done(&self, envelope: Uuid, room: &str) -> Result<bool> {
        Ok(self
            .part(&envelope.to_string(), room, Part::Done)?
            .is_some())
    }

    pub fn mark_done(&self, envelope: Uuid, room: &str, event_id: Option<&str>) -> Result<()> {
        self.record(&envelope.to_string(), room, Part::Done, event_id)
    }

    /// Records a sent `part` and marks the envelope done, in one commit.
    pub fn record_done(
        &self,
        envelope: Uuid,
        room: &str,
        part: Part,
        event_id: &str,
    ) -> Result<()> {
        let key = envelope.to_string();
        self.with("recording a post", |c| {
            let tx = c.unchecked_transaction()?;
            for p in [part, Part::Done] {
                tx.execute(
                    "INSERT OR REPLACE INTO posts (key, room_id, part, event_id, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key, room, p.name(), event_id, now_ms()],
                )?;
            }
            tx.commit()
        })
    }

    /// The first post and latest revision of `sender`'s advisory in `room`.
    /// Advisory ids are the sender's own names: the same id from another
    /// org is another advisory, never a revision of this one (else any
    /// member could edit, or with a huge revision suppress, the CSIRT's).
    pub fn advisory(
        &self,
        room: &str,
        sender: &str,
        advisory_id: &str,
    ) -> Result<Option<(String, u32)>> {
        let key = advisory_key(sender, advisory_id);
        self.with("reading an advisory", |c| {
            c.query_row(
                "SELECT first_event_id, revision FROM advisories WHERE room_id = ?1 AND advisory_id = ?2",
                params![room, key],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
            .map(|o| o.map(|(e, rev)| (e, u32::try_from(rev).unwrap_or(0))))
        })
    }

    pub fn set_advisory(
        &self,
        room: &str,
        sender: &str,
        advisory_id: &str,
        first_event: &str,
        revision: u32,
    ) -> Result<()> {
        let advisory_id = advisory_key(sender, advisory_id);
        self.with("recording an advisory", |c| {
            c.execute(
                "INSERT INTO advisories (room_id, advisory_id, first_event_id, revision) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (room_id, advisory_id) DO UPDATE SET revision = MAX(revision, excluded.revision)",
                params![room, advisory_id, first_event, revision],
            )
            .map(|_| ())
        })
    }

    /// Records a withheld message (first record wins).
    pub fn withhold(&self, w: &Withheld) -> Result<()> {
        self.with("recording a withheld message", |c| {
            c.execute(
                "INSERT OR IGNORE INTO withheld (envelope_id, room_id, reason, detail, label, kind, subject, envelope, at_ms, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    w.envelope_id.to_string(),
                    w.room_id,
                    w.reason,
                    w.detail,
                    w.label,
                    w.kind,
                    w.envelope.subject,
                    w.envelope.bytes,
                    w.at_ms,
                    WithheldStatus::Withheld
                ],
            )
            .map(|_| ())
        })
    }

    fn withheld_rows(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Withheld>> {
        let sql = format!(
            "SELECT envelope_id, room_id, reason, detail, label, kind, subject, envelope, at_ms, status FROM withheld {filter} ORDER BY at_ms"
        );
        self.with("reading withheld messages", |c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(args, |r| {
                let id: String = r.get(0)?;
                let envelope_id = Uuid::parse_str(&id).unwrap_or_default();
                Ok(Withheld {
                    envelope_id,
                    room_id: r.get(1)?,
                    reason: r.get(2)?,
                    detail: r.get(3)?,
                    label: r.get(4)?,
                    kind: r.get(5)?,
                    at_ms: r.get(8)?,
                    // Not released unless the store says so: a release
                    // can then still be asked for.
                    status: r
                        .get::<_, String>(9)?
                        .parse()
                        .unwrap_or(WithheldStatus::Withheld),
                    envelope: StoredEnvelope {
                        envelope_id,
                        subject: r.get(6)?,
                        bytes: r.get(7)?,
                    },
                })
            })?;
            rows.collect()
        })
    }

    pub fn withheld(&self, envelope: Uuid, room: &str) -> Result<Option<Withheld>> {
        let id = envelope.to_string();
        Ok(self
            .withheld_rows("WHERE envelope_id = ?1 AND room_id = ?2", &[&id, &room])?
            .into_iter()
            .next())
    }

    /// Rooms in which an envelope was withheld.
    pub fn withheld_rooms(&self, envelope: Uuid) -> Result<Vec<String>> {
        let id = envelope.to_string();
        Ok(self
            .withheld_rows("WHERE envelope_id = ?1", &[&id])?
            .into_iter()
            .map(|w| w.room_id)
            .collect())
    }

    pub fn all_withheld(&self) -> Result<Vec<Withheld>> {
        self.withheld_rows("", &[])
    }

    pub fn set_withheld_status(
        &self,
        envelope: Uuid,
        room: &str,
        status: WithheldStatus,
    ) -> Result<()> {
        self.with("updating a withheld message", |c| {
            c.execute(
                "UPDATE withheld SET status = ?3 WHERE envelope_id = ?1 AND room_id = ?2",
                params![envelope.to_string(), room, status],
            )
            .map(|_| ())
        })
    }

    /// Queues a release for the running bridge; returns the request id.
    pub fn request_release(&self, envelope: Uuid, room: &str) -> Result<i64> {
        self.with("requesting a release", |c| {
            c.execute(
                "INSERT INTO releases (envelope_id, room_id, requested_ms) VALUES (?1, ?2, ?3)",
                params![envelope.to_string(), room, now_ms()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn release_rows(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ReleaseRequest>> {
        let sql = format!(
            "SELECT id, envelope_id, room_id, state, detail, event_id FROM releases {filter} ORDER BY id"
        );
        self.with("reading release requests", |c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(args, |r| {
                let id: String = r.get(1)?;
                Ok(ReleaseRequest {
                    id: r.get(0)?,
                    envelope_id: Uuid::parse_str(&id).unwrap_or_default(),
                    room_id: r.get(2)?,
                    // An unknown state is not an outcome: the CLI waits on.
                    state: r
                        .get::<_, String>(3)?
                        .parse()
                        .unwrap_or(ReleaseState::Pending),
                    detail: r.get(4)?,
                    event_id: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn pending_releases(&self) -> Result<Vec<ReleaseRequest>> {
        self.release_rows("WHERE state = ?1", &[&ReleaseState::Pending])
    }

    pub fn release(&self, id: i64) -> Result<Option<ReleaseRequest>> {
        Ok(self
            .release_rows("WHERE id = ?1", &[&id])?
            .into_iter()
            .next())
    }

    pub fn finish_release(
        &self,
        id: i64,
        state: ReleaseState,
        detail: Option<&str>,
        event_id: Option<&str>,
    ) -> Result<()> {
        self.with("finishing a release", |c| {
            c.execute(
                "UPDATE releases SET state = ?2, detail = ?3, event_id = ?4 WHERE id = ?1",
                params![id, state, detail, event_id],
            )
            .map(|_| ())
        })
    }

    /// Moves a message of a failing room into the room's backlog.
    pub fn park(&self, room: &str, e: &StoredEnvelope) -> Result<()> {
        self.with("parking a message", |c| {
            c.execute(
                "INSERT OR IGNORE INTO parked (room_id, envelope_id, subject, envelope, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![room, e.envelope_id.to_string(), e.subject, e.bytes, now_ms()],
            )
            .map(|_| ())
        })
    }

    pub fn parked_count(&self, room: &str) -> Result<u64> {
        self.with("counting parked messages", |c| {
            c.query_row(
                "SELECT COUNT(*) FROM parked WHERE room_id = ?1",
                params![room],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
        })
    }

    pub fn oldest_parked(&self, room: &str) -> Result<Option<Parked>> {
        self.with("reading a parked message", |c| {
            c.query_row(
                "SELECT seq, envelope_id, subject, envelope FROM parked WHERE room_id = ?1 ORDER BY seq LIMIT 1",
                params![room],
                |r| {
                    let id: String = r.get(1)?;
                    Ok(Parked {
                        seq: r.get(0)?,
                        envelope: StoredEnvelope {
                            envelope_id: Uuid::parse_str(&id).unwrap_or_default(),
                            subject: r.get(2)?,
                            bytes: r.get(3)?,
                        },
                    })
                },
            )
            .optional()
        })
    }

    pub fn unpark(&self, seq: i64) -> Result<()> {
        self.with("removing a parked message", |c| {
            c.execute("DELETE FROM parked WHERE seq = ?1", params![seq])
                .map(|_| ())
        })
    }

    /// The room's open digest, if any.
    pub fn open_digest(&self, room: &str) -> Result<Option<DigestRow>> {
        Ok(self
            .digest_rows(
                "WHERE state = ?1 AND room_id = ?2",
                &[&DigestState::Open, &room],
            )?
            .into_iter()
            .next())
    }

    fn digest_rows(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<DigestRow>> {
        let sql = format!(
            "SELECT id, room_id, opened_ms, due_ms FROM digests {filter} ORDER BY opened_ms"
        );
        self.with("reading digests", |c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(args, |r| {
                let id: String = r.get(0)?;
                Ok(DigestRow {
                    id: Uuid::parse_str(&id).unwrap_or_default(),
                    room_id: r.get(1)?,
                    opened_ms: r.get(2)?,
                    due_ms: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn create_digest(&self, d: &DigestRow) -> Result<()> {
        self.with("opening a digest", |c| {
            c.execute(
                "INSERT OR IGNORE INTO digests (id, room_id, opened_ms, due_ms) VALUES (?1, ?2, ?3, ?4)",
                params![d.id.to_string(), d.room_id, d.opened_ms, d.due_ms],
            )
            .map(|_| ())
        })
    }

    /// Adds an indicator batch to a digest; a batch already in one of the
    /// room's digests is left where it is. Returns whether it was added.
    pub fn digest_add(
        &self,
        room: &str,
        digest: Uuid,
        e: &StoredEnvelope,
        indicators: usize,
    ) -> Result<bool> {
        self.with("adding to a digest", |c| {
            c.execute(
                "INSERT OR IGNORE INTO digest_items (room_id, envelope_id, digest_id, subject, envelope, indicators) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    room,
                    e.envelope_id.to_string(),
                    digest.to_string(),
                    e.subject,
                    e.bytes,
                    i64::try_from(indicators).unwrap_or(i64::MAX)
                ],
            )
            .map(|n| n > 0)
        })
    }

    pub fn digest_items(&self, digest: Uuid) -> Result<Vec<StoredEnvelope>> {
        self.with("reading a digest", |c| {
            let mut st = c.prepare(
                "SELECT envelope_id, subject, envelope FROM digest_items WHERE digest_id = ?1 ORDER BY rowid",
            )?;
            let rows = st.query_map(params![digest.to_string()], |r| {
                let id: String = r.get(0)?;
                Ok(StoredEnvelope {
                    envelope_id: Uuid::parse_str(&id).unwrap_or_default(),
                    subject: r.get(1)?,
                    bytes: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Closes a digest once posted: its items no longer need their
    /// envelopes.
    pub fn close_digest(&self, digest: Uuid) -> Result<()> {
        self.with("closing a digest", |c| {
            let id = digest.to_string();
            c.execute(
                "UPDATE digests SET state = ?2 WHERE id = ?1",
                params![id, DigestState::Posted],
            )?;
            c.execute(
                "UPDATE digest_items SET envelope = x'' WHERE digest_id = ?1",
                params![id],
            )
            .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(n: u8) -> StoredEnvelope {
        StoredEnvelope {
            envelope_id: Uuid::now_v7(),
            subject: format!("varde.v1.kcsirt.org.gjovik.advisory.{n}"),
            bytes: vec![n; 10],
        }
    }

    #[test]
    fn survives_reopen() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s/bridge.sqlite3");
        let e = env(1);
        {
            let s = Store::open(&path).unwrap();
            assert!(!s.is_done(e.envelope_id, "!r").unwrap());
            s.record(&e.envelope_id.to_string(), "!r", Part::Post, Some("$1"))
                .unwrap();
            s.mark_done(e.envelope_id, "!r", Some("$1")).unwrap();
            s.set_advisory("!r", "kcsirt", "A-1", "$1", 1).unwrap();
            s.set_advisory("!r", "kcsirt", "A-1", "$ignored", 3)
                .unwrap();
            s.park("!q", &e).unwrap();
            s.park("!q", &e).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert!(s.is_done(e.envelope_id, "!r").unwrap());
        assert!(!s.is_done(e.envelope_id, "!other").unwrap());
        assert_eq!(
            s.advisory("!r", "kcsirt", "A-1").unwrap(),
            Some(("$1".into(), 3))
        );
        // Another sender's advisory of the same id is another advisory.
        assert_eq!(s.advisory("!r", "gjovik", "A-1").unwrap(), None);
        // The digest key survives a restart: derived ids stay the same.
        let again = Store::open(&path).unwrap();
        assert_eq!(s.derived_id(&["ack", "x"]), again.derived_id(&["ack", "x"]));
        assert_eq!(s.parked_count("!q").unwrap(), 1);
        let p = s.oldest_parked("!q").unwrap().unwrap();
        assert_eq!(p.envelope.bytes, vec![1; 10]);
        s.unpark(p.seq).unwrap();
        assert_eq!(s.parked_count("!q").unwrap(), 0);
    }

    #[test]
    fn withheld_and_releases() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
        let e = env(2);
        let w = Withheld {
            envelope_id: e.envelope_id,
            room_id: "!r".into(),
            reason: "not_encrypted".into(),
            detail: "x".into(),
            label: "TLP:AMBER".into(),
            kind: "advisory".into(),
            at_ms: now_ms(),
            status: WithheldStatus::Withheld,
            envelope: e.clone(),
        };
        s.withhold(&w).unwrap();
        s.withhold(&w).unwrap();
        assert_eq!(s.all_withheld().unwrap().len(), 1);
        let id = s.request_release(e.envelope_id, "!r").unwrap();
        assert_eq!(s.pending_releases().unwrap().len(), 1);
        s.finish_release(id, ReleaseState::Posted, None, Some("$e"))
            .unwrap();
        assert!(s.pending_releases().unwrap().is_empty());
        assert_eq!(s.release(id).unwrap().unwrap().state, ReleaseState::Posted);
    }

    #[test]
    fn parts() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
        assert_eq!(s.part("k", "!r", Part::Post).unwrap(), None);
        s.record("k", "!r", Part::Post, Some("$1")).unwrap();
        s.record("k", "!r", Part::Note, None).unwrap();
        assert_eq!(
            s.part("k", "!r", Part::Post).unwrap(),
            Some(Recorded {
                event_id: Some("$1".into())
            })
        );
        assert_eq!(
            s.part("k", "!r", Part::Note).unwrap(),
            Some(Recorded { event_id: None })
        );
    }

    #[test]
    fn status_texts_stay_as_stored() {
        // Stores written before the enums hold exactly these texts, and the
        // schema's defaults are among them.
        let texts = [
            (WithheldStatus::Withheld.as_str(), "withheld"),
            (WithheldStatus::Released.as_str(), "released"),
            (ReleaseState::Pending.as_str(), "pending"),
            (ReleaseState::Posted.as_str(), "posted"),
            (ReleaseState::Refused.as_str(), "refused"),
            (ReleaseState::Failed.as_str(), "failed"),
            (DigestState::Open.as_str(), "open"),
            (DigestState::Posted.as_str(), "posted"),
            (IncidentState::Open.as_str(), "open"),
            (IncidentState::Closed.as_str(), "closed"),
        ];
        for (got, want) in texts {
            assert_eq!(got, want);
        }
        assert_eq!(
            "released".parse::<WithheldStatus>().unwrap(),
            WithheldStatus::Released
        );
        assert!("Released".parse::<WithheldStatus>().is_err());

        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
        let e = env(5);
        s.withhold(&Withheld {
            envelope_id: e.envelope_id,
            room_id: "!r".into(),
            reason: "not_encrypted".into(),
            detail: "x".into(),
            label: "TLP:AMBER".into(),
            kind: "advisory".into(),
            at_ms: now_ms(),
            status: WithheldStatus::Withheld,
            envelope: e.clone(),
        })
        .unwrap();
        s.set_withheld_status(e.envelope_id, "!r", WithheldStatus::Released)
            .unwrap();
        let raw: String = s
            .with("test", |c| {
                c.query_row("SELECT status FROM withheld", [], |r| r.get(0))
            })
            .unwrap();
        assert_eq!(raw, "released");
        assert_eq!(
            s.withheld(e.envelope_id, "!r").unwrap().unwrap().status,
            WithheldStatus::Released
        );
        // The column default is what a new request reads as.
        let id = s.request_release(e.envelope_id, "!r").unwrap();
        assert_eq!(s.release(id).unwrap().unwrap().state, ReleaseState::Pending);
    }

    #[test]
    fn digests() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
        let row = DigestRow {
            id: Uuid::now_v7(),
            room_id: "!r".into(),
            opened_ms: 1,
            due_ms: 2,
        };
        s.create_digest(&row).unwrap();
        let (a, b) = (env(3), env(4));
        assert!(s.digest_add("!r", row.id, &a, 10).unwrap());
        assert!(!s.digest_add("!r", row.id, &a, 10).unwrap());
        assert!(s.digest_add("!r", row.id, &b, 10).unwrap());
        assert_eq!(s.open_digest("!r").unwrap().unwrap().id, row.id);
        assert_eq!(s.digest_items(row.id).unwrap().len(), 2);
        s.close_digest(row.id).unwrap();
        assert!(s.open_digest("!r").unwrap().is_none());
    }
}
