//! The `parked` table: the sealed backlog of a room that kept failing,
//! drained oldest first.

use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::{Result, Store, StoredEnvelope, now_ms};

#[derive(Clone, Debug)]
pub struct Parked {
    pub seq: i64,
    pub envelope: StoredEnvelope,
}

impl Store {
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
}
