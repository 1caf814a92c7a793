//! The room side of the bridge: what members do in the bot's rooms goes
//! to the bus. One task takes the events from the sync (`timeline.rs`) in
//! order and
//! - runs `!varde` commands (directory users only; refusals say why),
//! - turns a ✅ reaction on a bridged alert into one signed `ack`,
//! - shares members' messages of sharing rooms and incident rooms as
//!   `chat` envelopes (`share.rs`).
//!
//! Every event is handled once: the store remembers handled event ids, and
//! events from before the bridge's first start are history, not news.

use std::sync::Arc;

use futures::FutureExt as _;
use matrix_sdk::Room;
use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::ruma::RoomId;
use tokio::sync::mpsc;
use varde_schemas::Payload;

use crate::command;
use crate::commands::{bad_command, refused, said};
use crate::config::Language;
use crate::matrix::SendError;
use crate::room_side::RoomSide;
use crate::share::{self, Decision, Target};
use crate::store::{IncidentState, Part};
use crate::timeline::{RoomEvent, What};

impl RoomSide {
    /// Reads events from the sync until the sender goes away.
    pub async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<RoomEvent>) {
        while let Some(ev) = rx.recv().await {
            if ev.ts_ms < self.since_ms {
                continue;
            }
            match self.store.part(&ev.event_id, &ev.room_id, Part::Handled) {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "store error; event skipped");
                    continue;
                }
            }
            match std::panic::AssertUnwindSafe(self.handle(&ev))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(room = %ev.room_id, event = %ev.event_id, error = %e, "cannot handle a room event");
                }
                Err(_) => {
                    tracing::error!(room = %ev.room_id, event = %ev.event_id, "panic while handling a room event; skipped, the room side goes on");
                    self.metrics.panicked("room_side");
                }
            }
            if let Err(e) = self
                .store
                .record(&ev.event_id, &ev.room_id, Part::Handled, None)
            {
                tracing::error!(error = %e, "cannot record a handled event");
            }
        }
    }

    async fn handle(&self, ev: &RoomEvent) -> Result<(), SendError> {
        let Ok(room_id) = RoomId::parse(&ev.room_id) else {
            return Ok(());
        };
        let Some(room) = self.bot.client.get_room(&room_id) else {
            return Ok(());
        };
        let lang = self.lang(&ev.room_id);
        if let What::Message { body, .. } = &ev.what
            && command::parse(&self.commands.prefix, first_bytes(body, 256)).is_some()
        {
            if body.len() > self.sharing.max_text_bytes {
                tracing::info!(room = %ev.room_id, bytes = body.len(), "command too long; refused");
                return self
                    .answer(
                        &room,
                        ev,
                        &too_long(lang, body.len(), self.sharing.max_text_bytes),
                    )
                    .await;
            }
            let text = match command::parse(&self.commands.prefix, body) {
                Some(Ok(cmd)) => said(lang, self.run_command(&room, ev, lang, cmd).await)?,
                Some(Err(e)) => {
                    tracing::info!(room = %ev.room_id, error = %e, "bad command");
                    bad_command(lang, &e.to_string(), &self.commands.prefix)
                }
                None => return Ok(()),
            };
            return self.answer(&room, ev, &text).await;
        }
        if let What::Reaction { key, target } = &ev.what {
            let key = key.trim_end_matches('\u{fe0f}');
            if key == "✅" || key == "✔" {
                let row = self.store.event(&ev.room_id, target)?;
                if let Some(row) = row.filter(|r| !r.origin && r.kind != "chat") {
                    let text = said(lang, self.ack(&room, ev, row.envelope_id).await)?;
                    return self.answer(&room, ev, &text).await;
                }
            }
            return Ok(());
        }
        // Messages, edits and redactions of sharing and incident rooms.
        let target = match self.configured(&ev.room_id).and_then(|c| c.share.as_ref()) {
            Some(s) => Target::from(s),
            None => match self.store.incident_in_room(&ev.room_id)? {
                Some(i) if i.state == IncidentState::Open => {
                    crate::incident::target(&self.directory.current(), &i)
                }
                _ => return Ok(()),
            },
        };
        self.share_event(&room, ev, lang, &target).await
    }

    async fn share_event(
        &self,
        room: &Room,
        ev: &RoomEvent,
        lang: Language,
        target: &Target,
    ) -> Result<(), SendError> {
        let dir = self.directory.current();
        let Some(org) = dir.org_of_matrix_user(&ev.sender).map(|o| o.id.clone()) else {
            tracing::info!(room = %ev.room_id, "message from a user outside the directory; not shared");
            return Ok(());
        };
        if org != self.publisher.identity.org {
            tracing::info!(room = %ev.room_id, user = %ev.sender, %org, "message from a user of another organisation; not shared (the bridge signs only for its own)");
            self.metrics.refused("other_org_user");
            return Ok(());
        }
        if let What::Message { body, .. } = &ev.what
            && body.len() > self.sharing.max_text_bytes
        {
            tracing::info!(room = %ev.room_id, event = %ev.event_id, bytes = body.len(), "message too long; not shared");
            return self
                .answer(
                    room,
                    ev,
                    &too_long(lang, body.len(), self.sharing.max_text_bytes),
                )
                .await;
        }
        let author = self.person(room, &ev.sender, org).await;
        let mut out = match share::outgoing(&self.store, target, ev, author)? {
            Decision::Share(o) => *o,
            Decision::NotShared(why) => {
                tracing::debug!(room = %ev.room_id, event = %ev.event_id, %why, "not shared");
                return Ok(());
            }
        };
        if let What::Message {
            file: Some(file), ..
        } = &ev.what
        {
            let limit = self.sharing.max_file_bytes;
            if file.size.is_some_and(|s| s > limit) {
                tracing::info!(room = %ev.room_id, event = %ev.event_id, size = file.size, limit, "file above the limit; not shared");
                return self
                    .answer(
                        room,
                        ev,
                        &file_too_large(lang, file.size.unwrap_or_default(), limit),
                    )
                    .await;
            }
            let req = MediaRequestParameters {
                source: file.source.clone(),
                format: MediaFormat::File,
            };
            let data = self
                .bot
                .client
                .media()
                .get_media_content(&req, false)
                .await?;
            if data.len() as u64 > limit {
                return self
                    .answer(room, ev, &file_too_large(lang, data.len() as u64, limit))
                    .await;
            }
            out.chat.attachment = Some(share::attachment(&file.name, &file.mime, &data));
        }
        let payload = Payload::Chat(out.chat.clone());
        match self
            .publisher
            .publish(&payload, out.label, out.audience.clone(), Some(out.id))
            .await
        {
            Ok(header) => {
                if matches!(out.chat.action, varde_schemas::payload::ChatAction::Message) {
                    self.store.record_event_by(
                        &ev.room_id,
                        &ev.event_id,
                        &header,
                        true,
                        Some(&ev.sender),
                    )?;
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(room = %ev.room_id, event = %ev.event_id, error = %e, "cannot share a message");
                self.answer(room, ev, &refused(lang, &e.to_string())).await
            }
        }
    }
}

/// The start of `s`, cut at a character boundary (to recognise a command
/// without copying a huge message).
fn first_bytes(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn too_long(lang: Language, len: usize, limit: usize) -> String {
    match lang {
        Language::En => {
            format!("Not shared or run: the message is {len} bytes; the limit is {limit}.")
        }
        Language::Nb => {
            format!("Ikke delt eller kjørt: meldingen er {len} byte; grensen er {limit}.")
        }
    }
}

fn file_too_large(lang: Language, size: u64, limit: u64) -> String {
    match lang {
        Language::En => format!("File not shared: it is {size} bytes; the limit is {limit}."),
        Language::Nb => format!("Filen er ikke delt: den er {size} byte; grensen er {limit}."),
    }
}
