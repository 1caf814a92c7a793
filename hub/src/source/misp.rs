//! MISP feeds: a folder or URL with `manifest.json` (event uuid → summary)
//! and one `<uuid>.json` per event (`Event.Attribute[]`,
//! `Event.Object[].Attribute[]`, `Tag[]`). Each attribute is parsed on its
//! own, so one odd attribute is one invalid record, not a lost event.
//! Attributes and objects marked `"deleted": true` are retractions in MISP
//! (a feed still carries them) and are skipped, never published.

// Feed text is attacker-controlled: a byte slice that lands inside a
// multi-byte character (`Bodø`) would panic the whole ingest run.
#![deny(clippy::string_slice, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use varde_schemas::Tlp;
use varde_schemas::payload::IndicatorType;

use super::{Input, ReadError, SourceOptions, parse_time};
use crate::record::{Candidate, Location, Sink};

#[derive(Deserialize)]
struct EventFile<'a> {
    #[serde(rename = "Event", borrow)]
    event: Event<'a>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default, rename = "Tag")]
    tags: Vec<Tag>,
    #[serde(default, rename = "Attribute", borrow)]
    attributes: Vec<&'a RawValue>,
    #[serde(default, rename = "Object", borrow)]
    objects: Vec<Object<'a>>,
}

#[derive(Deserialize)]
struct Object<'a> {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default, deserialize_with = "bool_like")]
    deleted: bool,
    #[serde(default, rename = "Attribute", borrow)]
    attributes: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

#[derive(Deserialize)]
struct Attribute {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    value: String,
    #[serde(default, deserialize_with = "bool_like")]
    to_ids: bool,
    #[serde(default, deserialize_with = "bool_like")]
    deleted: bool,
    #[serde(default)]
    first_seen: Option<String>,
    #[serde(default)]
    last_seen: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    timestamp: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default, rename = "Tag")]
    tags: Vec<Tag>,
}

/// MISP writes booleans as `true`, `"1"` or `1` depending on version.
fn bool_like<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_u64() == Some(1),
        serde_json::Value::String(s) => matches!(s.as_str(), "1" | "true" | "True"),
        _ => false,
    })
}

fn string_like<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The Varde indicator types a MISP attribute type maps to, and how its
/// value splits (`domain|ip` holds two values).
enum Mapping {
    One(Part),
    /// `a|b`: both halves are indicators.
    Pair(Part, Part),
    /// `a|port`: the first half is the indicator, the second a tag.
    WithTag(Part, &'static str),
    /// `filename|hash`: the second half is the indicator, the first a comment.
    AfterName(Part),
}

#[derive(Clone, Copy)]
enum Part {
    Ip,
    Fixed(IndicatorType),
}

fn mapping(misp_type: &str) -> Option<Mapping> {
    use IndicatorType::*;
    use Part::*;
    Some(match misp_type {
        "ip-src" | "ip-dst" => Mapping::One(Ip),
        "ip-src|port" | "ip-dst|port" => Mapping::WithTag(Ip, "port"),
        "domain" => Mapping::One(Fixed(Domain)),
        "hostname" => Mapping::One(Fixed(Hostname)),
        "hostname|port" => Mapping::WithTag(Fixed(Hostname), "port"),
        "domain|ip" => Mapping::Pair(Fixed(Domain), Ip),
        "url" => Mapping::One(Fixed(Url)),
        "md5" => Mapping::One(Fixed(Md5)),
        "sha1" => Mapping::One(Fixed(Sha1)),
        "sha256" => Mapping::One(Fixed(Sha256)),
        "filename|md5" => Mapping::AfterName(Fixed(Md5)),
        "filename|sha1" => Mapping::AfterName(Fixed(Sha1)),
        "filename|sha256" => Mapping::AfterName(Fixed(Sha256)),
        "email-src" | "email-dst" | "email" => Mapping::One(Fixed(Email)),
        "AS" => Mapping::One(Fixed(Asn)),
        "vulnerability" => Mapping::One(Fixed(Cve)),
        _ => return None,
    })
}

/// `ip-src`/`ip-dst` hold IPv4, IPv6 or a CIDR.
fn ip_type(v: &str) -> IndicatorType {
    if v.contains('/') {
        IndicatorType::Cidr
    } else if v.contains(':') {
        IndicatorType::Ipv6
    } else {
        IndicatorType::Ipv4
    }
}

fn resolve(p: Part, v: &str) -> IndicatorType {
    match p {
        Part::Ip => ip_type(v),
        Part::Fixed(t) => t,
    }
}

/// The strictest `tlp:` tag, if any (`tlp:white` counts as CLEAR; tags
/// that are not TLP 2.0 labels, like `tlp:ex:chr`, are ignored).
fn tlp_of(tags: &[Tag]) -> Option<Tlp> {
    tags.iter()
        .filter(|t| is_tlp_tag(&t.name))
        .filter_map(|t| t.name.parse::<Tlp>().ok())
        .max()
}

/// `tlp:…` in any case. `get` rather than a slice: a tag's fourth byte may
/// sit inside a multi-byte character.
fn is_tlp_tag(name: &str) -> bool {
    name.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("tlp:"))
}

/// `varde:advisory="KCSIRT-2026-0042"`: the advisory the CSIRT will send.
fn advisory_of(tags: &[Tag]) -> Option<String> {
    tags.iter().find_map(|t| {
        t.name
            .strip_prefix("varde:advisory=")
            .map(|v| v.trim_matches('"').to_string())
    })
}

/// Reads a MISP feed (folder or URL with `manifest.json`) or one event file.
pub async fn read(
    input: &Input,
    opts: &SourceOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadError> {
    if let Input::Path(p) = input
        && p.is_file()
    {
        let name = input.display();
        match input.read(opts.max_bytes).await {
            Ok(bytes) => read_event(&bytes, &name, opts, sink),
            Err(e @ ReadError::TooLarge { .. }) => {
                sink.invalid(Location::file(&name), e.to_string())
            }
            Err(e) => return Err(e),
        }
        return Ok(());
    }
    let manifest_input = input.join("manifest.json")?;
    let manifest_name = manifest_input.display();
    let uuids: Vec<uuid::Uuid> = match manifest_input.read(opts.max_bytes).await {
        Ok(bytes) => match serde_json::from_slice::<BTreeMap<String, &RawValue>>(&bytes) {
            Ok(m) => {
                let mut out = Vec::with_capacity(m.len());
                for k in m.keys() {
                    // Event file names come from the manifest: only a real
                    // UUID may become a path or URL (no `../`).
                    match uuid::Uuid::parse_str(k) {
                        Ok(u) => out.push(u),
                        Err(_) => sink.invalid(
                            Location::object(
                                &manifest_name,
                                k.chars().take(80).collect::<String>(),
                            ),
                            "manifest key is not an event UUID".into(),
                        ),
                    }
                }
                out
            }
            Err(e) => {
                sink.invalid(
                    Location::file(&manifest_name),
                    format!("manifest.json is not valid MISP manifest JSON: {e}"),
                );
                folder_events(input)?
            }
        },
        Err(e @ (ReadError::TooLarge { .. } | ReadError::Io { .. })) if input.is_dir() => {
            if !matches!(&e, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
            {
                sink.invalid(Location::file(&manifest_name), e.to_string());
            }
            folder_events(input)?
        }
        Err(e) => return Err(e),
    };
    for u in uuids {
        let event_input = input.join(&format!("{u}.json"))?;
        let name = event_input.display();
        match event_input.read(opts.max_bytes).await {
            Ok(bytes) => read_event(&bytes, &name, opts, sink),
            Err(e) => sink.invalid(Location::file(&name), e.to_string()),
        }
    }
    Ok(())
}

/// Without a usable manifest, a local feed folder still lists its events.
fn folder_events(input: &Input) -> Result<Vec<uuid::Uuid>, ReadError> {
    let Input::Path(dir) = input else {
        return Ok(Vec::new());
    };
    let rd = std::fs::read_dir(dir).map_err(|source| ReadError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut out: Vec<uuid::Uuid> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let stem = name.to_str()?.strip_suffix(".json")?;
            uuid::Uuid::parse_str(stem).ok()
        })
        .collect();
    out.sort();
    Ok(out)
}

/// One event file.
pub fn read_event(bytes: &[u8], file: &Arc<str>, opts: &SourceOptions, sink: &mut dyn Sink) {
    let ev: EventFile<'_> = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => {
            sink.invalid(Location::file(file), format!("not a MISP event: {e}"));
            return;
        }
    };
    let ev = ev.event;
    let event_id: Arc<str> = Arc::from(ev.uuid.as_deref().unwrap_or("event"));
    let label = tlp_of(&ev.tags).unwrap_or(opts.default_tlp);
    let advisory = advisory_of(&ev.tags).or_else(|| opts.advisory_id.clone());
    let ctx = EventCtx {
        file,
        event_id: &event_id,
        label,
        advisory: advisory.as_deref(),
        opts,
    };
    for (i, raw) in ev.attributes.iter().enumerate() {
        ctx.attribute(raw, || format!("{event_id}/Attribute/{i}"), sink);
    }
    for (oi, obj) in ev.objects.iter().enumerate() {
        let obj_id = obj.uuid.clone().unwrap_or_else(|| format!("Object/{oi}"));
        if obj.deleted {
            // A retracted object retracts all its attributes; counted so
            // the run summary still accounts for every value in the feed.
            let loc = || Location::object(file, format!("{event_id}/{obj_id}"));
            for _ in &obj.attributes {
                sink.skipped(&loc, "MISP object is deleted");
            }
            continue;
        }
        for (i, raw) in obj.attributes.iter().enumerate() {
            ctx.attribute(raw, || format!("{event_id}/{obj_id}/Attribute/{i}"), sink);
        }
    }
}

struct EventCtx<'a> {
    file: &'a Arc<str>,
    event_id: &'a Arc<str>,
    label: Tlp,
    advisory: Option<&'a str>,
    opts: &'a SourceOptions,
}

impl EventCtx<'_> {
    fn attribute(&self, raw: &RawValue, fallback_id: impl Fn() -> String, sink: &mut dyn Sink) {
        let a: Attribute = match serde_json::from_str(raw.get()) {
            Ok(a) => a,
            Err(e) => {
                sink.invalid(
                    Location::object(self.file, fallback_id()),
                    format!("not a MISP attribute: {e}"),
                );
                return;
            }
        };
        let loc = || {
            Location::object(
                self.file,
                match &a.uuid {
                    Some(u) => format!("{}/{u}", self.event_id),
                    None => fallback_id(),
                },
            )
        };
        let Some(map) = mapping(&a.kind) else {
            sink.invalid(
                loc(),
                format!(
                    "MISP type `{}` is not mapped to a Varde indicator type",
                    a.kind.chars().take(60).collect::<String>()
                ),
            );
            return;
        };
        if a.deleted {
            sink.skipped(&loc, "MISP attribute is deleted");
            return;
        }
        if self.opts.to_ids_only && !a.to_ids {
            // Twice for pairs, so `read` always counts values.
            let n = if matches!(map, Mapping::Pair(..)) {
                2
            } else {
                1
            };
            for _ in 0..n {
                sink.skipped(&loc, "MISP attribute has to_ids = false");
            }
            return;
        }
        let label = tlp_of(&a.tags).map_or(self.label, |t| t.max(self.label));
        let ts = a.timestamp.as_deref().and_then(parse_time);
        let first_seen = a.first_seen.as_deref().and_then(parse_time).or(ts);
        let last_seen = a.last_seen.as_deref().and_then(parse_time).or(ts);
        let mut tags: Vec<String> = a
            .tags
            .iter()
            .filter(|t| !is_tlp_tag(&t.name))
            .take(10)
            .map(|t| t.name.clone())
            .collect();
        let comment = a.comment.as_deref().filter(|c| !c.is_empty());
        let emit = |kind: IndicatorType,
                    value: &str,
                    tags: Vec<String>,
                    comment: Option<&str>,
                    sink: &mut dyn Sink| {
            let mut c = Candidate::new(kind, value, label, &loc);
            c.first_seen = first_seen;
            c.last_seen = last_seen;
            c.tags = tags;
            c.comment = comment;
            c.advisory_id = self.advisory;
            sink.indicator(c);
        };
        let split = |v: &str| -> Option<(String, String)> {
            v.split_once('|')
                .map(|(x, y)| (x.trim().to_string(), y.trim().to_string()))
        };
        match map {
            Mapping::One(p) => emit(resolve(p, &a.value), &a.value, tags, comment, sink),
            Mapping::Pair(p1, p2) => match split(&a.value) {
                Some((x, y)) => {
                    emit(resolve(p1, &x), &x, tags.clone(), comment, sink);
                    emit(resolve(p2, &y), &y, tags, comment, sink);
                }
                None => {
                    sink.invalid(loc(), format!("`{}` value must be `a|b`", a.kind));
                }
            },
            Mapping::WithTag(p, tag) => match split(&a.value) {
                Some((x, y)) if !y.is_empty() && y.bytes().all(|b| b.is_ascii_digit()) => {
                    tags.push(format!("{tag}:{y}"));
                    emit(resolve(p, &x), &x, tags, comment, sink);
                }
                _ => sink.invalid(loc(), format!("`{}` value must be `value|{tag}`", a.kind)),
            },
            Mapping::AfterName(p) => match split(&a.value) {
                Some((name, hash)) => {
                    let note = if name.is_empty() { None } else { Some(name) };
                    let comment = note.as_deref().or(comment);
                    emit(resolve(p, &hash), &hash, tags, comment, sink);
                }
                None => sink.invalid(loc(), format!("`{}` value must be `filename|hash`", a.kind)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::record::Collect;

    #[test]
    fn multibyte_tags_do_not_panic_and_deleted_records_are_skipped() {
        let event = r#"{"Event": {
            "uuid": "5f0c6a52-0000-4000-8000-000000000001",
            "Tag": [{"name": "Bodø"}, {"name": "ø"}, {"name": "tlp:amber"}, {"name": "tlæ:x"}],
            "Attribute": [
                {"type": "domain", "value": "kept.example", "to_ids": true,
                 "Tag": [{"name": "Bodø"}, {"name": "TLP:RED"}]},
                {"type": "domain", "value": "retracted.example", "to_ids": true, "deleted": true},
                {"type": "ip-dst", "value": "192.0.2.9", "to_ids": true, "deleted": "1"}
            ],
            "Object": [
                {"uuid": "obj-live", "Attribute": [
                    {"type": "sha256", "value": "aa", "to_ids": true}]},
                {"uuid": "obj-gone", "deleted": true, "Attribute": [
                    {"type": "md5", "value": "bb", "to_ids": true},
                    {"type": "url", "value": "http://gone.example/", "to_ids": true}]}
            ]
        }}"#;
        let mut sink = Collect::default();
        let opts = SourceOptions::new("test");
        read_event(event.as_bytes(), &Arc::from("event.json"), &opts, &mut sink);
        let values: Vec<&str> = sink.values.iter().map(|v| v.1.as_str()).collect();
        assert_eq!(values, ["kept.example", "aa"]);
        // The attribute's own TLP:RED tag raises the event's AMBER; the
        // non-TLP multi-byte tag is kept as a tag.
        assert_eq!(sink.values[0].2, Tlp::Red);
        assert_eq!(sink.values[0].3, vec!["Bodø".to_string()]);
        assert_eq!(sink.values[1].2, Tlp::Amber);
        assert_eq!(
            sink.skipped,
            [
                "MISP attribute is deleted",
                "MISP attribute is deleted",
                "MISP object is deleted",
                "MISP object is deleted"
            ]
        );
        assert!(sink.invalid.is_empty(), "{:?}", sink.invalid);
    }

    #[test]
    fn tlp_tag_detection_is_char_boundary_safe() {
        assert!(is_tlp_tag("TLP:GREEN"));
        assert!(!is_tlp_tag("Bodø"));
        assert!(!is_tlp_tag("ølp:x"));
        assert!(!is_tlp_tag("tl"));
        assert!(!is_tlp_tag(""));
    }
}
