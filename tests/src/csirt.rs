//! The CSIRT's hub for campaign tests: its inbox of sightings and
//! statuses, a sighting desk and the campaign desk, on a test bus.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use varde_bus::inbox::Inbox;
use varde_campaign::Desk;
use varde_hub::Hub;
use varde_hub::run::{campaign_desk, hub_inbox};
use varde_hub::settings::HubSettings;
use varde_hub::sighting::SightingDesk;
use varde_hub::warninglist::Warninglists;
use varde_schemas::Payload;
use varde_schemas::payload::{Advisory, Severity};

use crate::BusFixture;

/// kcsirt's hub on `bus` with `state` as its state dir; the campaign desk
/// looks for reminders every 200 ms.
pub fn hub(bus: &BusFixture, state: &Path) -> Result<Hub> {
    Ok(Hub::new(
        bus.identity("kcsirt"),
        bus.handle.clone(),
        bus.js.clone(),
        HubSettings {
            state_dir: state.to_path_buf(),
            campaign_tick: Duration::from_millis(200),
            ..HubSettings::default()
        },
        Warninglists::load(&[])?,
    )?)
}

/// The hub, its inbox, a sighting desk and the campaign desk.
pub async fn csirt(bus: &BusFixture, state: &Path) -> Result<(Hub, Inbox, SightingDesk, Desk)> {
    let h = hub(bus, state)?;
    let inbox = hub_inbox(&h, true).await?;
    let sightings = SightingDesk::open(3, Duration::from_secs(3600), state.join("sightings.json"))?;
    let desk = campaign_desk(&h)?;
    Ok((h, inbox, sightings, desk))
}

/// A critical advisory from the CSIRT, affecting nothing in particular.
pub fn advisory(id: &str, title: &str) -> Payload {
    Payload::Advisory(Advisory {
        advisory_id: id.into(),
        revision: 1,
        title: title.into(),
        summary: "Exploited in the wild.".into(),
        severity: Severity::Critical,
        cves: vec![],
        affected: vec![],
        actions: vec!["Patch today".into()],
        references: vec![],
        sectors: vec![],
        published: jiff::Timestamp::now(),
        changes: None,
        matched_assets: vec![],
    })
}
