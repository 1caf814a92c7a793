//! The `events` table: which Matrix event carries which envelope, both the
//! bridge's own posts and members' messages it shared.

use rusqlite::{OptionalExtension, params};
use uuid::Uuid;
use varde_schemas::{Audience, Header, Tlp};

use super::{Result, Store};

/// A Matrix event the bridge knows the envelope of.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub room_id: String,
    pub event_id: String,
    pub envelope_id: Uuid,
    pub kind: String,
    pub label: Tlp,
    pub audience: Audience,
    pub sender_org: String,
    /// A member's own message (shared from this room), not a bridge post.
    pub origin: bool,
    /// The Matrix user whose words the event carries (chat), if known.
    pub author: Option<String>,
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    let envelope: String = r.get(2)?;
    let label: String = r.get(4)?;
    let audience: String = r.get(5)?;
    Ok(EventRow {
        room_id: r.get(0)?,
        event_id: r.get(1)?,
        envelope_id: Uuid::parse_str(&envelope).unwrap_or_default(),
        kind: r.get(3)?,
        label: label.parse().unwrap_or(Tlp::Red),
        audience: serde_json::from_str(&audience).unwrap_or_default(),
        sender_org: r.get(6)?,
        origin: r.get::<_, i64>(7)? != 0,
        author: r.get(8)?,
    })
}

const EVENT_COLUMNS: &str =
    "room_id, event_id, envelope_id, kind, label, audience, sender_org, origin, author";

impl Store {
    /// Remembers that `event_id` in `room` carries the envelope `header`.
    pub fn record_event(
        &self,
        room: &str,
        event_id: &str,
        header: &Header,
        origin: bool,
    ) -> Result<()> {
        self.record_event_by(room, event_id, header, origin, None)
    }

    /// `record_event` for a chat event whose words are `author`'s.
    pub fn record_event_by(
        &self,
        room: &str,
        event_id: &str,
        header: &Header,
        origin: bool,
        author: Option<&str>,
    ) -> Result<()> {
        let audience = serde_json::to_string(&header.audience).unwrap_or_default();
        self.with("recording an event", |c| {
            c.execute(
                "INSERT OR REPLACE INTO events (room_id, event_id, envelope_id, kind, label, audience, sender_org, origin, author) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    room,
                    event_id,
                    header.id.to_string(),
                    header.kind.as_str(),
                    header.label.as_str(),
                    audience,
                    header.sender.org.as_str(),
                    i64::from(origin),
                    author
                ],
            )
            .map(|_| ())
        })
    }

    pub fn event(&self, room: &str, event_id: &str) -> Result<Option<EventRow>> {
        self.with("reading an event", |c| {
            c.query_row(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE room_id = ?1 AND event_id = ?2"),
                params![room, event_id],
                event_row,
            )
            .optional()
        })
    }

    /// The event carrying `envelope` in `room`, if any.
    pub fn event_of(&self, envelope: Uuid, room: &str) -> Result<Option<EventRow>> {
        self.with("reading an event", |c| {
            c.query_row(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE envelope_id = ?1 AND room_id = ?2 ORDER BY origin DESC LIMIT 1"
                ),
                params![envelope.to_string(), room],
                event_row,
            )
            .optional()
        })
    }
}
