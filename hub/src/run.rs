//! `varde hub run`: the configured sources on their schedules (or as drop
//! folders), and the hub's inbox of members' sightings, until SIGINT or
//! SIGTERM. One source runs at a time: they share the dedup store, and the
//! seal stage already uses every core.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt as _;
use jiff::Timestamp;
use varde_schemas::{Audience, Kind, OrgId, Payload, Tlp};

use super::Hub;
use super::settings::SourceSettings;
use super::sighting::{Outcome, SightingDesk};
use super::source::Input;
use varde_bus::inbox::{Inbox, InboxConfig, InboxError};
use varde_bus::seal::{self, Draft, Opener};
use varde_campaign::Desk;

/// How often a drop folder is looked at when the source sets no `every`.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Counters of the sighting consumer.
#[derive(Debug, Default, Clone)]
pub struct SightingStats {
    pub received: u64,
    pub counted: u64,
    pub ignored: u64,
    pub published: u64,
}

/// What the hub's durable reads of its org's stream: sightings to count,
/// statuses and incidents for the campaign desk and the board. Provisioning
/// (`varde nats provision`) makes the consumer with these filters.
pub fn hub_filters(csirt: &OrgId) -> Vec<String> {
    [Kind::Sighting, Kind::Status, Kind::Incident]
        .iter()
        .map(|k| format!("{}.*.org.{csirt}.{k}", varde_bus::subject::PREFIX))
        .collect()
}

/// The hub's durable inbox on its org's stream ([`hub_filters`]).
pub async fn hub_inbox(hub: &Hub, create: bool) -> Result<Inbox, InboxError> {
    let me = &hub.identity.org;
    let durable = hub
        .settings
        .durable
        .clone()
        .unwrap_or_else(|| format!("{me}-hub"));
    let mut cfg = InboxConfig::durable(durable, hub_filters(me));
    cfg.create = create;
    // Sightings are counted and statuses recorded once each, across
    // restarts too.
    let replay = hub.settings.state_dir.join("replay.bin");
    let opener = Opener::persistent(hub.identity.clone(), &replay)?;
    Inbox::open(&hub.js, &cfg, Arc::new(opener), hub.directory.clone()).await
}

/// `[hub.auto_campaign]`: opens a campaign for each advisory in `summary`
/// that matched orgs' assets and is severe enough, targeting those orgs.
/// Called after the ingest has stored the advisories, so each org's
/// opening follows its copy of the advisory (and its bridge posts it in the
/// advisory's thread). An advisory that has a campaign already (an earlier
/// revision, or one opened by hand) gets none.
pub async fn auto_campaigns(
    hub: &Hub,
    summary: &crate::summary::Summary,
) -> Result<Vec<varde_campaign::CampaignRecord>, varde_campaign::desk::DeskError> {
    let Some(rule) = &hub.settings.auto_campaign else {
        return Ok(Vec::new());
    };
    let due: Vec<_> = summary
        .matched_advisories
        .iter()
        .filter(|m| m.severity >= rule.min_severity)
        .collect();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let mut desk = campaign_desk(hub)?;
    let mut opened = Vec::new();
    for m in due {
        if desk.store.find(&m.advisory_id)?.is_some() {
            continue;
        }
        let now = Timestamp::now();
        let spec = varde_campaign::OpenSpec {
            about: m.advisory_id.clone(),
            title: format!(
                "{} ({}): tell the CSIRT where you stand",
                m.title,
                m.severity.as_str()
            ),
            targets: m.orgs.clone(),
            deadline: jiff::SignedDuration::try_from(rule.deadline)
                .ok()
                .map(|d| now + d),
            remind_every: rule.remind_every,
        };
        let c = desk.open(spec, now).await?;
        tracing::info!(campaign = %c.id, about = %c.about, orgs = m.orgs.len(), "campaign opened by [hub.auto_campaign]");
        opened.push(c);
    }
    Ok(opened)
}

/// The campaign desk of `hub`: its store in the hub's state dir.
pub fn campaign_desk(hub: &Hub) -> Result<Desk, varde_campaign::StoreError> {
    let store = varde_campaign::Store::open(&hub.settings.campaign_store())?;
    Ok(Desk::new(
        store,
        hub.identity.clone(),
        hub.directory.clone(),
        hub.js.clone(),
    ))
}

/// Handles the hub's inbox until it ends, or until nothing arrived for
/// `idle` when given (tests, one-shot runs): sightings are counted,
/// statuses go to the campaign desk, and every `campaign_tick` the desk
/// sends what is due (openings, reminders). Each delivery is acked only
/// after its effect is saved (and any aggregate is stored on the bus).
pub async fn serve_inbox(
    hub: &Hub,
    desk: &mut SightingDesk,
    campaigns: &mut Desk,
    inbox: &mut Inbox,
    idle: Option<Duration>,
) -> anyhow::Result<SightingStats> {
    let mut stats = SightingStats::default();
    let mut clock = tokio::time::interval(hub.settings.campaign_tick);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Only a delivery counts as activity for `idle`, not the clock.
    let mut quiet_until = idle.map(|i| tokio::time::Instant::now() + i);
    loop {
        let next = tokio::select! {
            n = inbox.next() => n,
            _ = clock.tick() => {
                // A step that fails (the bus or the store briefly away) is
                // logged and tried again on the next tick: the store says
                // what is still due, and a redone step is the same envelope.
                let now = Timestamp::now();
                if let Err(e) = campaigns.send_pending(now).await {
                    tracing::warn!(error = %e, "campaign openings not sent; retrying on the next tick");
                }
                if let Err(e) = campaigns.remind_due(now).await {
                    tracing::warn!(error = %e, "campaign reminders not sent; retrying on the next tick");
                }
                continue;
            }
            _ = async {
                match quiet_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => return Ok(stats),
        };
        quiet_until = idle.map(|i| tokio::time::Instant::now() + i);
        let Some(d) = next else { return Ok(stats) };
        let d = d?;
        stats.received += 1;
        let h = &d.opened.header;
        let s = match &d.opened.payload {
            Payload::Sighting(s) => s,
            Payload::Status(_) | Payload::Incident(_) => {
                let handled = campaigns.handle(&d)?;
                tracing::debug!(id = %h.id, kind = %h.kind, ?handled, "recorded for the board");
                d.ack_confirmed().await?;
                continue;
            }
            _ => {
                d.ack().await?;
                continue;
            }
        };
        let ind = varde_schemas::payload::Indicator::new(s.kind, &s.value);
        let noise = ind
            .as_ref()
            .ok()
            .and_then(|i| hub.warninglists.check(i))
            .is_some();
        let outcome = if h.sender.org == hub.identity.org {
            Outcome::Ignored("the hub's own message")
        } else if noise {
            Outcome::Ignored("on a warninglist")
        } else {
            desk.record(&h.sender.org, h.label, s, Timestamp::now())
        };
        match outcome {
            Outcome::Publish(agg) => {
                let (dir, _) = hub.tables();
                let sealed = seal::seal(
                    &hub.identity,
                    &dir,
                    Draft::new(&Payload::Sighting(agg), Tlp::Green, Audience::community()),
                )?;
                varde_bus::transport::publish(&hub.js, &sealed).await?;
                stats.counted += 1;
                stats.published += 1;
                tracing::info!(id = %sealed.id(), "published a sighting count");
            }
            Outcome::Counted { .. } => stats.counted += 1,
            Outcome::Ignored(why) => {
                stats.ignored += 1;
                tracing::debug!(id = %h.id, why, "sighting not counted");
            }
        }
        desk.save()?;
        d.ack_confirmed().await?;
    }
}

/// Files of a drop folder by (modified, length), to see what is new.
fn snapshot(dir: &std::path::Path) -> HashMap<PathBuf, (SystemTime, u64)> {
    let mut out = HashMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata()
                && m.is_file()
            {
                out.insert(
                    e.path(),
                    (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()),
                );
            }
        }
    }
    out
}

/// Runs one configured source forever.
async fn run_source(hub: Arc<Hub>, src: SourceSettings, location: String) {
    let opts = hub.options(&src.name, Some(&src));
    let every = src.every.unwrap_or(if src.watch {
        WATCH_EVERY
    } else {
        Duration::from_secs(3600)
    });
    let mut seen: HashMap<PathBuf, (SystemTime, u64)> = HashMap::new();
    loop {
        let inputs: Vec<Input> = if src.watch {
            let now = snapshot(std::path::Path::new(&location));
            let mut fresh: Vec<PathBuf> = now
                .iter()
                .filter(|(p, v)| seen.get(*p) != Some(v))
                .map(|(p, _)| p.clone())
                .collect();
            fresh.sort();
            seen = now;
            fresh.into_iter().map(Input::Path).collect()
        } else {
            match Input::parse(&location) {
                Ok(i) => vec![i],
                Err(e) => {
                    tracing::error!(source = %src.name, error = %e, "bad source location");
                    return;
                }
            }
        };
        for input in inputs {
            // A panic (a parser bug some input ran into) costs this input
            // only: the source keeps its schedule.
            let ingest = async {
                panic_hook(&input);
                hub.ingest(src.kind, &input, &opts, None).await
            };
            let ingested = std::panic::AssertUnwindSafe(ingest).catch_unwind().await;
            let Ok(ingested) = ingested else {
                tracing::error!(source = %src.name, input = %input.display(), "panic while ingesting; this input is skipped, the source keeps its schedule");
                continue;
            };
            match ingested {
                Ok(s) => {
                    tracing::info!(
                        source = %src.name, input = %input.display(), read = s.read, accepted = s.accepted,
                        duplicates = s.duplicates, warninglisted = s.warninglisted, invalid = s.invalid,
                        withheld = s.withheld, routed = s.routed, published = s.published, "ingested"
                    );
                    if let Err(e) = auto_campaigns(&hub, &s).await {
                        tracing::error!(source = %src.name, error = %e, "automatic campaigns not opened");
                    }
                }
                Err(e) => {
                    tracing::error!(source = %src.name, input = %input.display(), error = %e, "ingest failed")
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Fault injection for the containment above, in debug builds only (the
/// test suite's): an input whose name contains `VARDE_HUB_PANIC_ON`
/// panics as a parser bug would. Release builds have no such hook.
fn panic_hook(input: &Input) {
    #[cfg(debug_assertions)]
    if let Ok(marker) = std::env::var("VARDE_HUB_PANIC_ON")
        && !marker.is_empty()
        && input.display().contains(marker.as_str())
    {
        panic!("VARDE_HUB_PANIC_ON: injected panic for {}", input.display());
    }
    #[cfg(not(debug_assertions))]
    let _ = input;
}

/// The service: every source, the sighting consumer, until a signal.
pub async fn run(
    hub: Arc<Hub>,
    sources: Vec<(SourceSettings, String)>,
    create_consumer: bool,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for (src, location) in sources {
        tracing::info!(source = %src.name, kind = src.kind.as_str(), %location, watch = src.watch, "source scheduled");
        tasks.push(tokio::spawn(run_source(hub.clone(), src, location)));
    }
    let s = &hub.settings;
    let mut desk = SightingDesk::open(
        s.sighting_threshold,
        s.sighting_window,
        s.state_dir.join("sightings.json"),
    )?;
    let mut campaigns = campaign_desk(&hub)?;
    let mut inbox = hub_inbox(&hub, create_consumer).await?;
    tracing::info!(org = %hub.identity.org, "hub running; consuming sightings and statuses");
    let served = serve_inbox(&hub, &mut desk, &mut campaigns, &mut inbox, None);
    let result = tokio::select! {
        r = served => r.map(|_| ()),
        _ = shutdown() => {
            tracing::info!("stopping");
            Ok(())
        }
    };
    for t in tasks {
        t.abort();
    }
    result
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
