//! A STIX 2.1 bundle of opened envelopes. Each object carries the OASIS
//! TLP 2.0 marking-definition of its envelope's label in
//! `object_marking_refs`, and the bundle includes those marking-definition
//! objects (the TLP 2.0 extension defines them as ordinary objects, not as
//! ids every consumer knows, so a bundle must carry the ones it uses).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use varde_schemas::payload::{Indicator, IndicatorType, Payload};
use varde_schemas::{OrgId, Tlp};

use super::{stix_time, uuid5};
use crate::seal::Opened;

/// The OASIS TLP 2.0 extension definition.
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

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
    objects: BTreeMap<String, (Tlp, Value)>,
    labels: Vec<Tlp>,
    identities: BTreeMap<String, Value>,
}

impl Builder {
    fn identity(&mut self, org: &OrgId) -> String {
        let id = format!("identity--{}", uuid5(&["org", org.as_str()]));
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
        if !self.labels.contains(&label) {
            self.labels.push(label);
        }
        let label = match self.objects.get(&id) {
            Some((l, _)) => (*l).max(label),
            None => label,
        };
        obj["object_marking_refs"] = json!([label.stix_marking_id()]);
        self.objects.insert(id.clone(), (label, obj));
        id
    }

    fn indicator(
        &mut self,
        label: Tlp,
        by: &str,
        i: &Indicator,
        created: &str,
        description: Option<&str>,
    ) -> String {
        let Some(p) = pattern(i) else {
            return self.vulnerability(label, by, &i.value, created);
        };
        let mut o = json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": format!("indicator--{}", uuid5(&["indicator", i.kind.as_str(), &i.value])),
            "created_by_ref": by,
            "created": created,
            "modified": created,
            "name": i.value,
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
        if let Some(d) = description.or(i.comment.as_deref()) {
            o["description"] = json!(d);
        }
        self.add(label, o)
    }

    fn vulnerability(&mut self, label: Tlp, by: &str, cve: &str, created: &str) -> String {
        self.add(
            label,
            json!({
                "type": "vulnerability",
                "spec_version": "2.1",
                "id": format!("vulnerability--{}", uuid5(&["cve", cve])),
                "created_by_ref": by,
                "created": created,
                "modified": created,
                "name": cve,
                "external_references": [{"source_name": "cve", "external_id": cve}],
            }),
        )
    }
}

/// The bundle of everything in `items` that STIX can express.
pub fn bundle(items: &[Opened]) -> Value {
    let mut b = Builder {
        objects: BTreeMap::new(),
        labels: Vec::new(),
        identities: BTreeMap::new(),
    };
    for o in items {
        let h = &o.header;
        let label = h.label;
        let by = b.identity(&h.sender.org);
        let created = stix_time(h.created);
        match &o.payload {
            Payload::Indicator(batch) => {
                for i in &batch.indicators {
                    b.indicator(label, &by, i, &created, None);
                }
            }
            Payload::Notification(n) => {
                b.indicator(label, &by, &n.indicator, &created, Some(&n.message));
            }
            Payload::Alert(a) => {
                for i in &a.indicators {
                    b.indicator(label, &by, i, &created, Some(&a.title));
                }
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
                let of = b.indicator(label, &by, &ind, &created, None);
                if of.starts_with("indicator--") {
                    b.add(
                        label,
                        json!({
                            "type": "sighting",
                            "spec_version": "2.1",
                            "id": format!("sighting--{}", uuid5(&["sighting", &h.id.to_string()])),
                            "created_by_ref": by,
                            "created": created,
                            "modified": created,
                            "sighting_of_ref": of,
                            "count": agg.orgs,
                            "description": format!("seen by {} member organisations in {} h", agg.orgs, agg.window_hours),
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
                    "id": format!("report--{}", uuid5(&["advisory", &a.advisory_id, &a.revision.to_string()])),
                    "created_by_ref": by,
                    "created": created,
                    "modified": created,
                    "name": a.title,
                    "description": desc,
                    "report_types": ["vulnerability"],
                    "published": stix_time(a.published),
                    "object_refs": refs,
                });
                let ext: Vec<Value> = a
                    .references
                    .iter()
                    .map(|u| json!({"source_name": "reference", "url": u}))
                    .collect();
                if !ext.is_empty() {
                    r["external_references"] = json!(ext);
                }
                b.add(label, r);
            }
            Payload::Ack(_) | Payload::Chat(_) | Payload::Incident(_) => {}
        }
    }
    let mut objects: Vec<Value> = Vec::new();
    let mut labels = b.labels.clone();
    labels.sort();
    objects.extend(labels.into_iter().map(marking_definition));
    if !b.objects.is_empty() {
        objects.extend(b.identities.into_values());
    }
    objects.extend(b.objects.into_values().map(|(_, v)| v));
    json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid::Uuid::new_v4()),
        "objects": objects,
    })
}
