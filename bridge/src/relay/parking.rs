//! A room that keeps failing: its messages wait in the store ("parked")
//! and are drained in order once the room works again.

use std::time::Duration;

use jiff::Timestamp;

use super::worker::Worker;
use super::{Outcome, Task};
use crate::matrix::backoff;

impl Worker {
    /// Works through the parked backlog (oldest first); new messages for
    /// the room join the backlog meanwhile so that order is kept.
    pub(super) async fn drain_parked(&mut self) {
        while let Ok(task) = self.rx.try_recv() {
            self.absorb(task).await;
        }
        let parked = match self.ctx.store.oldest_parked(self.rid()) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(room = %self.cfg.name, error = %e, "store error");
                tokio::time::sleep(Duration::from_secs(5)).await;
                return;
            }
        };
        let msg = match self.ctx.open_stored(&parked.envelope) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(
                    room = %self.cfg.name,
                    envelope = %parked.envelope.envelope_id,
                    reason = e.reason(),
                    error = %e,
                    "parked message can no longer be opened (expired or revoked); dropped"
                );
                let _ = self.ctx.store.unpark(parked.seq);
                return;
            }
        };
        let mut attempt = 0u32;
        loop {
            // A message can expire while its room is down; it is not
            // posted late.
            if let Some(at) = msg.header.expires
                && at <= Timestamp::now()
            {
                tracing::warn!(room = %self.cfg.name, envelope = %msg.header.id, expired = %at, "parked message expired before its room worked again; dropped");
                let _ = self.ctx.store.unpark(parked.seq);
                return;
            }
            match self.deliver(&msg).await {
                Ok(_) => {
                    self.failing_since = None;
                    let _ = self.ctx.store.unpark(parked.seq);
                    return;
                }
                Err(e) if e.is_final(attempt + 1) => {
                    self.refused_for_good(&msg, &e).await;
                    let _ = self.ctx.store.unpark(parked.seq);
                    return;
                }
                Err(e) => {
                    self.ctx.metrics.retry(&self.cfg.name, e.reason());
                    let wait = e.retry_after().unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(room = %self.cfg.name, error = %e, wait_ms = wait.as_millis() as u64, "parked backlog: post failed; retrying");
                    let deadline = tokio::time::Instant::now() + wait;
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline) => break,
                            task = self.rx.recv() => match task {
                                Some(t) => self.absorb(t).await,
                                None => return,
                            },
                        }
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// A task arriving while the room has a backlog.
    pub(super) async fn absorb(&mut self, task: Task) {
        match task {
            Task::Deliver(job) => match self.ctx.store.park(self.rid(), &job.msg.envelope) {
                Ok(()) => self.done(&job, &Outcome::Parked),
                Err(e) => {
                    tracing::error!(room = %self.cfg.name, error = %e, "cannot park; delivering directly");
                    self.deliver_job(job).await;
                }
            },
            Task::Release(r) => self.release(r).await,
        }
    }
}
