//! Who is filling the store: messages per sender org across the scope
//! streams, and purging one sender's messages. Every member shares one NATS
//! account, whose storage quota is the only one nats-server enforces, so a
//! compromised member can fill it (deploy/README.md "What one member can
//! store"); the sender is token 3 of every stored subject, so the operator
//! finds it at once and removes exactly its messages, nobody else's.

use std::collections::BTreeMap;

use async_nats::jetstream;
use futures::StreamExt;
use varde_schemas::OrgId;

use crate::subject::STREAM_PREFIX;

/// What one sender org has stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SenderUsage {
    pub org: String,
    pub messages: u64,
    /// Messages per scope stream.
    pub streams: BTreeMap<String, u64>,
}

/// Why the store could not be read or purged.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("cannot list the streams: {0}")]
    List(String),
    #[error("cannot read stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("cannot purge {org}'s messages from stream {stream}: {reason}")]
    Purge {
        org: String,
        stream: String,
        reason: String,
    },
}

/// The scope streams (`VARDE_…`), by name.
async fn scope_streams(js: &jetstream::Context) -> Result<Vec<String>, UsageError> {
    let mut names = js.stream_names();
    let mut out = Vec::new();
    while let Some(n) = names.next().await {
        let n = n.map_err(|e| UsageError::List(e.to_string()))?;
        if n.starts_with(STREAM_PREFIX) {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}

/// Messages per sender org in every scope stream, most first.
pub async fn usage(js: &jetstream::Context) -> Result<Vec<SenderUsage>, UsageError> {
    let mut by_org: BTreeMap<String, SenderUsage> = BTreeMap::new();
    for name in scope_streams(js).await? {
        let failed = |e: &dyn std::fmt::Display| UsageError::Stream {
            stream: name.clone(),
            reason: e.to_string(),
        };
        let stream = js.get_stream(&name).await.map_err(|e| failed(&e))?;
        let mut subjects = stream
            .info_with_subjects("varde.v1.>")
            .await
            .map_err(|e| failed(&e))?;
        while let Some(s) = subjects.next().await {
            let (subject, count) = s.map_err(|e| failed(&e))?;
            // varde.v1.<sender>.…: the stream's subjects all have this shape.
            let Some(org) = subject.split('.').nth(2) else {
                continue;
            };
            let u = by_org
                .entry(org.to_string())
                .or_insert_with(|| SenderUsage {
                    org: org.to_string(),
                    messages: 0,
                    streams: BTreeMap::new(),
                });
            u.messages += count as u64;
            *u.streams.entry(name.clone()).or_default() += count as u64;
        }
    }
    let mut out: Vec<SenderUsage> = by_org.into_values().collect();
    out.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.org.cmp(&b.org)));
    Ok(out)
}

/// Removes every message `org` sent from every scope stream; returns the
/// streams it had messages in and how many each lost. Others' messages
/// stay (the purge is filtered to `varde.v1.<org>.>`).
pub async fn purge_sender(
    js: &jetstream::Context,
    org: &OrgId,
) -> Result<Vec<(String, u64)>, UsageError> {
    let filter = format!("varde.v1.{org}.>");
    let mut out = Vec::new();
    for name in scope_streams(js).await? {
        let failed = |e: &dyn std::fmt::Display| UsageError::Purge {
            org: org.to_string(),
            stream: name.clone(),
            reason: e.to_string(),
        };
        let stream = js.get_stream(&name).await.map_err(|e| failed(&e))?;
        let r = stream
            .purge()
            .filter(filter.clone())
            .await
            .map_err(|e| failed(&e))?;
        if r.purged > 0 {
            out.push((name, r.purged));
        }
    }
    Ok(out)
}
