//! `varde export stix|misp`: what an identity may read on the bus since a
//! given time, opened with its own key and written as a STIX 2.1 bundle
//! or a MISP feed folder. Nothing the identity cannot open is exported,
//! and each object keeps the label of the envelope it came in.

pub mod misp;
pub mod stix;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use varde_bus::directory::DirectoryHandle;
use varde_bus::inbox::{Inbox, InboxConfig, InboxError};
use varde_bus::keys::Identity;
use varde_bus::seal::{Opened, Opener};
use varde_bus::subject;

/// Deterministic ids: the same value exports under the same id every time.
pub(crate) const NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6d2c_9a4e_1b7f_4f0c_9e1a_5a3b_7c8d_2e4f);

pub(crate) fn uuid5(parts: &[&str]) -> uuid::Uuid {
    uuid::Uuid::new_v5(&NAMESPACE, parts.join("\u{1f}").as_bytes())
}

/// Every envelope `identity` can open that arrived since `since`, read
/// through a temporary consumer until the stream is exhausted.
pub async fn collect(
    js: &async_nats::jetstream::Context,
    identity: Arc<Identity>,
    directory: DirectoryHandle,
    since: Timestamp,
) -> Result<Vec<Opened>, InboxError> {
    let filters = subject::readable_filters(&directory.current(), &identity.org);
    let cfg = InboxConfig::ephemeral(filters, Some(since));
    let opener = Arc::new(Opener::new(identity));
    let mut inbox = Inbox::open(js, &cfg, opener, directory).await?;
    let mut out = Vec::new();
    if inbox
        .stats()
        .pending
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        return Ok(out);
    }
    loop {
        // Refused envelopes are never returned, so "pending == 0" alone
        // could wait forever after a refused last message: stop when quiet.
        let next = match tokio::time::timeout(Duration::from_secs(3), inbox.next()).await {
            Ok(n) => n,
            Err(_) => break,
        };
        let Some(d) = next else { break };
        let d = d?;
        d.ack().await?;
        let last = d.pending == 0;
        out.push(d.opened);
        if last {
            break;
        }
    }
    Ok(out)
}

/// Timestamps as STIX and MISP want them (UTC, milliseconds).
pub(crate) fn stix_time(t: Timestamp) -> String {
    let ms = t.subsec_millisecond().max(0);
    format!("{}.{ms:03}Z", t.strftime("%Y-%m-%dT%H:%M:%S"))
}
