//! The store's tables, their upgrades, and its secret.

use rusqlite::{Connection, OptionalExtension, params};

pub(super) const SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS campaigns (
    campaign TEXT PRIMARY KEY,
    about TEXT NOT NULL,
    title TEXT NOT NULL,
    deadline TEXT,
    closed INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS own_status (
    about TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
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
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
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
pub(super) fn load_secret(conn: &Connection) -> rusqlite::Result<[u8; 32]> {
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
