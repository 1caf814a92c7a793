//! Members' sightings, aggregated per value. The hub republishes only a
//! count ("seen by N member organisations in 24 h"), to the community, and
//! only once at least `threshold` distinct orgs saw the value within the
//! window; who saw it is never revealed. Counting uses the envelope's
//! verified sender org, never what the payload claims.
//!
//! Sightings labelled above TLP:AMBER are counted toward nothing: the
//! reporter asked for them not to travel further.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use varde_schemas::payload::{IndicatorType, Sighting, SightingAggregate};
use varde_schemas::{OrgId, Tlp};

#[derive(Default, Serialize, Deserialize)]
struct Entry {
    /// org → last report (Unix seconds)
    orgs: HashMap<OrgId, i64>,
    /// count last published and when
    published: u32,
    published_at: i64,
}

/// What one sighting led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Counted; `orgs` distinct orgs within the window so far.
    Counted {
        orgs: u32,
    },
    /// Counted, and the count reached a new high at or above the
    /// threshold: publish this aggregate.
    Publish(Sighting),
    Ignored(&'static str),
}

pub struct SightingDesk {
    threshold: u32,
    window: Duration,
    values: HashMap<(IndicatorType, String), Entry>,
    path: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    values: Vec<(IndicatorType, String, Entry)>,
}

impl SightingDesk {
    pub fn new(threshold: u32, window: Duration) -> Self {
        SightingDesk {
            threshold: threshold.max(1),
            window,
            values: HashMap::new(),
            path: None,
        }
    }

    /// Kept in `path` (written after every change; small).
    pub fn open(threshold: u32, window: Duration, path: PathBuf) -> std::io::Result<Self> {
        let mut d = SightingDesk::new(threshold, window);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{}: {e}; move it away to start counting afresh",
                            path.display()
                        ),
                    )
                })?;
                d.values = saved
                    .values
                    .into_iter()
                    .map(|(k, v, e)| ((k, v), e))
                    .collect();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        d.path = Some(path);
        Ok(d)
    }

    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let saved = Saved {
            values: self
                .values
                .iter()
                .map(|((k, v), e)| {
                    (
                        *k,
                        v.clone(),
                        Entry {
                            orgs: e.orgs.clone(),
                            published: e.published,
                            published_at: e.published_at,
                        },
                    )
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }

    fn window_secs(&self) -> i64 {
        self.window.as_secs().min(i64::MAX as u64) as i64
    }

    /// Counts one sighting sent by `sender` under `label`.
    pub fn record(&mut self, sender: &OrgId, label: Tlp, s: &Sighting, now: Timestamp) -> Outcome {
        if s.aggregate.is_some() {
            return Outcome::Ignored("an aggregate, not a member's sighting");
        }
        if label > Tlp::Amber {
            return Outcome::Ignored("labelled above TLP:AMBER");
        }
        let Ok(value) = varde_schemas::normalise::normalise(s.kind, &s.value) else {
            return Outcome::Ignored("invalid value");
        };
        let now_s = now.as_second();
        let window = self.window_secs();
        let e = self.values.entry((s.kind, value.clone())).or_default();
        e.orgs.retain(|_, t| now_s - *t < window);
        e.orgs.insert(sender.clone(), now_s);
        if now_s - e.published_at >= window {
            e.published = 0;
        }
        let n = e.orgs.len() as u32;
        let out = if n >= self.threshold && n > e.published {
            e.published = n;
            e.published_at = now_s;
            let hours = (self.window.as_secs() / 3600).max(1) as u32;
            Outcome::Publish(Sighting {
                kind: s.kind,
                value,
                seen_at: now,
                note: Some(format!("seen by {n} member organisations in {hours} h")),
                reporter: None,
                aggregate: Some(SightingAggregate {
                    orgs: n,
                    window_hours: hours,
                }),
            })
        } else {
            Outcome::Counted { orgs: n }
        };
        self.prune(now_s);
        out
    }

    fn prune(&mut self, now_s: i64) {
        let window = self.window_secs();
        self.values.retain(|_, e| {
            e.orgs.values().any(|t| now_s - *t < window) || now_s - e.published_at < window
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_distinct_orgs_window() {
        let mut d = SightingDesk::new(3, Duration::from_secs(24 * 3600));
        let s = Sighting {
            kind: IndicatorType::Domain,
            value: "Evil.Example".into(),
            seen_at: Timestamp::now(),
            note: None,
            reporter: None,
            aggregate: None,
        };
        let o = |x: &str| OrgId::new(x).unwrap();
        let t0 = Timestamp::now();
        assert_eq!(
            d.record(&o("a"), Tlp::Amber, &s, t0),
            Outcome::Counted { orgs: 1 }
        );
        assert_eq!(
            d.record(&o("a"), Tlp::Amber, &s, t0),
            Outcome::Counted { orgs: 1 }
        );
        assert_eq!(
            d.record(&o("b"), Tlp::Green, &s, t0),
            Outcome::Counted { orgs: 2 }
        );
        assert_eq!(
            d.record(&o("c"), Tlp::AmberStrict, &s, t0),
            Outcome::Ignored("labelled above TLP:AMBER")
        );
        let Outcome::Publish(p) = d.record(&o("c"), Tlp::Amber, &s, t0) else {
            panic!()
        };
        assert_eq!(
            p.aggregate,
            Some(SightingAggregate {
                orgs: 3,
                window_hours: 24
            })
        );
        assert_eq!(p.value, "evil.example");
        assert!(p.reporter.is_none());
        // the same three again publish nothing new; a fourth raises the count
        assert_eq!(
            d.record(&o("b"), Tlp::Amber, &s, t0),
            Outcome::Counted { orgs: 3 }
        );
        assert!(matches!(
            d.record(&o("d"), Tlp::Amber, &s, t0),
            Outcome::Publish(_)
        ));
        // a day later the old reports have expired
        let later = t0 + jiff::SignedDuration::from_hours(25);
        assert_eq!(
            d.record(&o("a"), Tlp::Amber, &s, later),
            Outcome::Counted { orgs: 1 }
        );
    }
}
