//! Posting a message into a room: the rendered post (and its file), chat
//! through `share`, advisories first posted then edited by revision.

use matrix_sdk::Room;
use varde_bus::directory::VerifiedDirectory;
use varde_schemas::Payload;
use varde_schemas::payload::{Campaign, RemediationState, Status};

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
        if let Payload::Campaign(c) = &msg.payload {
            return self.post_campaign(room, msg, dir, c).await;
        }
        let rendered = render::message(&style, &msg.header, &msg.payload);
        self.delivered(dir, msg).await;
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

    /// Tells the CSIRT that its advisory or alert reached this org (a
    /// `delivered` status, to the CSIRT alone), once per warning: the id
    /// is derived with the store's secret, so posting into a second room
    /// or again after a crash is the same envelope, kept once. A failure is
    /// logged and does not hold up the post.
    async fn delivered(&self, dir: &VerifiedDirectory, msg: &Message) {
        let h = &msg.header;
        let Some(about) =
            varde_bus::kind_rules::receipt_about(dir, &self.ctx.identity.org, h, &msg.payload)
        else {
            return;
        };
        let Ok((label, audience)) = varde_bus::kind_rules::status_audience(dir) else {
            return;
        };
        let id = self.ctx.store.derived_id(&["delivered", &about]);
        let _ = self
            .ctx
            .store
            .record_own_status(&about, RemediationState::Delivered);
        let status = Payload::Status(Status {
            about,
            state: RemediationState::Delivered,
            note: None,
            by: None,
        });
        match self
            .ctx
            .receipts
            .publish(&status, label, audience, Some(id))
            .await
        {
            Ok(_) => tracing::debug!(envelope = %h.id, "delivered status sent"),
            Err(e) => tracing::warn!(envelope = %h.id, error = %e, "delivered status not sent"),
        }
    }

    /// A campaign message from the CSIRT: a reply in the thread of the
    /// advisory's post in this room when it is here, a post of its own
    /// otherwise.
    async fn post_campaign(
        &self,
        room: &Room,
        msg: &Message,
        dir: &VerifiedDirectory,
        c: &Campaign,
    ) -> Result<(), SendError> {
        self.ctx.store.record_campaign(c)?;
        let id = msg.header.id;
        let key = id.to_string();
        let post = render::campaign(self.lang(), msg.header.label, c);
        let first = self
            .ctx
            .store
            .advisory(self.rid(), dir.doc.csirt.as_str(), &c.about)?
            .map(|(first, _)| first);
        let content = match &first {
            Some(first) => post.in_thread(&crate::matrix::event_id(first)?),
            None => post.content(),
        };
        let event = self
            .ctx
            .bot
            .send_once(&self.ctx.store, room, &key, Part::Post, content)
            .await?;
        self.ctx
            .store
            .record_event(self.rid(), &event, &msg.header, false)?;
        self.ctx.store.mark_done(id, self.rid(), Some(&event))?;
        self.ctx.metrics.posted(&self.cfg.name, "campaign");
        Ok(())
    }
}
