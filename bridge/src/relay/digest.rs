//! Indicator floods: batches fold into a digest kept in the store, posted
//! once when its window closes.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use uuid::Uuid;
use varde_schemas::payload::IndicatorBatch;
use varde_schemas::{Payload, Tlp};

use super::worker::Worker;
use crate::delivery;
use crate::matrix::SendError;
use crate::message::Message;
use crate::policy::{self, Violation};
use crate::render;
use crate::store::{DigestRow, Part, now_ms};

impl Worker {
    /// Adds a batch to the room's open digest, opening one (due when the
    /// window closes) if there is none; the bus message is then done.
    pub(super) fn add_to_digest(
        &mut self,
        msg: &Message,
        batch: &IndicatorBatch,
    ) -> Result<(), SendError> {
        let row = match self.ctx.store.open_digest(self.rid())? {
            Some(row) => row,
            None => {
                let window = self
                    .cfg
                    .digest
                    .as_ref()
                    .map_or(Duration::ZERO, |d| d.window);
                let opened = now_ms();
                let row = DigestRow {
                    id: Uuid::now_v7(),
                    room_id: self.rid().to_string(),
                    opened_ms: opened,
                    due_ms: delivery::digest_due(opened, window),
                };
                self.ctx.store.create_digest(&row)?;
                row
            }
        };
        self.ctx
            .store
            .digest_add(self.rid(), row.id, &msg.envelope, batch.indicators.len())?;
        Ok(())
    }

    /// Whether an indicator batch goes into the room's digest
    /// (`DigestWindow::folds`).
    pub(super) fn fold_into_digest(&mut self, batch: &IndicatorBatch) -> Result<bool, SendError> {
        let Some(d) = &self.cfg.digest else {
            return Ok(false);
        };
        let open = self.ctx.store.open_digest(self.rid())?.is_some();
        Ok(self
            .window
            .folds(d, Instant::now(), batch.indicators.len(), open))
    }

    pub(super) async fn flush_digest_now(&mut self) {
        match self.flush_digest().await {
            Ok(()) => self.digest_retry_at = None,
            Err(e) => {
                self.ctx.metrics.retry(&self.cfg.name, e.reason());
                let wait = e.retry_after().unwrap_or(Duration::from_secs(5));
                tracing::warn!(room = %self.cfg.name, error = %e, "digest post failed; retrying");
                self.digest_retry_at = Some(Instant::now() + wait);
            }
        }
    }

    /// Posts the room's open digest: one message and one CSV for the
    /// batches the room may show, one notice for those it may not.
    pub(super) async fn flush_digest(&mut self) -> Result<(), SendError> {
        let Some(row) = self.ctx.store.open_digest(self.rid())? else {
            return Ok(());
        };
        let key = row.id.to_string();
        let mut items = Vec::new();
        for e in self.ctx.store.digest_items(row.id)? {
            if self.ctx.store.is_done(e.envelope_id, self.rid())? {
                continue;
            }
            match self.ctx.open_stored(&e) {
                Ok(m) => items.push(m),
                Err(err) => {
                    tracing::warn!(room = %self.cfg.name, envelope = %e.envelope_id, reason = err.reason(), "digest item can no longer be opened; dropped");
                    self.ctx.store.mark_done(e.envelope_id, self.rid(), None)?;
                }
            }
        }
        if !items.is_empty() {
            let room = self.ctx.bot.joined_room(&self.room_id).await?;
            let dir = self.ctx.directory.current();
            let top = items
                .iter()
                .map(|m| m.header.label)
                .max()
                .unwrap_or(Tlp::Clear);
            let view = self.ctx.bot.view(&room, top >= Tlp::Amber).await?;
            let mut ok = Vec::new();
            let mut refused: Vec<(&Message, Violation)> = Vec::new();
            for m in &items {
                match policy::check(
                    &dir,
                    self.rules(),
                    &view,
                    m.header.label,
                    &m.header.audience,
                ) {
                    Ok(()) => ok.push(m),
                    Err(v) => refused.push((m, v)),
                }
            }
            if !refused.is_empty() {
                for (m, v) in &refused {
                    self.ctx.store.withhold(&self.withheld_row(m, v))?;
                    self.ctx.metrics.withheld(&self.cfg.name, v.reason());
                }
                {
                    let mut reasons: Vec<String> = refused
                        .iter()
                        .map(|(_, v)| crate::render::violation_text(self.lang(), v))
                        .collect();
                    reasons.sort();
                    reasons.dedup();
                    let label = refused
                        .iter()
                        .map(|(m, _)| m.header.label)
                        .max()
                        .unwrap_or(Tlp::Clear);
                    let notice = render::withheld_many(self.lang(), label, refused.len(), &reasons);
                    self.ctx
                        .bot
                        .send_once(
                            &self.ctx.store,
                            &room,
                            &key,
                            Part::Withheld,
                            notice.content(),
                        )
                        .await?;
                }
                tracing::warn!(room = %self.cfg.name, digest = %row.id, count = refused.len(), "digest items withheld from the room");
                for (m, _) in &refused {
                    self.ctx.store.mark_done(m.header.id, self.rid(), None)?;
                }
            }
            if !ok.is_empty() {
                let names: Vec<String> = ok
                    .iter()
                    .map(|m| {
                        dir.org(m.header.sender.org.as_str())
                            .map(|o| o.name.clone())
                            .unwrap_or_else(|| m.header.sender.org.to_string())
                    })
                    .collect();
                let digest_items: Vec<render::DigestItem<'_>> = ok
                    .iter()
                    .zip(&names)
                    .filter_map(|(m, name)| match &m.payload {
                        Payload::Indicator(b) => Some(render::DigestItem {
                            header: &m.header,
                            batch: b,
                            sender_name: name,
                        }),
                        _ => None,
                    })
                    .collect();
                let window = Some((
                    Timestamp::from_millisecond(row.opened_ms).unwrap_or_else(|_| Timestamp::now()),
                    Timestamp::from_millisecond(row.due_ms).unwrap_or_else(|_| Timestamp::now()),
                ));
                let sample = self.cfg.digest.as_ref().map_or(20, |d| d.sample);
                let rendered = render::digest(self.lang(), &digest_items, window, sample);
                let event = self
                    .send_rendered(&room, &key, &rendered, Part::Digest)
                    .await?;
                for m in &ok {
                    self.ctx
                        .store
                        .mark_done(m.header.id, self.rid(), Some(&event))?;
                }
                self.ctx
                    .metrics
                    .digests
                    .get_or_create(&crate::metrics::RoomLabel {
                        room: self.cfg.name.clone(),
                    })
                    .inc();
                self.ctx.metrics.posted(&self.cfg.name, "indicator_digest");
                tracing::info!(room = %self.cfg.name, digest = %row.id, batches = ok.len(), "indicator digest posted");
            }
        }
        self.ctx.store.close_digest(row.id)?;
        Ok(())
    }
}
