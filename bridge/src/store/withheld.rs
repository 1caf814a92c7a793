//! The `withheld` table: messages kept out of a room (as sealed envelopes),
//! with why, until a release posts them.

use rusqlite::params;
use uuid::Uuid;

use super::{Result, Store, StoredEnvelope};

status_column! {
    /// Where a withheld message stands (`withheld.status`).
    WithheldStatus {
        /// Kept out of the room; `varde-bridge release` may still post it.
        Withheld = "withheld",
        /// Posted into the room by a release since.
        Released = "released",
    }
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

impl Store {
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
}
