//! normalise → route → drop (warninglists, duplicates) → batch: the hub's
//! transform stage, as a `Sink` that sources write into. Everything it
//! decides is counted in a `Summary`; what it keeps becomes `Work` for the
//! publisher.
//!
//! Two rules about labels (TLP 2.0, FIRST):
//! - a value inside a member's constituency is never dropped by a
//!   warninglist: lists describe what is noise for everyone, and an
//!   owner's own range is never noise to the owner (reserved ranges are on
//!   the default list, and some members do list private ranges);
//! - what a source labelled TLP:AMBER+STRICT or TLP:RED is not passed on
//!   at all (the hub may not share it outside the CSIRT); TLP:AMBER goes
//!   to owners and to the configured groups, never to the whole community.

use std::collections::HashMap;

use indicatif::ProgressBar;
use varde_schemas::payload::{Advisory, Indicator, IndicatorBatch, Notification, Payload};
use varde_schemas::{Audience, GroupId, OrgId, Tlp};

use super::dedup::{self, Dedup, Key};
use super::publish::Work;
use super::record::{Candidate, LocFn, Location, Sink};
use super::route::Router;
use super::summary::{MatchedAdvisory, Summary};
use super::warninglist::Warninglists;
use varde_bus::directory::VerifiedDirectory;

/// Where a batch goes, by the source's label; `None` means withheld.
pub fn broadcast(label: Tlp, amber_groups: &[GroupId]) -> Option<(Tlp, Audience)> {
    match label {
        Tlp::Clear | Tlp::Green => Some((Tlp::Green, Audience::community())),
        Tlp::Amber if !amber_groups.is_empty() => {
            Some((Tlp::Amber, Audience::groups(amber_groups.iter().cloned())))
        }
        Tlp::Amber | Tlp::AmberStrict | Tlp::Red => None,
    }
}

/// Groups TLP:AMBER batches go to: the configured ones, else every group.
pub fn amber_groups(configured: &[GroupId], dir: &VerifiedDirectory) -> Vec<GroupId> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let mut gs: Vec<GroupId> = dir.doc.groups.iter().map(|g| g.id.clone()).collect();
    for o in dir.orgs() {
        for g in &o.groups {
            if !gs.contains(g) {
                gs.push(g.clone());
            }
        }
    }
    gs.sort();
    gs
}

struct Batch {
    indicators: Vec<Indicator>,
    bytes: usize,
}

/// The transform stage of one ingest run.
pub struct Pipeline<'a> {
    pub summary: Summary,
    dir: &'a VerifiedDirectory,
    router: &'a Router,
    warninglists: &'a Warninglists,
    dedup: &'a mut Dedup,
    out: &'a mut (dyn FnMut(Work) + Send),
    source: String,
    amber_groups: Vec<GroupId>,
    batch_size: usize,
    batch_bytes: usize,
    batches: HashMap<Tlp, Batch>,
    now: u32,
    /// Dedup keys taken in this run, forgotten again if publishing fails.
    pub taken: Vec<Key>,
    progress: Option<ProgressBar>,
}

/// What a run looks findings up in, unchanged while it runs.
#[derive(Clone, Copy)]
pub struct Lookups<'a> {
    pub dir: &'a VerifiedDirectory,
    pub router: &'a Router,
    pub warninglists: &'a Warninglists,
}

impl<'a> Pipeline<'a> {
    pub fn new(
        source: impl Into<String>,
        Lookups {
            dir,
            router,
            warninglists,
        }: Lookups<'a>,
        dedup: &'a mut Dedup,
        amber_groups: Vec<GroupId>,
        batch_size: usize,
        out: &'a mut (dyn FnMut(Work) + Send),
    ) -> Self {
        let source = source.into();
        // Leave room in the 1 MiB envelope for one wrap (~250 bytes) per
        // key in the directory and the header.
        let wraps = dir.keys().count() * 260;
        let batch_bytes = varde_bus::envelope::MAX_ENVELOPE
            .saturating_sub(wraps + (32 << 10))
            .max(64 << 10);
        Pipeline {
            summary: Summary::new(source.clone()),
            dir,
            router,
            warninglists,
            dedup,
            out,
            source,
            amber_groups,
            batch_size: batch_size.clamp(1, varde_schemas::payload::MAX_INDICATORS),
            batch_bytes,
            batches: HashMap::new(),
            now: Dedup::now(),
            taken: Vec::new(),
            progress: None,
        }
    }

    pub fn with_progress(mut self, bar: ProgressBar) -> Self {
        self.progress = Some(bar);
        self
    }

    fn tick(&self) {
        if let Some(b) = &self.progress
            && self.summary.read.is_multiple_of(1024)
        {
            let s = &self.summary;
            b.set_position(s.read);
            b.set_message(format!(
                "accepted {} dup {} warninglist {} invalid {} routed {}",
                s.accepted, s.duplicates, s.warninglisted, s.invalid, s.routed
            ));
        }
    }

    fn first_time(&mut self, k: Key) -> bool {
        if self.dedup.first_time(k, self.now) {
            self.taken.push(k);
            true
        } else {
            self.summary.duplicates += 1;
            false
        }
    }

    fn org_id(&self, idx: u32) -> OrgId {
        self.dir.org_at(idx as usize).id.clone()
    }

    fn emit(&mut self, w: Work) {
        (self.out)(w);
    }

    fn batch(&mut self, label: Tlp, ind: Indicator) {
        let size = ind.value.len()
            + ind.comment.as_ref().map_or(0, String::len)
            + ind.tags.iter().map(|t| t.len() + 3).sum::<usize>()
            + 160;
        let full = {
            let b = self.batches.entry(label).or_insert_with(|| Batch {
                indicators: Vec::new(),
                bytes: 0,
            });
            b.indicators.len() >= self.batch_size || b.bytes + size > self.batch_bytes
        };
        if full {
            self.flush_one(label);
        }
        if let Some(b) = self.batches.get_mut(&label) {
            b.bytes += size;
            b.indicators.push(ind);
        }
        self.summary.batched += 1;
    }

    fn flush_one(&mut self, label: Tlp) {
        let Some(b) = self.batches.get_mut(&label) else {
            return;
        };
        if b.indicators.is_empty() {
            return;
        }
        let indicators = std::mem::take(&mut b.indicators);
        b.bytes = 0;
        if let Some((out_label, audience)) = broadcast(label, &self.amber_groups) {
            let payload = Payload::Indicator(IndicatorBatch {
                source: Some(self.source.clone()),
                description: None,
                indicators,
            });
            self.emit(Work {
                payload,
                label: out_label,
                audience,
            });
        }
    }

    /// Sends the partial batches. Call once at the end of a run.
    pub fn flush(&mut self) {
        let mut labels: Vec<Tlp> = self.batches.keys().copied().collect();
        labels.sort();
        for l in labels {
            self.flush_one(l);
        }
        if let Some(b) = &self.progress {
            b.set_position(self.summary.read);
        }
    }
}

impl Sink for Pipeline<'_> {
    fn indicator(&mut self, c: Candidate<'_>) {
        self.summary.read += 1;
        self.tick();
        let value = match varde_schemas::normalise::normalise(c.kind, c.value) {
            Ok(v) => v,
            Err(e) => {
                self.summary.add_invalid((c.location)(), e.to_string());
                return;
            }
        };
        let ind = Indicator {
            kind: c.kind,
            value,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            confidence: c.confidence,
            tags: c.tags,
            comment: c.comment.map(|s| s.chars().take(500).collect()),
        };
        let router = self.router;
        if let Some(routed) = router.route(&ind) {
            if c.label > Tlp::Amber {
                self.summary.withheld += 1;
                return;
            }
            if !self.first_time(dedup::key(ind.kind, &ind.value)) {
                return;
            }
            self.summary.accepted += 1;
            self.summary.routed += 1;
            for &org in routed.orgs {
                let to = self.org_id(org);
                let message = format!(
                    "{} {} in your constituency ({}) was reported by {}",
                    ind.kind, ind.value, routed.matched.value, self.source
                );
                let n = Notification {
                    indicator: ind.clone(),
                    matched: routed.matched.clone(),
                    source: self.source.clone(),
                    first_seen: ind.first_seen,
                    last_seen: ind.last_seen,
                    message,
                    advisory_id: c.advisory_id.map(str::to_string),
                };
                self.summary.notifications += 1;
                self.emit(Work {
                    payload: Payload::Notification(n),
                    label: Tlp::AmberStrict,
                    audience: Audience::orgs([to]),
                });
            }
            return;
        }
        if let Some(list) = self.warninglists.check(&ind) {
            self.summary.warninglisted += 1;
            *self
                .summary
                .by_warninglist
                .entry(list.to_string())
                .or_default() += 1;
            return;
        }
        // Batches are keyed by the label they go out under, so CLEAR and
        // GREEN input share one GREEN envelope.
        let Some((out_label, _)) = broadcast(c.label, &self.amber_groups) else {
            self.summary.withheld += 1;
            return;
        };
        if !self.first_time(dedup::key(ind.kind, &ind.value)) {
            return;
        }
        self.summary.accepted += 1;
        self.batch(out_label, ind);
    }

    fn advisory(&mut self, a: Advisory, label: Tlp, _location: LocFn<'_>) {
        self.summary.read += 1;
        self.tick();
        let Some((out_label, audience)) = broadcast(label, &self.amber_groups) else {
            self.summary.withheld += 1;
            return;
        };
        let rev = a.revision.to_string();
        if !self.first_time(dedup::key_of(&["advisory", &a.advisory_id, &rev])) {
            return;
        }
        self.summary.accepted += 1;
        self.summary.advisories += 1;
        let matches = self.router.assets(&a.affected);
        if !matches.is_empty() {
            self.summary.routed += 1;
        }
        let mut orgs = Vec::new();
        for (org, assets) in matches {
            let mut copy = a.clone();
            copy.matched_assets = assets;
            self.summary.notifications += 1;
            let to = self.org_id(org);
            orgs.push(to.clone());
            self.emit(Work {
                payload: Payload::Advisory(copy),
                label: Tlp::AmberStrict,
                audience: Audience::orgs([to]),
            });
        }
        if !orgs.is_empty() {
            self.summary.matched_advisories.push(MatchedAdvisory {
                advisory_id: a.advisory_id.clone(),
                title: a.title.clone(),
                severity: a.severity,
                orgs,
            });
        }
        self.emit(Work {
            payload: Payload::Advisory(a),
            label: out_label,
            audience,
        });
    }

    fn invalid(&mut self, location: Location, reason: String) {
        self.summary.read += 1;
        self.summary.add_invalid(location, reason);
    }

    fn skipped(&mut self, _location: LocFn<'_>, _reason: &'static str) {
        self.summary.read += 1;
        self.summary.skipped += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use varde_schemas::payload::IndicatorType::{self, Domain, Ipv4, Sha256};
    use varde_testkit::Synthetic;

    use super::*;
    use crate::record::At;

    fn here() -> Location {
        Location {
            file: Arc::from("feed.csv"),
            at: At::Line(1),
        }
    }

    /// One run of the pipeline over `values` with the shipped warninglists,
    /// in the demo directory; returns its summary and what it would publish.
    fn run(values: &[(IndicatorType, &str, Tlp)], dedup: &mut Dedup) -> (Summary, Vec<Work>) {
        let world = Synthetic::demo();
        let handle = world.handle().unwrap();
        let dir = handle.current();
        let router = Router::new(&dir);
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hub/warninglists");
        let warninglists = Warninglists::load(&[shipped]).unwrap();
        let mut out = Vec::new();
        let mut sink = |w| out.push(w);
        let lookups = Lookups {
            dir: &dir,
            router: &router,
            warninglists: &warninglists,
        };
        let mut p = Pipeline::new("csv:test", lookups, dedup, Vec::new(), 100, &mut sink);
        for &(kind, value, label) in values {
            p.indicator(Candidate::new(kind, value, label, &here));
        }
        p.flush();
        let summary = std::mem::take(&mut p.summary);
        drop(p);
        (summary, out)
    }

    fn dedup(dir: &tempfile::TempDir) -> Dedup {
        let window = std::time::Duration::from_secs(86400);
        Dedup::open(&dir.path().join("dedup.bin"), window).unwrap()
    }

    #[test]
    fn owners_get_notifications_noise_is_dropped_the_rest_is_batched() {
        let state = tempfile::tempdir().unwrap();
        let mut d = dedup(&state);
        let hash = "ab".repeat(32);
        let (s, out) = run(
            &[
                (Ipv4, "10.20.1.1", Tlp::Green),               // gjovik's address
                (Ipv4, "10.20.1.1", Tlp::Green),               // the same again
                (Domain, "google.com", Tlp::Green),            // known noise
                (Sha256, &hash, Tlp::Green),                   // nobody's: community batch
                (Ipv4, "10.30.2.2", Tlp::Red),                 // lillehammer's, but RED
                (Ipv4, "999.1.1.1", Tlp::Green),               // not an address
                (Domain, "idporten-fornyelse.no", Tlp::Amber), // AMBER, no groups to send to
            ],
            &mut d,
        );
        assert_eq!(
            (s.read, s.duplicates, s.warninglisted, s.withheld, s.invalid),
            (7, 1, 1, 2, 1),
            "{s:?}"
        );
        assert_eq!((s.routed, s.notifications, s.batched), (1, 1, 1), "{s:?}");

        let [notification, batch] = out.as_slice() else {
            panic!("expected a notification and one batch, got {out:?}");
        };
        assert_eq!(notification.label, Tlp::AmberStrict);
        assert_eq!(
            notification.audience,
            Audience::orgs([OrgId::new("gjovik").unwrap()])
        );
        let Payload::Notification(n) = &notification.payload else {
            panic!("{notification:?}");
        };
        assert_eq!(
            (n.indicator.value.as_str(), n.matched.value.as_str()),
            ("10.20.1.1", "10.20.0.0/16")
        );
        assert_eq!(
            (batch.label, &batch.audience),
            (Tlp::Green, &Audience::community())
        );
        let Payload::Indicator(b) = &batch.payload else {
            panic!("{batch:?}");
        };
        assert_eq!(b.indicators.len(), 1);
        assert_eq!(b.indicators[0].value, hash);
    }

    #[test]
    fn a_value_seen_in_an_earlier_run_is_a_duplicate_within_the_window() {
        let state = tempfile::tempdir().unwrap();
        let mut d = dedup(&state);
        let (first, _) = run(&[(Ipv4, "10.20.1.1", Tlp::Green)], &mut d);
        let (second, out) = run(&[(Ipv4, "10.20.1.1", Tlp::Green)], &mut d);
        assert_eq!(
            (first.accepted, second.accepted, second.duplicates),
            (1, 0, 1)
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn batches_split_at_the_batch_size() {
        let state = tempfile::tempdir().unwrap();
        let mut d = dedup(&state);
        let hashes: Vec<String> = (0..250).map(|i| format!("{i:064x}")).collect();
        let values: Vec<_> = hashes
            .iter()
            .map(|h| (Sha256, h.as_str(), Tlp::Clear))
            .collect();
        let (s, out) = run(&values, &mut d);
        let sizes: Vec<usize> = out
            .iter()
            .map(|w| match &w.payload {
                Payload::Indicator(b) => b.indicators.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!((s.batched, sizes), (250, vec![100, 100, 50]));
        assert!(
            out.iter().all(|w| w.label == Tlp::Green),
            "CLEAR goes out as GREEN"
        );
    }
}
