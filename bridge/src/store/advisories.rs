//! The `advisories` table: the room's first post of each advisory, by
//! sender org and advisory id, that later revisions edit.

use rusqlite::{OptionalExtension, params};

use super::{Result, Store};

/// The `advisories` table's key: the sender org and its advisory id (org
/// ids are slugs, so `/` cannot occur in them).
fn advisory_key(sender: &str, advisory_id: &str) -> String {
    format!("{sender}/{advisory_id}")
}

impl Store {
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

    /// The id of `sender`'s advisory whose first post in `room` is
    /// `event` (what a ✅ on that post is about).
    pub fn advisory_at(&self, room: &str, sender: &str, event: &str) -> Result<Option<String>> {
        let prefix = advisory_key(sender, "");
        self.with("reading an advisory by its post", |c| {
            c.query_row(
                "SELECT advisory_id FROM advisories WHERE room_id = ?1 AND first_event_id = ?2",
                params![room, event],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|o| o.and_then(|k| k.strip_prefix(&prefix).map(str::to_string)))
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
}
