//! One task per room: its queue, in order, with retries.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use jiff::Timestamp;
use matrix_sdk::ruma::OwnedRoomId;
use tokio::sync::mpsc;
use varde_schemas::{Payload, Tlp};

use super::{Context, Job, Outcome, Task};
use crate::config::{self, Language};
use crate::delivery::DigestWindow;
use crate::matrix::{SendError, backoff};
use crate::message::Message;
use crate::policy::{self, RoomRules, Violation};
use crate::store::{Withheld, now_ms};

pub(super) struct Worker {
    pub(super) ctx: Arc<Context>,
    pub(super) cfg: config::Room,
    pub(super) room_id: OwnedRoomId,
    pub(super) rx: mpsc::UnboundedReceiver<Task>,
    pub(super) acks: mpsc::UnboundedSender<Arc<Job>>,
    /// Individually posted indicators in the current digest window.
    pub(super) window: DigestWindow,
    pub(super) failing_since: Option<Instant>,
    pub(super) digest_retry_at: Option<Instant>,
}

impl Worker {
    pub(super) fn rid(&self) -> &str {
        self.room_id.as_str()
    }

    pub(super) fn rules(&self) -> RoomRules {
        RoomRules {
            ceiling: self.cfg.ceiling,
            red: self.cfg.red,
        }
    }

    pub(super) fn lang(&self) -> Language {
        self.cfg.language
    }

    pub(super) async fn run(mut self) {
        loop {
            let parked = match self.ctx.store.parked_count(self.rid()) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(room = %self.cfg.name, error = %e, "store error");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            self.ctx.metrics.set_parked(&self.cfg.name, parked);
            if parked > 0 {
                self.drain_parked().await;
                continue;
            }
            let due = self.digest_due();
            tokio::select! {
                task = self.rx.recv() => match task {
                    None => return,
                    Some(Task::Deliver(job)) => self.deliver_guarded(job).await,
                    Some(Task::Release(r)) => self.release(r).await,
                },
                _ = sleep_until(due), if due.is_some() => self.flush_digest_now().await,
            }
        }
    }

    /// When the open digest (if any) should be posted.
    pub(super) fn digest_due(&self) -> Option<Instant> {
        let row = self.ctx.store.open_digest(self.rid()).ok().flatten()?;
        let wait = Duration::from_millis(u64::try_from(row.due_ms - now_ms()).unwrap_or(0));
        let at = Instant::now() + wait;
        Some(match self.digest_retry_at {
            Some(r) if r > at => r,
            _ => at,
        })
    }

    pub(super) fn done(&self, job: &Arc<Job>, outcome: &Outcome) {
        if matches!(outcome, Outcome::Posted) {
            let age: Duration = Timestamp::now()
                .duration_since(job.msg.header.created)
                .try_into()
                .unwrap_or(Duration::ZERO);
            self.ctx.metrics.delivery_seconds.observe(age.as_secs_f64());
        }
        if job.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.acks.send(job.clone());
        }
    }

    /// `deliver_job`, with a panic (a bug some input ran into) caught: the
    /// message is recorded as withheld for this room and the worker goes
    /// on with the next one instead of dying with the room's queue.
    pub(super) async fn deliver_guarded(&mut self, job: Arc<Job>) {
        let caught = std::panic::AssertUnwindSafe(self.deliver_job(job.clone()))
            .catch_unwind()
            .await;
        if caught.is_err() {
            tracing::error!(room = %self.cfg.name, envelope = %job.msg.header.id, kind = %job.msg.header.kind, "panic while delivering a message; withheld from this room, the room goes on");
            self.ctx.metrics.panicked("room_worker");
            let v = Violation::RefusedByHomeserver { status: 0 };
            let _ = self.ctx.store.withhold(&Withheld {
                reason: "panic".into(),
                detail: "the bridge panicked while delivering it".into(),
                ..self.withheld_row(&job.msg, &v)
            });
            let _ = self
                .ctx
                .store
                .mark_done(job.msg.header.id, self.rid(), None);
            self.done(&job, &Outcome::Withheld);
        }
    }

    pub(super) async fn deliver_job(&mut self, job: Arc<Job>) {
        let mut attempt = 0u32;
        loop {
            match self.deliver(&job.msg).await {
                Ok(outcome) => {
                    self.failing_since = None;
                    tracing::debug!(room = %self.cfg.name, envelope = %job.msg.header.id, ?outcome, "delivered");
                    self.done(&job, &outcome);
                    return;
                }
                Err(e) if e.is_final(attempt + 1) => {
                    let outcome = self.refused_for_good(&job.msg, &e).await;
                    self.done(&job, &outcome);
                    return;
                }
                Err(e) => {
                    self.ctx.metrics.retry(&self.cfg.name, e.reason());
                    let since = *self.failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.ctx.delivery.park_after {
                        match self.ctx.store.park(self.rid(), &job.msg.envelope) {
                            Ok(()) => {
                                tracing::warn!(
                                    room = %self.cfg.name,
                                    envelope = %job.msg.header.id,
                                    error = %e,
                                    "room keeps failing; message parked in the bridge's store"
                                );
                                self.done(&job, &Outcome::Parked);
                                return;
                            }
                            Err(se) => {
                                tracing::error!(room = %self.cfg.name, error = %se, "cannot park a message")
                            }
                        }
                    }
                    let wait = e.retry_after().unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(
                        room = %self.cfg.name,
                        envelope = %job.msg.header.id,
                        kind = %job.msg.header.kind,
                        label = %job.msg.header.label,
                        error = %e,
                        wait_ms = wait.as_millis() as u64,
                        "post failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// One message into this room. Idempotent: safe to repeat after any
    /// failure or crash.
    pub(super) async fn deliver(&mut self, msg: &Message) -> Result<Outcome, SendError> {
        let id = msg.header.id;
        if self.ctx.store.is_done(id, self.rid())? {
            return Ok(Outcome::AlreadyDone);
        }
        if let Payload::Indicator(batch) = &msg.payload
            && self.fold_into_digest(batch)?
        {
            self.add_to_digest(msg, batch)?;
            return Ok(Outcome::Digested);
        }
        let room = self.ctx.bot.joined_room(&self.room_id).await?;
        let dir = self.ctx.directory.current();
        let view = self
            .ctx
            .bot
            // GREEN too: a stale member list could admit someone outside
            // the message's audience.
            .view(&room, msg.header.label >= Tlp::Green)
            .await?;
        if let Err(v) = policy::check(
            &dir,
            self.rules(),
            &view,
            msg.header.label,
            &msg.header.audience,
        ) {
            return self.withhold(&room, msg, &v).await;
        }
        self.post(&room, msg, &dir).await?;
        if let Payload::Indicator(b) = &msg.payload {
            self.window.posted(b.indicators.len());
        }
        Ok(Outcome::Posted)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
