//! What one ingest did, for the operator: printed at the end of
//! `varde ingest` (or as JSON with `--json`) and logged by `varde hub run`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::record::Location;

/// How many invalid records are kept with their location; the count goes on.
pub const MAX_LISTED: usize = 1000;

#[derive(Clone, Debug, Serialize)]
pub struct InvalidRecord {
    pub location: String,
    pub reason: String,
}

/// Counters of one run. `read` = `accepted` + `duplicates` +
/// `warninglisted` + `invalid` + `skipped` + `withheld`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub source: String,
    /// Values and records read (a `domain|ip` attribute is two values).
    pub read: u64,
    /// Valid, new, not on a warninglist, shareable: went on to routing.
    pub accepted: u64,
    /// Seen within the dedup window.
    pub duplicates: u64,
    /// Dropped by a warninglist.
    pub warninglisted: u64,
    pub invalid: u64,
    /// Valid but not for sharing by design (MISP `to_ids = false`,
    /// revoked or expired STIX indicators).
    pub skipped: u64,
    /// Labelled TLP:AMBER+STRICT or TLP:RED by the source: the hub may not
    /// pass those on to anyone.
    pub withheld: u64,
    /// Accepted items that matched an owner (constituency or assets).
    pub routed: u64,
    /// AMBER+STRICT envelopes to owners (notifications, matched advisories).
    pub notifications: u64,
    /// Indicators sent in community/group batches.
    pub batched: u64,
    pub advisories: u64,
    /// Envelopes stored by the broker (PubAck received).
    pub published: u64,
    /// Drops per warninglist name.
    pub by_warninglist: BTreeMap<String, u64>,
    /// Invalid records with their place (first `MAX_LISTED`).
    pub invalid_records: Vec<InvalidRecord>,
    /// Advisories whose affected products matched orgs' assets, with those
    /// orgs (for `[hub.auto_campaign]`).
    #[serde(skip)]
    pub matched_advisories: Vec<MatchedAdvisory>,
}

/// An advisory sent to the orgs running what it affects.
#[derive(Clone, Debug)]
pub struct MatchedAdvisory {
    pub advisory_id: String,
    pub title: String,
    pub severity: varde_schemas::payload::Severity,
    pub orgs: Vec<varde_schemas::OrgId>,
}

impl Summary {
    pub fn new(source: impl Into<String>) -> Self {
        Summary {
            source: source.into(),
            ..Default::default()
        }
    }

    pub(crate) fn add_invalid(&mut self, location: Location, reason: String) {
        self.invalid += 1;
        if self.invalid_records.len() < MAX_LISTED {
            self.invalid_records.push(InvalidRecord {
                location: location.to_string(),
                reason,
            });
        }
    }

    /// Adds another run's counters (a `hub run` cycle over several files).
    pub fn merge(&mut self, o: &Summary) {
        self.read += o.read;
        self.accepted += o.accepted;
        self.duplicates += o.duplicates;
        self.warninglisted += o.warninglisted;
        self.invalid += o.invalid;
        self.skipped += o.skipped;
        self.withheld += o.withheld;
        self.routed += o.routed;
        self.notifications += o.notifications;
        self.batched += o.batched;
        self.advisories += o.advisories;
        self.published += o.published;
        for (k, v) in &o.by_warninglist {
            *self.by_warninglist.entry(k.clone()).or_default() += v;
        }
        for r in &o.invalid_records {
            if self.invalid_records.len() < MAX_LISTED {
                self.invalid_records.push(r.clone());
            }
        }
        self.matched_advisories
            .extend(o.matched_advisories.iter().cloned());
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ingest of {}", self.source)?;
        let rows: [(&str, u64, &str); 12] = [
            ("read", self.read, "values and records read"),
            ("accepted", self.accepted, "valid, new, not noise"),
            (
                "duplicates",
                self.duplicates,
                "seen within the dedup window",
            ),
            ("warninglist", self.warninglisted, "dropped as known noise"),
            ("invalid", self.invalid, "reported below, skipped"),
            (
                "skipped",
                self.skipped,
                "not for detection (to_ids=false, revoked, expired)",
            ),
            (
                "withheld",
                self.withheld,
                "TLP:AMBER+STRICT/RED from the source: not passed on",
            ),
            (
                "routed",
                self.routed,
                "matched an owner's constituency or assets",
            ),
            (
                "notifications",
                self.notifications,
                "AMBER+STRICT envelopes to owners",
            ),
            (
                "batched",
                self.batched,
                "indicators in community/group batches",
            ),
            ("advisories", self.advisories, "advisories accepted"),
            ("published", self.published, "envelopes stored on the bus"),
        ];
        for (k, v, what) in rows {
            writeln!(f, "  {k:<14}{v:>9}  {what}")?;
        }
        for (list, n) in &self.by_warninglist {
            writeln!(f, "    warninglist {list}: {n}")?;
        }
        for r in &self.invalid_records {
            writeln!(f, "  invalid {}: {}", r.location, r.reason)?;
        }
        if self.invalid > self.invalid_records.len() as u64 {
            writeln!(
                f,
                "  … and {} more invalid records",
                self.invalid - self.invalid_records.len() as u64
            )?;
        }
        Ok(())
    }
}
