//! `varde tail`: decrypt and show what this identity may read.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use varde_schemas::Kind;

use super::{Session, render};
use varde_bus::inbox::{Inbox, InboxConfig};
use varde_bus::kind_rules;
use varde_bus::seal::{self, Draft, Opener};
use varde_bus::{subject, transport};
use varde_schemas::payload::{RemediationState, Status};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show messages from this long ago (e.g. 24h, 7d); default: only new.
    #[arg(long)]
    pub since: Option<String>,
    /// Only these kinds (repeatable).
    #[arg(long = "kind")]
    pub kinds: Vec<Kind>,
    /// One JSON object per line (header + payload) instead of the human view.
    #[arg(long)]
    pub json: bool,
    /// Keep waiting for new messages instead of exiting when caught up.
    #[arg(long, short)]
    pub follow: bool,
    /// Read (and ack) this identity's durable consumer instead of a
    /// temporary one. Use this where the broker only allows the durable.
    /// The CSIRT's advisories and alerts shown get a `delivered` status to
    /// the CSIRT (as the bridge sends when it posts them).
    #[arg(long)]
    pub durable: bool,
    /// With --durable: send no `delivered` statuses.
    #[arg(long, requires = "durable")]
    pub no_receipts: bool,
    /// Stop after this many messages.
    #[arg(long)]
    pub limit: Option<usize>,
}

pub async fn run(a: Args, config: &Path) -> anyhow::Result<()> {
    let s = Session::connect(config).await?;
    let dir = s.directory.current();
    let filters = subject::readable_filters(&dir, &s.identity.org);
    let start = match &a.since {
        Some(d) => Some(varde_bus::time::ago(
            varde_bus::time::parse_duration(d).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let cfg = if a.durable {
        let name = s
            .settings
            .value
            .consumer
            .durable
            .clone()
            .unwrap_or_else(|| s.identity.org.to_string());
        let mut c = InboxConfig::durable(name, filters);
        c.create = s.settings.value.consumer.create;
        c
    } else if !s.settings.value.consumer.create {
        // A provisioned broker lets a member read only its durable consumer:
        // a temporary consumer would be refused (after a timeout), so say
        // what works instead.
        anyhow::bail!(
            "{}: consumer.create = false (a provisioned broker): this identity may read only its durable consumer; run `varde tail --durable` (it acknowledges what it shows)",
            s.settings.file.display()
        );
    } else {
        InboxConfig::ephemeral(filters, start)
    };
    // `tail --since` re-shows history: no replay refusal across runs, but
    // within this run duplicates (multi-subject copies) are still folded.
    // The durable consumer is this identity's inbox: its replay memory is
    // kept beside the directory state, across runs.
    let opener = match (a.durable, s.settings.state_path()) {
        (true, Some(state)) => {
            let path = state.with_file_name(format!("replay-{}.bin", s.identity.org));
            Opener::persistent(s.identity.clone(), &path)
                .map_err(|e| anyhow::anyhow!("replay memory {}: {e}", path.display()))?
        }
        _ => Opener::new(s.identity.clone()),
    };
    let opener = Arc::new(opener);
    let mut inbox = Inbox::open(&s.js, &cfg, opener, s.directory.clone()).await?;
    if a.follow && s.settings.value.directory.watch {
        // A long-running tail adopts directory updates like any service.
        tokio::spawn(varde_bus::directory_kv::watch(
            s.js.clone(),
            s.directory.clone(),
        ));
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let stats = inbox.stats();
    if !a.follow && stats.pending.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return Ok(());
    }
    let mut shown = 0usize;
    loop {
        // Without --follow, stop once the consumer has been quiet a moment
        // (refused envelopes are never returned, so "pending == 0" alone
        // could wait forever after a refused last message).
        let next = if a.follow {
            inbox.next().await
        } else {
            match tokio::time::timeout(std::time::Duration::from_secs(3), inbox.next()).await {
                Ok(n) => n,
                Err(_) => break,
            }
        };
        let Some(d) = next else { break };
        let d = d?;
        let h = &d.opened.header;
        if a.kinds.is_empty() || a.kinds.contains(&h.kind) {
            if a.json {
                let payload: serde_json::Value =
                    serde_json::from_slice(&d.opened.payload.to_json()).unwrap_or_default();
                let line = serde_json::json!({"subject": d.subject, "seq": d.stream_sequence, "header": h, "payload": payload})
                    .to_string();
                println!("{}", render::json_terminal_safe(&line));
            } else {
                println!("{}\n", render::human(h, &d.opened.payload, colour));
            }
            shown += 1;
        }
        if a.durable && !a.no_receipts {
            receipt(&s, h, &d.opened.payload).await;
        }
        d.ack().await?;
        if a.limit.is_some_and(|l| shown >= l) {
            break;
        }
        if !a.follow && d.pending == 0 {
            break;
        }
    }
    Ok(())
}

/// Tells the CSIRT that its advisory or alert reached this org. The id is
/// derived from this identity's key and the warning, so showing it again
/// (another tail, after a crash before the ack) sends the same envelope,
/// which the broker and the CSIRT's store keep once. A receipt that cannot
/// be sent is reported and the tail goes on.
async fn receipt(s: &Session, h: &varde_schemas::Header, p: &varde_schemas::Payload) {
    let dir = s.directory.current();
    let Some(about) = kind_rules::receipt_about(&dir, &s.identity.org, h, p) else {
        return;
    };
    let sent = async {
        let (label, audience) = kind_rules::status_audience(&dir)?;
        let status = varde_schemas::Payload::Status(Status {
            about: about.clone(),
            state: RemediationState::Delivered,
            note: None,
            by: None,
        });
        let mut draft = Draft::new(&status, label, audience);
        draft.id = Some(s.identity.derived_id(&["delivered", &about]));
        let sealed = seal::seal(&s.identity, &dir, draft)?;
        transport::republish(&s.js, &sealed).await?;
        anyhow::Ok(())
    };
    if let Err(e) = sent.await {
        tracing::warn!(about = %render::terminal_safe(&about), error = %e, "delivered status not sent to the CSIRT");
    }
}
