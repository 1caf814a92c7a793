//! The `posts` table: what the bridge did at most once per key (an
//! envelope, digest or event id), room and part, with the event it became.
//! Every exactly-once Matrix send checks and records here
//! (`matrix::Bot::send_once`).

use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::{Result, Store, now_ms};

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

impl Store {
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
}
