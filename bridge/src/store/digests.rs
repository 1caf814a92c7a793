//! The `digests` and `digest_items` tables: a room's open indicator digest
//! and the sealed batches folded into it.

use rusqlite::params;
use uuid::Uuid;

use super::{Result, Store, StoredEnvelope};

status_column! {
    /// Whether an indicator digest still collects (`digests.state`).
    DigestState {
        Open = "open",
        Posted = "posted",
    }
}

#[derive(Clone, Debug)]
pub struct DigestRow {
    pub id: Uuid,
    pub room_id: String,
    pub opened_ms: i64,
    pub due_ms: i64,
}

impl Store {
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
