//! `varde-bridge release <envelope-id> <room>` and `varde-bridge withheld`.
//!
//! A release is a request in the bridge's store that the running bridge
//! carries out: it owns the Matrix device (and its encryption keys), checks
//! the room again and posts the message only if the room now complies.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use uuid::Uuid;

use crate::config;
use crate::store::{ReleaseState, Store, WithheldStatus};

/// What became of a release request.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    Posted {
        event_id: Option<String>,
    },
    Refused(String),
    /// No running bridge picked the request up in time; it stays queued.
    Queued,
}

pub async fn run(
    config_path: &Path,
    envelope: &str,
    room: &str,
    wait: Duration,
) -> anyhow::Result<Released> {
    let (_, checked) = config::load(config_path)?;
    let envelope = Uuid::parse_str(envelope.trim()).with_context(|| {
        format!("`{envelope}` is not an envelope id (a UUID, as shown in the notice)")
    })?;
    let store = Store::open(&checked.store)?;
    let room_id = if room.starts_with('!') {
        room.to_string()
    } else {
        let configured = checked.room_by_ref(room).and_then(|r| match &r.reference {
            config::RoomRef::Id(id) => Some(id.clone()),
            config::RoomRef::Alias(_) => None,
        });
        match configured {
            Some(id) => id,
            None => {
                let rooms = store.withheld_rooms(envelope)?;
                match rooms.as_slice() {
                    [one] => one.clone(),
                    [] => bail!("no message {envelope} was withheld from any room"),
                    _ => bail!(
                        "message {envelope} was withheld from several rooms ({}); give the room id as shown in the notice",
                        rooms.join(", ")
                    ),
                }
            }
        }
    };
    let Some(w) = store.withheld(envelope, &room_id)? else {
        bail!(
            "no message {envelope} was withheld from {room_id}; `varde-bridge withheld` lists what was"
        );
    };
    if w.status == WithheldStatus::Released {
        bail!("message {envelope} was already released into {room_id}");
    }
    let id = store.request_release(envelope, &room_id)?;
    println!(
        "release of {} {} {envelope} into {room_id} requested; waiting for the bridge to check the room",
        w.label, w.kind
    );
    let deadline = Instant::now() + wait;
    loop {
        if let Some(r) = store.release(id)? {
            match r.state {
                ReleaseState::Posted => {
                    return Ok(Released::Posted {
                        event_id: r.event_id,
                    });
                }
                ReleaseState::Refused | ReleaseState::Failed => {
                    return Ok(Released::Refused(r.detail.unwrap_or_default()));
                }
                ReleaseState::Pending => {}
            }
        }
        if Instant::now() >= deadline {
            return Ok(Released::Queued);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Prints every withheld message (ids, labels, kinds, reasons; never content).
pub fn list(config_path: &Path) -> anyhow::Result<()> {
    let (_, checked) = config::load(config_path)?;
    let store = Store::open(&checked.store)?;
    let all = store.all_withheld()?;
    if all.is_empty() {
        println!("nothing withheld");
        return Ok(());
    }
    println!("ENVELOPE                              ROOM  LABEL  KIND  STATUS  WHEN  REASON");
    for w in all {
        let when = jiff::Timestamp::from_millisecond(w.at_ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
        println!(
            "{}  {}  {}  {}  {}  {}  {}",
            w.envelope_id, w.room_id, w.label, w.kind, w.status, when, w.detail
        );
    }
    Ok(())
}
