//! The room side of the bridge's store: which Matrix event carries which
//! envelope (both the bridge's own posts and members' messages it shared),
//! acknowledgements already sent, an index of indicator values seen on the
//! bus (for `!varde ioc`), and incidents with their rooms.
//!
//! As everywhere in the store, message content stays sealed: the value
//! index holds SHA-256 digests of normalised values and points at sealed
//! envelopes, which `ioc` opens again with the bridge's key.

use rusqlite::{OptionalExtension, params};
use uuid::Uuid;
use varde_schemas::payload::IndicatorType;
use varde_schemas::{Audience, Header, Tlp};

use crate::store::{IncidentState, Store, StoreError, StoredEnvelope, now_ms};

type Result<T> = std::result::Result<T, StoreError>;

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
    /// The keyed digest under which a value is indexed.
    fn value_hash(&self, kind: IndicatorType, value: &str) -> String {
        hex::encode(self.digest(&[kind.as_str(), value]))
    }

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

    /// Claims the one acknowledgement of `of` by `user`; false when one was
    /// sent already.
    pub fn claim_ack(&self, of: Uuid, user: &str, ack: Uuid) -> Result<bool> {
        self.with("recording an ack", |c| {
            c.execute(
                "INSERT OR IGNORE INTO acks (of_envelope, user_id, ack_envelope, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![of.to_string(), user, ack.to_string(), now_ms()],
            )
            .map(|n| n == 1)
        })
    }

    /// Gives up a claim whose ack could not be published.
    pub fn release_ack(&self, of: Uuid, user: &str) -> Result<()> {
        self.with("removing an ack", |c| {
            c.execute(
                "DELETE FROM acks WHERE of_envelope = ?1 AND user_id = ?2",
                params![of.to_string(), user],
            )
            .map(|_| ())
        })
    }

    /// Indexes the values of a message (digests only) and keeps its sealed
    /// envelope for `ioc`.
    pub fn index_values(
        &self,
        envelope: &StoredEnvelope,
        values: &[(IndicatorType, String)],
    ) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        self.with("indexing values", |c| {
            let tx = c.unchecked_transaction()?;
            let id = envelope.envelope_id.to_string();
            tx.execute(
                "INSERT OR IGNORE INTO seen_envelopes (envelope_id, subject, envelope, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![id, envelope.subject, envelope.bytes, now_ms()],
            )?;
            {
                let mut st = tx.prepare(
                    "INSERT OR IGNORE INTO seen_values (value_hash, envelope_id) VALUES (?1, ?2)",
                )?;
                for (kind, value) in values {
                    st.execute(params![self.value_hash(*kind, value), id])?;
                }
            }
            tx.commit()
        })
    }

    /// Sealed envelopes that mention the value, newest first.
    pub fn seen(
        &self,
        kind: IndicatorType,
        value: &str,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>> {
        self.with("looking up a value", |c| {
            let mut st = c.prepare(
                "SELECT e.envelope_id, e.subject, e.envelope FROM seen_values v JOIN seen_envelopes e ON e.envelope_id = v.envelope_id WHERE v.value_hash = ?1 ORDER BY e.at_ms DESC LIMIT ?2",
            )?;
            let rows = st.query_map(
                params![self.value_hash(kind, value), i64::try_from(limit).unwrap_or(50)],
                |r| {
                    let id: String = r.get(0)?;
                    Ok(StoredEnvelope {
                        envelope_id: Uuid::parse_str(&id).unwrap_or_default(),
                        subject: r.get(1)?,
                        bytes: r.get(2)?,
                    })
                },
            )?;
            rows.collect()
        })
    }

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

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with("reading meta", |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Sets `key` unless it is set; returns the value in force.
    pub fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        self.with("writing meta", |c| {
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use varde_schemas::{KeyId, Kind, OrgId, Sender};

    #[test]
    fn events_acks_values() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("b.sqlite3")).unwrap();
        let h = Header {
            v: 1,
            id: Uuid::now_v7(),
            kind: Kind::Alert,
            label: Tlp::Amber,
            sender: Sender {
                org: OrgId::new("kcsirt").unwrap(),
                key: KeyId([1; 8]),
            },
            audience: Audience::orgs([OrgId::new("gjovik").unwrap()]),
            created: jiff::Timestamp::now(),
            expires: None,
        };
        s.record_event("!r", "$e", &h, false).unwrap();
        let row = s.event("!r", "$e").unwrap().unwrap();
        assert_eq!(row.envelope_id, h.id);
        assert_eq!(row.label, Tlp::Amber);
        assert_eq!(row.audience, h.audience);
        assert_eq!(s.event_of(h.id, "!r").unwrap().unwrap().event_id, "$e");
        assert!(s.event_of(h.id, "!other").unwrap().is_none());
        let ack = Uuid::now_v7();
        assert!(s.claim_ack(h.id, "@kari:a", ack).unwrap());
        assert!(!s.claim_ack(h.id, "@kari:a", ack).unwrap());
        assert!(s.claim_ack(h.id, "@ola:a", ack).unwrap());
        let e = StoredEnvelope {
            envelope_id: h.id,
            subject: "s".into(),
            bytes: vec![1, 2],
        };
        s.index_values(&e, &[(IndicatorType::Domain, "evil.example".into())])
            .unwrap();
        assert_eq!(
            s.seen(IndicatorType::Domain, "evil.example", 5)
                .unwrap()
                .len(),
            1
        );
        assert!(
            s.seen(IndicatorType::Domain, "good.example", 5)
                .unwrap()
                .is_empty()
        );
        // The column's default reads as open; closing writes `closed`.
        let incident = Uuid::now_v7();
        assert!(
            s.add_incident(incident, Tlp::Amber, &["kcsirt".into()], 1, &e)
                .unwrap()
        );
        assert_eq!(
            s.incident(incident).unwrap().unwrap().state,
            IncidentState::Open
        );
        s.close_incident(incident).unwrap();
        assert_eq!(
            s.incident(incident).unwrap().unwrap().state,
            IncidentState::Closed
        );
        assert_eq!(s.meta_init("k", "1").unwrap(), "1");
        assert_eq!(s.meta_init("k", "2").unwrap(), "1");
    }
}
