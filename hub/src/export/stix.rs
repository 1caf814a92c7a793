//! A STIX 2.1 bundle of opened envelopes. Each object carries the OASIS
//! TLP 2.0 marking-definition of its envelope's label in
//! `object_marking_refs`, and the bundle includes those marking-definition
//! objects (the TLP 2.0 extension defines them as ordinary objects, not as
//! ids every consumer knows, so a bundle must carry the ones it uses).
//!
//! The bundle passes the OASIS validator (`stix2_validator --strict`) but
//! for one SHOULD: reference URLs of advisories and alerts carry no
//! `hashes` (check 302; see the README's STIX export section).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use varde_schemas::payload::{Indicator, IndicatorType, Payload};
use varde_schemas::{OrgId, Tlp};

use super::{stix_time, uuid5};
use varde_bus::seal::Opened;

/// The OASIS TLP 2.0 extension definition.
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// The id of a STIX domain or relationship object, `<type>--<uuid>`.
///
/// STIX 2.1 (section 2.9) asks SDOs and SROs to use UUIDv4 and keeps
/// name-based UUIDv5 for cyber observables; the OASIS validator (check 103)
/// reads the version nibble. The export still wants ids that depend only on
/// what they name: a re-export of the same envelopes gives the same ids, so
/// a consumer (a TIP importing every night) updates objects instead of
/// piling up copies, and the same value from two envelopes is one object
/// in the bundle (`Builder::add` relies on that). So the id is the
/// name-based UUIDv5 of `parts` with its version nibble set to 4; the
/// variant is RFC 9562's in both. That keeps the 122 hashed bits, as unique
/// as the v5 id was, in the shape of a v4 id. The trade-off: the bits are
/// not random as v4 promises. Anyone who knows the parts (type and value,
/// org name, envelope id) can compute the id; that is what lets exports
/// dedupe, and an id says nothing its object does not say itself.
fn sdo_id(kind: &str, parts: &[&str]) -> String {
    let named = uuid5(parts);
    let v4 = uuid::Builder::from_random_bytes(named.into_bytes()).into_uuid();
    format!("{kind}--{v4}")
}

/// At most `max` characters of `s`, ending in "…" when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Longest indicator `name` (the value; URLs can run to kilobytes).
const NAME_MAX: usize = 200;

/// The OASIS marking-definition object of a label.
pub fn marking_definition(t: Tlp) -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": t.stix_marking_id(),
        "created": "2022-10-01T00:00:00.000Z",
        "name": t.as_str(),
        "extensions": {
            TLP2_EXTENSION: {
                "extension_type": "property-extension",
                "tlp_2_0": t.short(),
            }
        }
    })
}

/// The STIX pattern for a value, or None for CVEs (exported as
/// `vulnerability` objects instead).
pub fn pattern(i: &Indicator) -> Option<String> {
    let q = |v: &str| v.replace('\\', "\\\\").replace('\'', "\\'");
    let v = q(&i.value);
    Some(match i.kind {
        IndicatorType::Ipv4 => format!("[ipv4-addr:value = '{v}']"),
        IndicatorType::Ipv6 => format!("[ipv6-addr:value = '{v}']"),
        IndicatorType::Cidr if i.value.contains(':') => format!("[ipv6-addr:value = '{v}']"),
        IndicatorType::Cidr => format!("[ipv4-addr:value = '{v}']"),
        IndicatorType::Domain | IndicatorType::Hostname => format!("[domain-name:value = '{v}']"),
        IndicatorType::Url => format!("[url:value = '{v}']"),
        IndicatorType::Email => format!("[email-addr:value = '{v}']"),
        IndicatorType::Md5 => format!("[file:hashes.MD5 = '{v}']"),
        IndicatorType::Sha1 => format!("[file:hashes.'SHA-1' = '{v}']"),
        IndicatorType::Sha256 => format!("[file:hashes.'SHA-256' = '{v}']"),
        IndicatorType::Asn => format!(
            "[autonomous-system:number = {}]",
            i.value.trim_start_matches("AS")
        ),
        IndicatorType::Cve => return None,
    })
}

struct Builder {
    /// By id: the strictest label of the envelopes it came in, and the object.
    objects: BTreeMap<String, (Tlp, Value)>,
    /// Sender identities by id; `finish` keeps those an object refers to.
    identities: BTreeMap<String, Value>,
}

impl Builder {
    fn identity(&mut self, org: &OrgId) -> String {
        let id = sdo_id("identity", &["org", org.as_str()]);
        self.identities.entry(id.clone()).or_insert_with(|| {
            json!({
                "type": "identity",
                "spec_version": "2.1",
                "id": id,
                "created": "2020-01-01T00:00:00.000Z",
                "modified": "2020-01-01T00:00:00.000Z",
                "name": org.as_str(),
                "identity_class": "organization",
            })
        });
        id
    }

    /// Adds an object; one seen twice keeps the stricter label.
    fn add(&mut self, label: Tlp, mut obj: Value) -> String {
        let id = obj["id"].as_str().unwrap_or_default().to_string();
        let label = match self.objects.get(&id) {
            Some((l, _)) => (*l).max(label),
            None => label,
        };
        obj["object_marking_refs"] = json!([label.stix_marking_id()]);
        self.objects.insert(id.clone(), (label, obj));
        id
    }

    /// An indicator, or for a CVE a vulnerability. Indicators SHOULD have a
    /// name and a description (validator check 303): the name is the value
    /// (cut to `NAME_MAX`), the description `context` (a notification's
    /// message, an alert's title), else the value's own comment, else
    /// `fallback` (what the envelope says about its values as a whole).
    fn indicator(
        &mut self,
        label: Tlp,
        by: &str,
        i: &Indicator,
        created: &str,
        context: Option<&str>,
        fallback: &str,
    ) -> String {
        let Some(p) = pattern(i) else {
            return self.vulnerability(label, by, &i.value, created);
        };
        let description = context.or(i.comment.as_deref()).unwrap_or(fallback);
        let mut o = json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": sdo_id("indicator", &["indicator", i.kind.as_str(), &i.value]),
            "created_by_ref": by,
            "created": created,
            "modified": created,
            "name": cut(&i.value, NAME_MAX),
            "description": description,
            "indicator_types": ["malicious-activity"],
            "pattern": p,
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": i.first_seen.map(stix_time).unwrap_or_else(|| created.to_string()),
        });
        if let Some(c) = i.confidence {
            o["confidence"] = json!(c);
        }
        if !i.tags.is_empty() {
            o["labels"] = json!(i.tags);
        }
        self.add(label, o)
    }

    fn vulnerability(&mut self, label: Tlp, by: &str, cve: &str, created: &str) -> String {
        self.add(
            label,
            json!({
                "type": "vulnerability",
                "spec_version": "2.1",
                "id": sdo_id("vulnerability", &["cve", cve]),
                "created_by_ref": by,
                "created": created,
                "modified": created,
                "name": cve,
                "external_references": [{"source_name": "cve", "external_id": cve}],
            }),
        )
    }

    /// The objects of the bundle: the marking-definitions in use, the
    /// identities an object names as its creator, then the objects. An
    /// identity carries the least strict label among the objects it
    /// created: its name reached the reader with each of them.
    fn finish(self) -> Vec<Value> {
        let mut by: BTreeMap<String, Tlp> = BTreeMap::new();
        for (label, o) in self.objects.values() {
            if let Some(c) = o["created_by_ref"].as_str() {
                let l = by.entry(c.to_string()).or_insert(*label);
                *l = (*l).min(*label);
            }
        }
        let mut identities = Vec::new();
        for (id, mut o) in self.identities {
            if let Some(l) = by.get(&id) {
                o["object_marking_refs"] = json!([l.stix_marking_id()]);
                identities.push(o);
            }
        }
        let mut labels: Vec<Tlp> = self.objects.values().map(|(l, _)| *l).collect();
        labels.extend(by.values().copied());
        labels.sort();
        labels.dedup();
        let mut out: Vec<Value> = labels.into_iter().map(marking_definition).collect();
        out.extend(identities);
        out.extend(self.objects.into_values().map(|(_, v)| v));
        out
    }
}

/// Reference URLs as external references. No `hashes`: the export works
/// from what the bus delivered and fetches nothing (README, check 302).
fn url_refs(urls: &[String]) -> Vec<Value> {
    urls.iter()
        .map(|u| json!({"source_name": "reference", "url": u}))
        .collect()
}

/// The bundle of everything in `items` that STIX can express.
pub fn bundle(items: &[Opened]) -> Value {
    let mut b = Builder {
        objects: BTreeMap::new(),
        identities: BTreeMap::new(),
    };
    for o in items {
        let h = &o.header;
        let label = h.label;
        let by = b.identity(&h.sender.org);
        let created = stix_time(h.created);
        match &o.payload {
            Payload::Indicator(batch) => {
                let about = match (&batch.description, &batch.source) {
                    (Some(d), _) => d.clone(),
                    (None, Some(s)) => format!("Indicator from {s}"),
                    (None, None) => format!("Indicator shared by {}", h.sender.org),
                };
                for i in &batch.indicators {
                    b.indicator(label, &by, i, &created, None, &about);
                }
            }
            Payload::Notification(n) => {
                b.indicator(label, &by, &n.indicator, &created, Some(&n.message), "");
            }
            Payload::Alert(a) => {
                // Every alert is a `report` (with or without indicators):
                // STIX 2.1's object for published intelligence on a topic,
                // with a name, a text, a publication time and the objects
                // it is about, which is what an alert is. `note` and
                // `opinion` only annotate other objects, and `grouping`
                // is for context not yet analysed. An alert without
                // indicators is about no object; `object_refs` must not be
                // empty, so it names its sender, as an advisory without
                // CVEs does.
                let mut refs: Vec<String> = Vec::new();
                for i in &a.indicators {
                    let id = b.indicator(label, &by, i, &created, Some(&a.title), "");
                    if !refs.contains(&id) {
                        refs.push(id);
                    }
                }
                if refs.is_empty() {
                    refs.push(by.clone());
                }
                let mut tags = vec![format!("severity:{}", a.severity)];
                if a.urgent {
                    tags.push("urgent".into());
                }
                let mut r = json!({
                    "type": "report",
                    "spec_version": "2.1",
                    "id": sdo_id("report", &["alert", &h.id.to_string()]),
                    "created_by_ref": by,
                    "created": created,
                    "modified": created,
                    "name": a.title,
                    "report_types": ["threat-report"],
                    "published": created,
                    "object_refs": refs,
                    "labels": tags,
                });
                if !a.body.is_empty() {
                    r["description"] = json!(a.body);
                }
                let mut ext = url_refs(&a.references);
                if let Some(id) = &a.advisory_id {
                    ext.push(json!({"source_name": "varde-advisory", "external_id": id}));
                }
                if !ext.is_empty() {
                    r["external_references"] = json!(ext);
                }
                b.add(label, r);
            }
            Payload::Sighting(s) => {
                let Some(agg) = s.aggregate else { continue };
                let ind = Indicator {
                    kind: s.kind,
                    value: s.value.clone(),
                    first_seen: None,
                    last_seen: None,
                    confidence: None,
                    tags: Vec::new(),
                    comment: None,
                };
                let seen = format!(
                    "seen by {} member organisations in {} h",
                    agg.orgs, agg.window_hours
                );
                let of = b.indicator(label, &by, &ind, &created, None, &seen);
                if of.starts_with("indicator--") {
                    b.add(
                        label,
                        json!({
                            "type": "sighting",
                            "spec_version": "2.1",
                            "id": sdo_id("sighting", &["sighting", &h.id.to_string()]),
                            "created_by_ref": by,
                            "created": created,
                            "modified": created,
                            "sighting_of_ref": of,
                            "count": agg.orgs,
                            "description": seen,
                        }),
                    );
                }
            }
            Payload::Advisory(a) => {
                let mut refs: Vec<String> = a
                    .cves
                    .iter()
                    .map(|c| b.vulnerability(label, &by, c, &created))
                    .collect();
                if refs.is_empty() {
                    refs.push(by.clone());
                }
                let mut desc = a.summary.clone();
                if !a.affected.is_empty() {
                    desc.push_str("\n\nAffected: ");
                    desc.push_str(
                        &a.affected
                            .iter()
                            .map(|p| match &p.versions {
                                Some(v) => format!("{} {} {v}", p.vendor, p.product),
                                None => format!("{} {}", p.vendor, p.product),
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                }
                let mut r = json!({
                    "type": "report",
                    "spec_version": "2.1",
                    "id": sdo_id("report", &["advisory", &a.advisory_id, &a.revision.to_string()]),
                    "created_by_ref": by,
                    "created": created,
                    "modified": created,
                    "name": a.title,
                    "description": desc,
                    "report_types": ["vulnerability"],
                    "published": stix_time(a.published),
                    "object_refs": refs,
                });
                let ext = url_refs(&a.references);
                if !ext.is_empty() {
                    r["external_references"] = json!(ext);
                }
                b.add(label, r);
            }
            // Statuses and campaign messages are the CSIRT's follow-up
            // bookkeeping, not intelligence: never exported.
            Payload::Ack(_)
            | Payload::Chat(_)
            | Payload::Incident(_)
            | Payload::Status(_)
            | Payload::Campaign(_) => {}
        }
    }
    json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid::Uuid::new_v4()),
        "objects": b.finish(),
    })
}

#[cfg(test)]
mod tests {
    use varde_schemas::payload::{
        Advisory, Alert, IndicatorBatch, Match, MatchKind, Notification, Severity, Sighting,
        SightingAggregate,
    };
    use varde_schemas::{Audience, Header, KeyId, Kind, Sender};

    use super::*;

    fn opened(label: Tlp, kind: Kind, payload: Payload) -> Opened {
        Opened {
            header: Header {
                v: 1,
                id: uuid::Uuid::now_v7(),
                kind,
                label,
                sender: Sender {
                    org: OrgId::new("kcsirt").unwrap(),
                    key: KeyId([7; 8]),
                },
                audience: Audience::default(),
                created: "2026-03-02T08:15:00Z".parse().unwrap(),
                expires: None,
            },
            payload,
            size: 0,
        }
    }

    fn value(kind: IndicatorType, v: &str) -> Indicator {
        Indicator {
            kind,
            value: v.into(),
            first_seen: None,
            last_seen: None,
            confidence: None,
            tags: Vec::new(),
            comment: None,
        }
    }

    fn alert(indicators: Vec<Indicator>) -> Payload {
        Payload::Alert(Alert {
            title: "Phishing wave against ID-porten".into(),
            body: "Block the sender domain.".into(),
            severity: Severity::High,
            urgent: true,
            references: vec!["https://nsm.example/varsel/1".into()],
            indicators,
            advisory_id: Some("KCSIRT-2026-0042".into()),
        })
    }

    /// One envelope of every kind the export expresses.
    fn sample() -> Vec<Opened> {
        let mut with_comment = value(IndicatorType::Domain, "evil.example");
        with_comment.comment = Some("C2 of the phishing kit".into());
        vec![
            opened(
                Tlp::Green,
                Kind::Indicator,
                Payload::Indicator(IndicatorBatch {
                    source: Some("misp:norcert".into()),
                    description: None,
                    indicators: vec![
                        value(IndicatorType::Ipv4, "198.51.100.7"),
                        with_comment,
                        value(IndicatorType::Cve, "CVE-2024-3400"),
                        value(
                            IndicatorType::Url,
                            &format!("https://x.example/{}", "a".repeat(500)),
                        ),
                    ],
                }),
            ),
            opened(
                Tlp::AmberStrict,
                Kind::Notification,
                Payload::Notification(Notification {
                    indicator: value(IndicatorType::Ipv4, "10.20.4.17"),
                    matched: Match {
                        kind: MatchKind::Cidr,
                        value: "10.20.0.0/16".into(),
                    },
                    source: "norcert".into(),
                    first_seen: None,
                    last_seen: None,
                    message: "10.20.4.17 in your range talks to a C2".into(),
                    advisory_id: None,
                }),
            ),
            opened(Tlp::Amber, Kind::Alert, alert(Vec::new())),
            opened(
                Tlp::Green,
                Kind::Alert,
                alert(vec![value(IndicatorType::Domain, "phish.example")]),
            ),
            opened(
                Tlp::Green,
                Kind::Sighting,
                Payload::Sighting(Sighting {
                    kind: IndicatorType::Ipv4,
                    value: "203.0.113.9".into(),
                    seen_at: "2026-03-02T08:00:00Z".parse().unwrap(),
                    note: None,
                    reporter: None,
                    aggregate: Some(SightingAggregate {
                        orgs: 3,
                        window_hours: 24,
                    }),
                }),
            ),
            opened(
                Tlp::Amber,
                Kind::Advisory,
                Payload::Advisory(Advisory {
                    advisory_id: "KCSIRT-2026-0042".into(),
                    revision: 1,
                    title: "PAN-OS GlobalProtect".into(),
                    summary: "Patch now".into(),
                    severity: Severity::Critical,
                    cves: vec!["CVE-2024-3400".into()],
                    affected: Vec::new(),
                    actions: Vec::new(),
                    references: Vec::new(),
                    sectors: Vec::new(),
                    published: "2026-03-01T12:00:00Z".parse().unwrap(),
                    changes: None,
                    matched_assets: Vec::new(),
                }),
            ),
        ]
    }

    fn objects(b: &Value) -> &Vec<Value> {
        b["objects"].as_array().unwrap()
    }

    fn ids(b: &Value) -> Vec<String> {
        objects(b)
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn an_alert_without_indicators_is_a_report() {
        let items = vec![opened(Tlp::Amber, Kind::Alert, alert(Vec::new()))];
        let b = bundle(&items);
        let r = objects(&b)
            .iter()
            .find(|o| o["type"] == "report")
            .expect("the alert is exported");
        assert_eq!(r["name"], "Phishing wave against ID-porten");
        assert_eq!(r["description"], "Block the sender domain.");
        assert_eq!(r["report_types"], json!(["threat-report"]));
        assert_eq!(r["published"], "2026-03-02T08:15:00.000Z");
        assert_eq!(
            r["object_marking_refs"],
            json!([Tlp::Amber.stix_marking_id()])
        );
        assert_eq!(r["labels"], json!(["severity:high", "urgent"]));
        assert_eq!(
            r["external_references"][0]["url"],
            "https://nsm.example/varsel/1"
        );
        assert_eq!(
            r["external_references"][1]["external_id"],
            "KCSIRT-2026-0042"
        );
        // about no object: it names its sender, which is in the bundle
        let by = r["created_by_ref"].as_str().unwrap();
        assert_eq!(r["object_refs"], json!([by]));
        assert!(ids(&b).iter().any(|i| i == by));
        assert!(ids(&b).contains(&Tlp::Amber.stix_marking_id().to_string()));
    }

    #[test]
    fn an_alert_with_indicators_is_a_report_about_them() {
        let items = vec![opened(
            Tlp::Green,
            Kind::Alert,
            alert(vec![value(IndicatorType::Domain, "phish.example")]),
        )];
        let b = bundle(&items);
        let i = objects(&b)
            .iter()
            .find(|o| o["type"] == "indicator")
            .unwrap();
        let r = objects(&b).iter().find(|o| o["type"] == "report").unwrap();
        assert_eq!(r["object_refs"], json!([i["id"]]));
        assert_eq!(i["description"], "Phishing wave against ID-porten");
    }

    #[test]
    fn sdo_and_sro_ids_are_version_4() {
        let b = bundle(&sample());
        let mut types = Vec::new();
        for o in objects(&b) {
            let id = o["id"].as_str().unwrap();
            let (kind, u) = id.split_once("--").unwrap();
            let u = uuid::Uuid::parse_str(u).unwrap();
            assert_eq!(u.get_version_num(), 4, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            types.push(kind.to_string());
        }
        for t in [
            "marking-definition",
            "identity",
            "indicator",
            "vulnerability",
            "report",
            "sighting",
        ] {
            assert!(types.iter().any(|k| k == t), "no {t} in {types:?}");
        }
        let bundle_id = b["id"].as_str().unwrap().strip_prefix("bundle--").unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(bundle_id).unwrap().get_version_num(),
            4
        );
    }

    #[test]
    fn a_re_export_gives_the_same_ids() {
        let items = sample();
        let (a, b) = (bundle(&items), bundle(&items));
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a["objects"], b["objects"]);
        // the same value in another envelope is the same object
        let again = vec![opened(
            Tlp::Green,
            Kind::Indicator,
            Payload::Indicator(IndicatorBatch {
                source: None,
                description: None,
                indicators: vec![value(IndicatorType::Ipv4, "198.51.100.7")],
            }),
        )];
        let c = bundle(&again);
        let ip = |b: &Value| {
            objects(b)
                .iter()
                .find(|o| o["pattern"] == "[ipv4-addr:value = '198.51.100.7']")
                .unwrap()["id"]
                .clone()
        };
        assert_eq!(ip(&a), ip(&c));
        // ids keep the hashed bits of the former UUIDv5 ids, only the
        // version nibble differs
        let v5 = uuid5(&["indicator", "ipv4", "198.51.100.7"]).to_string();
        let v4 = ip(&c)
            .as_str()
            .unwrap()
            .strip_prefix("indicator--")
            .unwrap()
            .to_string();
        assert_eq!(v4.replace('-', "").chars().nth(12), Some('4'));
        let differ: Vec<usize> = v5
            .chars()
            .zip(v4.chars())
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(differ, vec![14]);
    }

    #[test]
    fn every_indicator_has_a_name_and_a_description() {
        let b = bundle(&sample());
        let found: BTreeMap<String, (String, String)> = objects(&b)
            .iter()
            .filter(|o| o["type"] == "indicator")
            .map(|o| {
                let name = o["name"].as_str().expect("name").to_string();
                let d = o["description"].as_str().expect("description").to_string();
                assert!(!name.is_empty() && !d.is_empty(), "{o}");
                (o["pattern"].as_str().unwrap().to_string(), (name, d))
            })
            .collect();
        let get = |p: &str| found.get(p).unwrap_or_else(|| panic!("{p}: {found:?}"));
        // a batch value without comment: the batch's source
        assert_eq!(
            get("[ipv4-addr:value = '198.51.100.7']"),
            &("198.51.100.7".into(), "Indicator from misp:norcert".into())
        );
        // its own comment comes first
        assert_eq!(
            get("[domain-name:value = 'evil.example']").1,
            "C2 of the phishing kit"
        );
        // a notification: its message
        assert_eq!(
            get("[ipv4-addr:value = '10.20.4.17']").1,
            "10.20.4.17 in your range talks to a C2"
        );
        // a community sighting: the count
        assert_eq!(
            get("[ipv4-addr:value = '203.0.113.9']").1,
            "seen by 3 member organisations in 24 h"
        );
        // long values are cut in the name, never in the pattern
        let long = found
            .iter()
            .find(|(p, _)| p.starts_with("[url:value"))
            .unwrap();
        assert_eq!(long.1.0.chars().count(), NAME_MAX);
        assert!(long.1.0.ends_with('…'));
        assert!(long.0.contains(&"a".repeat(500)));
    }

    #[test]
    fn every_object_carries_a_marking_in_the_bundle() {
        let b = bundle(&sample());
        let ids = ids(&b);
        for o in objects(&b) {
            if o["type"] == "marking-definition" {
                continue;
            }
            let m = o["object_marking_refs"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{o}"));
            assert!(ids.iter().any(|i| i == m), "{m} not in the bundle");
        }
        // the notification's value keeps AMBER+STRICT; the sender's
        // identity reached the reader at GREEN
        let find = |k: &str, v: &str| {
            objects(&b).iter().find(|o| o[k] == v).unwrap()["object_marking_refs"][0].clone()
        };
        assert_eq!(
            find("pattern", "[ipv4-addr:value = '10.20.4.17']"),
            Tlp::AmberStrict.stix_marking_id()
        );
        assert_eq!(find("type", "identity"), Tlp::Green.stix_marking_id());
    }

    #[test]
    fn envelopes_stix_cannot_express_add_no_identity() {
        let items = vec![opened(
            Tlp::Red,
            Kind::Sighting,
            Payload::Sighting(Sighting {
                kind: IndicatorType::Ipv4,
                value: "203.0.113.9".into(),
                seen_at: "2026-03-02T08:00:00Z".parse().unwrap(),
                note: None,
                reporter: None,
                aggregate: None,
            }),
        )];
        assert_eq!(objects(&bundle(&items)).len(), 0);
    }
}
