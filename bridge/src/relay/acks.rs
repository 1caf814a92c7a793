//! The broker side of delivery: a bus message is acked once all its
//! rooms are done, and told "still working" until then.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Context, Job};
use crate::matrix::backoff;

/// Acks bus messages whose rooms are all done, confirmed by the broker.
pub(super) async fn ack_loop(
    mut rx: mpsc::UnboundedReceiver<Arc<Job>>,
    in_flight: Arc<std::sync::Mutex<BTreeMap<u64, Arc<Job>>>>,
) {
    while let Some(job) = rx.recv().await {
        let mut attempt = 0;
        loop {
            match job.delivery.ack_confirmed().await {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    tracing::warn!(envelope = %job.msg.header.id, error = %e, "ack failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                // The broker will redeliver it; the store knows it is done.
                Err(e) => {
                    tracing::warn!(envelope = %job.msg.header.id, error = %e, "ack failed; the message will be redelivered and skipped");
                    break;
                }
            }
        }
        in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job.id);
    }
}

/// Keeps un-acked messages from being redelivered while rooms work on
/// them, and publishes the lag gauges.
pub(super) async fn heartbeat_loop(
    ctx: Arc<Context>,
    in_flight: Arc<std::sync::Mutex<BTreeMap<u64, Arc<Job>>>>,
) {
    let every = (ctx.delivery.ack_wait / 3).max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let jobs: Vec<Arc<Job>> = in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        ctx.metrics
            .in_flight
            .set(i64::try_from(jobs.len()).unwrap_or(i64::MAX));
        let oldest = jobs
            .iter()
            .map(|j| j.received.elapsed())
            .max()
            .unwrap_or_default();
        ctx.metrics
            .oldest_in_flight_seconds
            .set(crate::metrics::secs(oldest));
        for j in jobs {
            if j.remaining.load(Ordering::Acquire) > 0
                && let Err(e) = j.delivery.in_progress().await
            {
                tracing::debug!(envelope = %j.msg.header.id, error = %e, "in-progress signal failed");
            }
        }
    }
}
