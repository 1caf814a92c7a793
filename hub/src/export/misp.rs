//! A MISP feed folder (`manifest.json` + one `<uuid>.json` per event) of
//! opened envelopes: one event per envelope that carries indicators or an
//! advisory, tagged with its label (`tlp:amber`), readable by MISP's feed
//! import and by `varde ingest misp`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use varde_schemas::payload::{Indicator, IndicatorType, Payload};

use super::uuid5;
use varde_bus::seal::Opened;

fn misp_type(t: IndicatorType) -> (&'static str, &'static str) {
    use IndicatorType::*;
    match t {
        Ipv4 | Ipv6 | Cidr => ("ip-dst", "Network activity"),
        Domain => ("domain", "Network activity"),
        Hostname => ("hostname", "Network activity"),
        Url => ("url", "Network activity"),
        Email => ("email-src", "Payload delivery"),
        Md5 => ("md5", "Payload delivery"),
        Sha1 => ("sha1", "Payload delivery"),
        Sha256 => ("sha256", "Payload delivery"),
        Cve => ("vulnerability", "External analysis"),
        Asn => ("AS", "Network activity"),
    }
}

fn attribute(event: &str, n: usize, i: &Indicator, ts: &str) -> Value {
    let (t, cat) = misp_type(i.kind);
    let mut a = json!({
        "uuid": uuid5(&["misp-attribute", event, &n.to_string()]).to_string(),
        "type": t,
        "category": cat,
        "value": i.value,
        "to_ids": true,
        "timestamp": ts,
        "comment": i.comment.clone().unwrap_or_default(),
    });
    if let Some(f) = i.first_seen {
        a["first_seen"] = json!(f.to_string());
    }
    if let Some(l) = i.last_seen {
        a["last_seen"] = json!(l.to_string());
    }
    a
}

/// Writes the feed into `dir` (created if needed); returns the number of
/// events written.
pub fn write_feed(items: &[Opened], dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = BTreeMap::new();
    for o in items {
        let h = &o.header;
        let (info, indicators): (String, Vec<&Indicator>) = match &o.payload {
            Payload::Indicator(b) => (
                b.description
                    .clone()
                    .or_else(|| b.source.clone())
                    .unwrap_or_else(|| "indicators".into()),
                b.indicators.iter().collect(),
            ),
            Payload::Notification(n) => (n.message.clone(), vec![&n.indicator]),
            Payload::Alert(a) if !a.indicators.is_empty() => {
                (a.title.clone(), a.indicators.iter().collect())
            }
            Payload::Advisory(_) => (String::new(), Vec::new()),
            _ => continue,
        };
        let event = h.id.to_string();
        let ts = h.created.as_second().to_string();
        let mut attrs: Vec<Value> = indicators
            .iter()
            .enumerate()
            .map(|(n, i)| attribute(&event, n, i, &ts))
            .collect();
        let info = match &o.payload {
            Payload::Advisory(a) => {
                for (n, c) in a.cves.iter().enumerate() {
                    let ind = Indicator {
                        kind: IndicatorType::Cve,
                        value: c.clone(),
                        first_seen: None,
                        last_seen: None,
                        confidence: None,
                        tags: Vec::new(),
                        comment: Some(a.title.clone()),
                    };
                    attrs.push(attribute(&event, n, &ind, &ts));
                }
                format!("{} {} (rev {})", a.advisory_id, a.title, a.revision)
            }
            _ => info,
        };
        let tag =
            json!([{"name": format!("tlp:{}", h.label.short()), "colour": h.label.colour_hex()}]);
        let orgc = json!({"name": h.sender.org.as_str(), "uuid": uuid5(&["org", h.sender.org.as_str()]).to_string()});
        let date = h.created.strftime("%Y-%m-%d").to_string();
        let ev = json!({"Event": {
            "uuid": event,
            "info": info,
            "date": date,
            "timestamp": ts,
            "published": true,
            "analysis": "2",
            "threat_level_id": "2",
            "distribution": "0",
            "Orgc": orgc,
            "Tag": tag,
            "Attribute": attrs,
        }});
        std::fs::write(
            dir.join(format!("{event}.json")),
            serde_json::to_vec_pretty(&ev)?,
        )?;
        manifest.insert(
            event,
            json!({"info": info, "Orgc": orgc, "Tag": tag, "date": date, "timestamp": ts, "analysis": "2", "threat_level_id": "2"}),
        );
    }
    let n = manifest.len();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(n)
}
