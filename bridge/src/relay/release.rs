//! `varde-bridge release`: requests from the store go to their room's
//! worker, which checks the room again and posts if it now complies.

use std::sync::Arc;
use std::time::Duration;

use super::worker::Worker;
use super::{Relay, Task};
use crate::matrix::SendError;
use crate::policy::{self, Violation};
use crate::store::{Part, ReleaseRequest, ReleaseState, WithheldStatus};

/// Hands `varde-bridge release` requests to the room workers.
pub(super) async fn release_loop(relay: Arc<Relay>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let pending = match relay.ctx.store.pending_releases() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read release requests");
                continue;
            }
        };
        for r in pending {
            let fresh = relay
                .ctx
                .dispatched_releases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(r.id);
            if !fresh {
                continue;
            }
            match relay.room(&r.room_id) {
                Some(t) => {
                    let _ = t.tx.send(Task::Release(r));
                }
                None => {
                    let _ = relay.ctx.store.finish_release(
                        r.id,
                        ReleaseState::Refused,
                        Some("the room is not in this bridge's configuration"),
                        None,
                    );
                }
            }
        }
    }
}

impl Worker {
    /// `varde-bridge release`: checks the room again and posts the message
    /// if it now complies.
    pub(super) async fn release(&self, r: ReleaseRequest) {
        /// A release attempt that got an answer from the room (a send
        /// failure leaves the request pending instead).
        enum Attempt {
            /// Posted, as the recorded event (if any).
            Posted(Option<String>),
            /// The room still does not comply.
            StillRefused(Violation),
        }
        let finish = |state: ReleaseState, detail: Option<String>, event: Option<&str>| {
            if let Err(e) = self
                .ctx
                .store
                .finish_release(r.id, state, detail.as_deref(), event)
            {
                tracing::error!(error = %e, "cannot record a release outcome");
            }
            self.ctx
                .dispatched_releases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&r.id);
        };
        let w = match self.ctx.store.withheld(r.envelope_id, self.rid()) {
            Ok(Some(w)) => w,
            Ok(None) => {
                return finish(
                    ReleaseState::Refused,
                    Some("no message with this id was withheld from this room".into()),
                    None,
                );
            }
            Err(e) => return finish(ReleaseState::Failed, Some(e.to_string()), None),
        };
        if w.status == WithheldStatus::Released {
            return finish(ReleaseState::Refused, Some("already released".into()), None);
        }
        let msg = match self.ctx.open_stored(&w.envelope) {
            Ok(m) => m,
            Err(e) => {
                return finish(
                    ReleaseState::Refused,
                    Some(format!("the message cannot be opened any more: {e}")),
                    None,
                );
            }
        };
        let attempt = async {
            let room = self.ctx.bot.joined_room(&self.room_id).await?;
            let view = self.ctx.bot.view(&room, true).await?;
            let dir = self.ctx.directory.current();
            if let Err(v) = policy::check(
                &dir,
                self.rules(),
                &view,
                msg.header.label,
                &msg.header.audience,
            ) {
                return Ok::<_, SendError>(Attempt::StillRefused(v));
            }
            self.post(&room, &msg, &dir).await?;
            let event = self
                .ctx
                .store
                .part(&msg.header.id.to_string(), self.rid(), Part::Post)?
                .and_then(|p| p.event_id);
            Ok(Attempt::Posted(event))
        };
        match attempt.await {
            Ok(Attempt::Posted(event)) => {
                let _ = self.ctx.store.set_withheld_status(
                    r.envelope_id,
                    self.rid(),
                    WithheldStatus::Released,
                );
                self.ctx
                    .metrics
                    .released
                    .get_or_create(&crate::metrics::RoomLabel {
                        room: self.cfg.name.clone(),
                    })
                    .inc();
                tracing::info!(room = %self.cfg.name, envelope = %r.envelope_id, "withheld message released into the room");
                finish(ReleaseState::Posted, None, event.as_deref());
            }
            Ok(Attempt::StillRefused(v)) => {
                tracing::warn!(room = %self.cfg.name, envelope = %r.envelope_id, reason = v.reason(), detail = %v, "release refused: the room still does not comply");
                finish(ReleaseState::Refused, Some(v.to_string()), None);
            }
            // Transient: leave the request pending for the next round.
            Err(e) => {
                tracing::warn!(room = %self.cfg.name, envelope = %r.envelope_id, error = %e, "release failed; will retry");
                self.ctx
                    .dispatched_releases
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&r.id);
            }
        }
    }
}
