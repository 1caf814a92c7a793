//! The `releases` table: `varde-bridge release` requests, written by the
//! CLI and carried out by the running bridge, which owns the Matrix device.

use rusqlite::params;
use uuid::Uuid;

use super::{Result, Store, now_ms};

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

#[derive(Clone, Debug)]
pub struct ReleaseRequest {
    pub id: i64,
    pub envelope_id: Uuid,
    pub room_id: String,
    pub state: ReleaseState,
    pub detail: Option<String>,
    pub event_id: Option<String>,
}

impl Store {
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
}
