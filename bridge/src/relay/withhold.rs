//! A message the room may not show, or the homeserver will not take: it
//! is recorded as withheld and a notice goes into the room instead.

use matrix_sdk::Room;

use super::Outcome;
use super::worker::Worker;
use crate::matrix::SendError;
use crate::message::Message;
use crate::policy::Violation;
use crate::render::{self};
use crate::store::{Part, Withheld, WithheldStatus, now_ms};

impl Worker {
    /// The homeserver will never take this message into this room: it is
    /// withheld (recorded, counted, a notice posted once if the room takes
    /// that) and the room moves on to the next message.
    pub(super) async fn refused_for_good(&self, msg: &Message, e: &SendError) -> Outcome {
        let status = match e {
            SendError::Refused { status, .. } => *status,
            _ => 0,
        };
        let v = Violation::RefusedByHomeserver { status };
        tracing::warn!(room = %self.cfg.name, envelope = %msg.header.id, kind = %msg.header.kind, error = %e, "the homeserver refused the post for good; withheld, and the room goes on");
        let notice = match self.ctx.bot.joined_room(&self.room_id).await {
            Ok(room) => self.withhold(&room, msg, &v).await,
            Err(e) => Err(e),
        };
        if let Err(ne) = notice {
            // Not even the notice goes in: record it as withheld anyway so
            // `varde-bridge withheld` shows it, and never try again.
            tracing::warn!(room = %self.cfg.name, envelope = %msg.header.id, error = %ne, "withheld notice not posted either");
            self.ctx.metrics.withheld(&self.cfg.name, v.reason());
            let _ = self.ctx.store.withhold(&self.withheld_row(msg, &v));
            let _ = self.ctx.store.mark_done(msg.header.id, self.rid(), None);
        }
        Outcome::Withheld
    }

    pub(super) fn withheld_row(&self, msg: &Message, v: &Violation) -> Withheld {
        Withheld {
            envelope_id: msg.header.id,
            room_id: self.rid().to_string(),
            reason: v.reason().to_string(),
            detail: v.to_string(),
            label: msg.header.label.as_str().to_string(),
            kind: msg.header.kind.as_str().to_string(),
            at_ms: now_ms(),
            status: WithheldStatus::Withheld,
            envelope: msg.envelope.clone(),
        }
    }

    pub(super) async fn withhold(
        &self,
        room: &Room,
        msg: &Message,
        v: &Violation,
    ) -> Result<Outcome, SendError> {
        let id = msg.header.id;
        self.ctx.store.withhold(&self.withheld_row(msg, v))?;
        let notice = render::withheld(
            self.lang(),
            msg.header.label,
            msg.header.kind,
            id,
            self.rid(),
            v,
        );
        self.ctx
            .bot
            .send_once(
                &self.ctx.store,
                room,
                &id.to_string(),
                Part::Withheld,
                notice.content(),
            )
            .await?;
        self.ctx.store.mark_done(id, self.rid(), None)?;
        self.ctx.metrics.withheld(&self.cfg.name, v.reason());
        tracing::warn!(
            room = %self.cfg.name,
            envelope = %id,
            kind = %msg.header.kind,
            label = %msg.header.label,
            reason = v.reason(),
            detail = %v,
            "message withheld from the room; a notice was posted instead"
        );
        Ok(Outcome::Withheld)
    }
}
