//! Posting a message into a room: the rendered post (and its file), chat
//! through `share`, advisories first posted then edited by revision.

use matrix_sdk::Room;
use varde_bus::directory::VerifiedDirectory;
use varde_schemas::Payload;

use super::worker::Worker;
use crate::delivery::{self, Revision};
use crate::matrix::{SendError, txn_id};
use crate::message::Message;
use crate::render::{self, Rendered, Style};
use crate::store::Part;

impl Worker {
    /// Sends a rendered post (and its file, if any); returns the post's
    /// event id.
    pub(super) async fn send_rendered(
        &self,
        room: &Room,
        key: &str,
        r: &Rendered,
        part: Part,
    ) -> Result<String, SendError> {
        let bot = &self.ctx.bot;
        let store = &self.ctx.store;
        let event = bot
            .send_once(store, room, key, part, r.post.content())
            .await?;
        if let Some(file) = &r.file {
            let mime = file.mime.parse().unwrap_or(mime::TEXT_PLAIN);
            bot.send_file_once(
                store,
                room,
                key,
                part.file(),
                (&file.name, &mime, file.data.clone()),
            )
            .await?;
        }
        Ok(event)
    }

    pub(super) async fn post(
        &self,
        room: &Room,
        msg: &Message,
        dir: &VerifiedDirectory,
    ) -> Result<(), SendError> {
        let sender_name = dir
            .org(msg.header.sender.org.as_str())
            .map(|o| o.name.clone())
            .unwrap_or_else(|| msg.header.sender.org.to_string());
        let style = Style {
            lang: self.lang(),
            sender_name: &sender_name,
            urgent_alerts: self.cfg.urgent_alerts && delivery::may_wake_room(dir, &msg.header),
        };
        let id = msg.header.id;
        let key = id.to_string();
        if let Payload::Chat(c) = &msg.payload {
            if crate::share::post(&self.ctx.bot, &self.ctx.store, dir, room, msg, c).await? {
                self.ctx.metrics.posted(&self.cfg.name, "chat");
            } else {
                self.ctx.metrics.refused("not_own_words");
            }
            return Ok(());
        }
        let rendered = render::message(&style, &msg.header, &msg.payload);
        let Payload::Advisory(a) = &msg.payload else {
            if rendered.file.is_none() {
                // The common case in one send and one commit; a resend
                // after a crash is deduplicated by the transaction id.
                let event = self
                    .ctx
                    .bot
                    .send(
                        room,
                        rendered.post.content(),
                        &txn_id(&key, self.rid(), Part::Post),
                    )
                    .await?;
                self.ctx
                    .store
                    .record_event(self.rid(), &event, &msg.header, false)?;
                self.ctx
                    .store
                    .record_done(id, self.rid(), Part::Post, &event)?;
            } else {
                let event = self
                    .send_rendered(room, &key, &rendered, Part::Post)
                    .await?;
                self.ctx
                    .store
                    .record_event(self.rid(), &event, &msg.header, false)?;
                self.ctx.store.mark_done(id, self.rid(), Some(&event))?;
            }
            self.ctx
                .metrics
                .posted(&self.cfg.name, msg.header.kind.as_str());
            return Ok(());
        };
        let known =
            self.ctx
                .store
                .advisory(self.rid(), msg.header.sender.org.as_str(), &a.advisory_id)?;
        // The room's first post of the advisory, and the event that
        // completes this revision in the room.
        let (first, done, what) = match delivery::revision(known, a.revision) {
            Revision::Stale => {
                tracing::info!(room = %self.cfg.name, envelope = %id, revision = a.revision, "older advisory revision than the one in the room; not posted");
                self.ctx.store.mark_done(id, self.rid(), None)?;
                return Ok(());
            }
            Revision::Edit { first } => {
                let (bot, store) = (&self.ctx.bot, &self.ctx.store);
                let root = crate::matrix::event_id(&first)?;
                let replacing = rendered.post.replacing(&root);
                let edit = bot
                    .send_once(store, room, &key, Part::Edit, replacing)
                    .await?;
                let note = render::revision_note(self.lang(), msg.header.label, a);
                bot.send_once(store, room, &key, Part::Thread, note.in_thread(&root))
                    .await?;
                (first, edit, "advisory_revision")
            }
            Revision::First => {
                let event = self
                    .send_rendered(room, &key, &rendered, Part::Post)
                    .await?;
                self.ctx
                    .store
                    .record_event(self.rid(), &event, &msg.header, false)?;
                (event.clone(), event, "advisory")
            }
        };
        self.ctx.store.set_advisory(
            self.rid(),
            msg.header.sender.org.as_str(),
            &a.advisory_id,
            &first,
            a.revision,
        )?;
        self.ctx.store.mark_done(id, self.rid(), Some(&done))?;
        self.ctx.metrics.posted(&self.cfg.name, what);
        Ok(())
    }
}
