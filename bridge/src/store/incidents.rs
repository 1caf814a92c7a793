//! The `incidents` table: incidents this bridge takes part in, with their
//! rooms; the opening envelope stays sealed (titles are sensitive).

use rusqlite::{OptionalExtension, params};
use uuid::Uuid;
use varde_schemas::Tlp;

use super::{Result, Store, StoredEnvelope};

status_column! {
    /// Whether an incident is going on (`incidents.state`).
    IncidentState {
        Open = "open",
        Closed = "closed",
    }
}

/// An incident this bridge takes part in (its title stays sealed).
#[derive(Clone, Debug)]
pub struct IncidentRow {
    pub incident_id: Uuid,
    pub label: Tlp,
    pub participants: Vec<String>,
    pub opened_ms: i64,
    pub room_id: Option<String>,
    pub notes: i64,
    pub state: IncidentState,
    pub envelope: StoredEnvelope,
}

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRow> {
    let id: String = r.get(0)?;
    let label: String = r.get(1)?;
    let participants: String = r.get(2)?;
    Ok(IncidentRow {
        incident_id: Uuid::parse_str(&id).unwrap_or_default(),
        label: label.parse().unwrap_or(Tlp::Red),
        participants: serde_json::from_str(&participants).unwrap_or_default(),
        opened_ms: r.get(3)?,
        room_id: r.get(4)?,
        notes: r.get(5)?,
        // Only a known open incident takes notes, chat and a close.
        state: r
            .get::<_, String>(6)?
            .parse()
            .unwrap_or(IncidentState::Closed),
        envelope: StoredEnvelope {
            envelope_id: Uuid::parse_str(&id).unwrap_or_default(),
            subject: r.get(7)?,
            bytes: r.get(8)?,
        },
    })
}

const INCIDENT_COLUMNS: &str =
    "incident_id, label, participants, opened_ms, room_id, notes, state, subject, envelope";

impl Store {
    /// Records an incident (its opening envelope, sealed); false when it
    /// was known already.
    pub fn add_incident(
        &self,
        id: Uuid,
        label: Tlp,
        participants: &[String],
        opened_ms: i64,
        envelope: &StoredEnvelope,
    ) -> Result<bool> {
        let parts = serde_json::to_string(participants).unwrap_or_default();
        self.with("recording an incident", |c| {
            c.execute(
                "INSERT OR IGNORE INTO incidents (incident_id, label, participants, opened_ms, subject, envelope) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id.to_string(),
                    label.as_str(),
                    parts,
                    opened_ms,
                    envelope.subject,
                    envelope.bytes
                ],
            )
            .map(|n| n == 1)
        })
    }

    pub fn incident(&self, id: Uuid) -> Result<Option<IncidentRow>> {
        self.with("reading an incident", |c| {
            c.query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE incident_id = ?1"),
                params![id.to_string()],
                incident_row,
            )
            .optional()
        })
    }

    pub fn incident_in_room(&self, room: &str) -> Result<Option<IncidentRow>> {
        self.with("reading an incident", |c| {
            c.query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE room_id = ?1"),
                params![room],
                incident_row,
            )
            .optional()
        })
    }

    pub fn set_incident_room(&self, id: Uuid, room: &str) -> Result<()> {
        self.with("recording an incident room", |c| {
            c.execute(
                "UPDATE incidents SET room_id = ?2 WHERE incident_id = ?1",
                params![id.to_string(), room],
            )
            .map(|_| ())
        })
    }

    /// Counts a note once per note envelope (the `posts` table remembers
    /// which were counted).
    pub fn count_note(&self, id: Uuid) -> Result<()> {
        self.with("counting a note", |c| {
            c.execute(
                "UPDATE incidents SET notes = notes + 1 WHERE incident_id = ?1",
                params![id.to_string()],
            )
            .map(|_| ())
        })
    }

    pub fn close_incident(&self, id: Uuid) -> Result<()> {
        self.with("closing an incident", |c| {
            c.execute(
                "UPDATE incidents SET state = ?2 WHERE incident_id = ?1",
                params![id.to_string(), IncidentState::Closed],
            )
            .map(|_| ())
        })
    }
}
