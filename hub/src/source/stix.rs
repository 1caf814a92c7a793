//! STIX 2.1 bundles: `indicator` objects with `pattern_type = stix` whose
//! pattern compares an address, domain, URL, e-mail address, AS number or
//! file hash for equality, and `vulnerability` objects (advisories, with
//! the `software` related to them as affected products). Labels come from
//! `object_marking_refs`: TLP 2.0, TLP 1.0 and OpenCTI ids, or a TLP
//! marking-definition in the bundle itself.

// Feed input is attacker-controlled: no slice that can panic on a
// char boundary or an out-of-range index.
#![deny(clippy::string_slice, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;
use varde_schemas::Tlp;
use varde_schemas::payload::{Advisory, IndicatorType, Product, Severity};

use super::{SourceOptions, parse_time};
use crate::record::{Candidate, Location, Sink};

#[derive(Deserialize)]
struct Bundle<'a> {
    #[serde(rename = "type")]
    kind: String,
    /// Only STIX 2.0 bundles carry one (2.1 moved it to the objects).
    #[serde(default)]
    spec_version: Option<String>,
    #[serde(default, borrow)]
    objects: Vec<&'a RawValue>,
}

/// The fields of any object this reader looks at.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Obj {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    name: Option<String>,
    description: Option<String>,
    created: Option<String>,
    modified: Option<String>,
    // indicator
    pattern: Option<String>,
    pattern_type: Option<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    confidence: Option<i64>,
    labels: Vec<String>,
    revoked: bool,
    object_marking_refs: Vec<String>,
    external_references: Vec<ExternalRef>,
    // relationship
    source_ref: Option<String>,
    target_ref: Option<String>,
    // software
    vendor: Option<String>,
    version: Option<String>,
    // marking-definition
    definition_type: Option<String>,
    definition: Option<serde_json::Value>,
    extensions: Option<HashMap<String, serde_json::Value>>,
    // OpenCTI's severity hints on vulnerabilities
    x_opencti_base_severity: Option<String>,
    x_opencti_cvss_base_score: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ExternalRef {
    source_name: String,
    external_id: Option<String>,
    url: Option<String>,
}

/// A TLP label named by a marking-definition object in the bundle.
fn marking_label(o: &Obj) -> Option<Tlp> {
    if let Some(t) = Tlp::from_stix_marking_id(&o.id) {
        return Some(t);
    }
    if let Some(ext) = &o.extensions {
        for v in ext.values() {
            if let Some(t) = v.get("tlp_2_0").and_then(|t| t.as_str()) {
                return t.parse().ok();
            }
        }
    }
    if o.definition_type.as_deref() == Some("tlp")
        && let Some(t) = o
            .definition
            .as_ref()
            .and_then(|d| d.get("tlp"))
            .and_then(|t| t.as_str())
    {
        return t.parse().ok();
    }
    o.name
        .as_deref()
        .filter(|n| n.to_ascii_uppercase().starts_with("TLP:"))
        .and_then(|n| n.parse().ok())
}

/// Reads one bundle.
pub fn read_bytes(bytes: &[u8], file: &Arc<str>, opts: &SourceOptions, sink: &mut dyn Sink) {
    let bundle: Bundle<'_> = match serde_json::from_slice(bytes) {
        Ok(b) => b,
        Err(e) => {
            sink.invalid(Location::file(file), format!("not a STIX 2.1 bundle: {e}"));
            return;
        }
    };
    if bundle.kind != "bundle" {
        sink.invalid(
            Location::file(file),
            format!(
                "top-level object is a `{}`, not a STIX bundle",
                bundle.kind.chars().take(40).collect::<String>()
            ),
        );
        return;
    }
    // A STIX 2.0 bundle parses, but its indicators have no `pattern_type`
    // and would all be skipped: say so instead of reporting `read 0`.
    if let Some(v) = bundle.spec_version.as_deref() {
        sink.invalid(
            Location::file(file),
            format!(
                "a STIX {} bundle; only STIX 2.1 is read (convert it, e.g. with the OASIS stix2-elevator)",
                v.chars().take(10).collect::<String>()
            ),
        );
        return;
    }
    let mut objs = Vec::with_capacity(bundle.objects.len());
    for (i, raw) in bundle.objects.iter().enumerate() {
        match serde_json::from_str::<Obj>(raw.get()) {
            Ok(o) => objs.push(o),
            Err(e) => sink.invalid(
                Location::object(file, format!("objects[{i}]")),
                format!("not a STIX object: {e}"),
            ),
        }
    }
    let markings: HashMap<&str, Tlp> = objs
        .iter()
        .filter(|o| o.kind == "marking-definition")
        .filter_map(|o| marking_label(o).map(|t| (o.id.as_str(), t)))
        .collect();
    let label_of = |o: &Obj| -> Tlp {
        o.object_marking_refs
            .iter()
            .filter_map(|r| {
                Tlp::from_stix_marking_id(r).or_else(|| markings.get(r.as_str()).copied())
            })
            .max()
            .unwrap_or(opts.default_tlp)
    };
    let software: HashMap<&str, &Obj> = objs
        .iter()
        .filter(|o| o.kind == "software")
        .map(|o| (o.id.as_str(), o))
        .collect();
    // vulnerability id → related software
    let mut affected: HashMap<&str, Vec<&Obj>> = HashMap::new();
    for r in objs.iter().filter(|o| o.kind == "relationship") {
        let (Some(s), Some(t)) = (r.source_ref.as_deref(), r.target_ref.as_deref()) else {
            continue;
        };
        if let Some(sw) = software.get(s) {
            affected.entry(t).or_default().push(sw);
        } else if let Some(sw) = software.get(t) {
            affected.entry(s).or_default().push(sw);
        }
    }
    let now = Timestamp::now();
    for o in &objs {
        match o.kind.as_str() {
            "indicator" => indicator(o, label_of(o), file, opts, now, sink),
            "vulnerability" => {
                let loc = || Location::object(file, o.id.clone());
                let adv = advisory(
                    o,
                    affected
                        .get(o.id.as_str())
                        .map(Vec::as_slice)
                        .unwrap_or(&[]),
                    now,
                );
                sink.advisory(adv, label_of(o), &loc);
            }
            _ => {}
        }
    }
}

fn indicator(
    o: &Obj,
    label: Tlp,
    file: &Arc<str>,
    opts: &SourceOptions,
    now: Timestamp,
    sink: &mut dyn Sink,
) {
    let loc = || Location::object(file, o.id.clone());
    if o.pattern_type.as_deref() != Some("stix") {
        sink.invalid(
            loc(),
            format!(
                "pattern_type `{}` is not supported (only `stix`)",
                o.pattern_type
                    .as_deref()
                    .unwrap_or("(none)")
                    .chars()
                    .take(40)
                    .collect::<String>()
            ),
        );
        return;
    }
    if o.revoked {
        sink.skipped(&loc, "STIX indicator is revoked");
        return;
    }
    if o.valid_until
        .as_deref()
        .and_then(parse_time)
        .is_some_and(|t| t < now)
    {
        sink.skipped(&loc, "STIX indicator expired (valid_until)");
        return;
    }
    let pattern = o.pattern.as_deref().unwrap_or("");
    let values = match parse_pattern(pattern) {
        Ok(v) if v.is_empty() => {
            sink.invalid(loc(), "pattern compares nothing Varde can use (ipv4/ipv6/domain/url/email/AS/file hash equality)".into());
            return;
        }
        Ok(v) => v,
        Err(e) => {
            sink.invalid(loc(), format!("cannot parse STIX pattern: {e}"));
            return;
        }
    };
    let first_seen = o.valid_from.as_deref().and_then(parse_time);
    let last_seen = o
        .modified
        .as_deref()
        .or(o.created.as_deref())
        .and_then(parse_time);
    let confidence = o
        .confidence
        .and_then(|c| u8::try_from(c).ok())
        .filter(|c| *c <= 100);
    let tags: Vec<String> = o.labels.iter().take(10).cloned().collect();
    for (kind, value) in &values {
        let mut c = Candidate::new(*kind, value, label, &loc);
        c.first_seen = first_seen;
        c.last_seen = last_seen;
        c.confidence = confidence;
        c.tags = tags.clone();
        c.comment = o.name.as_deref();
        c.advisory_id = opts.advisory_id.as_deref();
        sink.indicator(c);
    }
}

fn advisory(o: &Obj, software: &[&Obj], now: Timestamp) -> Advisory {
    let cve = o
        .external_references
        .iter()
        .find(|r| r.source_name.eq_ignore_ascii_case("cve"))
        .and_then(|r| r.external_id.clone())
        .or_else(|| o.name.clone())
        .and_then(|c| varde_schemas::normalise::normalise(IndicatorType::Cve, &c).ok());
    let severity = o
        .x_opencti_base_severity
        .as_deref()
        .and_then(|s| s.parse().ok())
        .or_else(|| {
            o.x_opencti_cvss_base_score.map(|s| match s {
                s if s >= 9.0 => Severity::Critical,
                s if s >= 7.0 => Severity::High,
                s if s >= 4.0 => Severity::Medium,
                _ => Severity::Low,
            })
        })
        .unwrap_or(Severity::Medium);
    let name = o.name.clone().unwrap_or_else(|| o.id.clone());
    Advisory {
        advisory_id: cve.clone().unwrap_or_else(|| o.id.clone()),
        revision: 1,
        title: name.clone(),
        summary: o.description.clone().unwrap_or(name),
        severity,
        cves: cve.into_iter().collect(),
        affected: software
            .iter()
            .map(|s| Product {
                vendor: s.vendor.clone().unwrap_or_default(),
                product: s.name.clone().unwrap_or_default(),
                versions: s.version.clone(),
            })
            .collect(),
        actions: Vec::new(),
        references: o
            .external_references
            .iter()
            .filter_map(|r| r.url.clone())
            .collect(),
        sectors: Vec::new(),
        published: o.created.as_deref().and_then(parse_time).unwrap_or(now),
        changes: None,
        matched_assets: Vec::new(),
    }
}

/// Why a pattern could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("unexpected end of pattern (unbalanced brackets or quotes?)")]
    Eof,
    #[error("unexpected `{found}` at byte {at}; expected {expected}")]
    Unexpected {
        found: String,
        at: usize,
        expected: &'static str,
    },
}

/// The supported equality comparisons of a STIX pattern, as (type, value).
/// Comparisons on other properties, or with other operators, are legal and
/// ignored; anything that is not a well-formed pattern is an error.
pub fn parse_pattern(p: &str) -> Result<Vec<(IndicatorType, String)>, PatternError> {
    let mut parser = Pattern {
        s: p.as_bytes(),
        i: 0,
        out: Vec::new(),
    };
    parser.observation_expr()?;
    parser.ws();
    if parser.i < parser.s.len() {
        return Err(parser.unexpected("end of pattern"));
    }
    Ok(parser.out)
}

struct Pattern<'a> {
    s: &'a [u8],
    i: usize,
    out: Vec<(IndicatorType, String)>,
}

impl Pattern<'_> {
    /// The byte at the cursor, if any.
    fn at(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Everything from the cursor on (empty at the end).
    fn rest(&self) -> &[u8] {
        self.s.get(self.i..).unwrap_or_default()
    }

    /// The text from `start` to the cursor.
    fn since(&self, start: usize) -> String {
        String::from_utf8_lossy(self.s.get(start..self.i).unwrap_or_default()).into_owned()
    }

    /// Moves past bytes for which `f` holds.
    fn skip_while(&mut self, f: impl Fn(u8) -> bool) {
        while self.at().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn ws(&mut self) {
        self.skip_while(|b| b.is_ascii_whitespace());
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn unexpected(&self, expected: &'static str) -> PatternError {
        if self.i >= self.s.len() {
            return PatternError::Eof;
        }
        let found: String = String::from_utf8_lossy(self.rest())
            .chars()
            .take(20)
            .collect();
        PatternError::Unexpected {
            found,
            at: self.i,
            expected,
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), PatternError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// An upper-case keyword, if one comes next (not consumed otherwise).
    fn keyword(&mut self, words: &[&'static str]) -> Option<&'static str> {
        self.ws();
        for w in words {
            let end = self.i + w.len();
            if self.s.get(self.i..end) == Some(w.as_bytes())
                && self
                    .s
                    .get(end)
                    .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
            {
                self.i = end;
                return Some(w);
            }
        }
        None
    }

    fn word(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        self.skip_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'));
        (self.i > start).then(|| self.since(start))
    }

    /// observation-expr ((AND|OR|FOLLOWEDBY) observation-expr)* qualifiers
    fn observation_expr(&mut self) -> Result<(), PatternError> {
        loop {
            match self.peek() {
                Some(b'[') => {
                    self.i += 1;
                    self.comparison_expr()?;
                    self.expect(b']', "`]`")?;
                }
                Some(b'(') => {
                    self.i += 1;
                    self.observation_expr()?;
                    self.expect(b')', "`)`")?;
                }
                _ => return Err(self.unexpected("`[` or `(`")),
            }
            self.qualifiers()?;
            if self.keyword(&["AND", "OR", "FOLLOWEDBY"]).is_none() {
                return Ok(());
            }
        }
    }

    fn qualifiers(&mut self) -> Result<(), PatternError> {
        loop {
            match self.keyword(&["WITHIN", "REPEATS", "START"]) {
                Some("WITHIN") => {
                    self.number()?;
                    self.keyword(&["SECONDS"])
                        .ok_or_else(|| self.unexpected("SECONDS"))?;
                }
                Some("REPEATS") => {
                    self.number()?;
                    self.keyword(&["TIMES"])
                        .ok_or_else(|| self.unexpected("TIMES"))?;
                }
                Some(_) => {
                    self.literal()?;
                    self.keyword(&["STOP"])
                        .ok_or_else(|| self.unexpected("STOP"))?;
                    self.literal()?;
                }
                None => return Ok(()),
            }
        }
    }

    fn number(&mut self) -> Result<String, PatternError> {
        self.ws();
        let start = self.i;
        self.skip_while(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+'));
        if self.i == start {
            return Err(self.unexpected("a number"));
        }
        Ok(self.since(start))
    }

    /// comparison ((AND|OR) comparison)*, with parentheses.
    fn comparison_expr(&mut self) -> Result<(), PatternError> {
        loop {
            if self.peek() == Some(b'(') {
                self.i += 1;
                self.comparison_expr()?;
                self.expect(b')', "`)`")?;
            } else {
                self.comparison()?;
            }
            if self.keyword(&["AND", "OR"]).is_none() {
                return Ok(());
            }
        }
    }

    /// object-path [NOT] operator literal
    fn comparison(&mut self) -> Result<(), PatternError> {
        let path = self.object_path()?;
        let negated = self.keyword(&["NOT"]).is_some();
        self.ws();
        let op = if self.rest().starts_with(b"!=")
            || self.rest().starts_with(b"<=")
            || self.rest().starts_with(b">=")
        {
            self.i += 2;
            "cmp"
        } else if matches!(self.s.get(self.i), Some(b'=')) {
            self.i += 1;
            "="
        } else if matches!(self.s.get(self.i), Some(b'<' | b'>')) {
            self.i += 1;
            "cmp"
        } else {
            self.keyword(&["LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "IN", "EXISTS"])
                .ok_or_else(|| self.unexpected("a comparison operator"))?
        };
        let value = match op {
            "EXISTS" => return Ok(()),
            "IN" => {
                self.set()?;
                None
            }
            _ => Some(self.literal()?),
        };
        if op == "="
            && !negated
            && let Some(v) = value
            && let Some(kind) = path_type(&path, &v)
        {
            self.out.push((kind, v));
        }
        Ok(())
    }

    fn set(&mut self) -> Result<(), PatternError> {
        self.expect(b'(', "`(`")?;
        loop {
            self.literal()?;
            if self.peek() == Some(b',') {
                self.i += 1;
            } else {
                return self.expect(b')', "`)`");
            }
        }
    }

    /// `type:prop.sub`, `file:hashes.'SHA-256'`, `x:list[*].y`.
    fn object_path(&mut self) -> Result<String, PatternError> {
        self.ws();
        let start = self.i;
        let mut out = String::new();
        while let Some(b) = self.at() {
            match b {
                b'\'' => {
                    self.i += 1;
                    let q = self.quoted_body()?;
                    out.push_str(&q);
                }
                b if b.is_ascii_alphanumeric()
                    || matches!(b, b'_' | b'-' | b':' | b'.' | b'[' | b']' | b'*') =>
                {
                    // `]` closes the observation unless it ends an index
                    if b == b']' && !out.ends_with(|c: char| c.is_ascii_digit() || c == '*') {
                        break;
                    }
                    out.push(b as char);
                    self.i += 1;
                }
                _ => break,
            }
        }
        if self.i == start || !out.contains(':') {
            self.i = start;
            return Err(self.unexpected("an object path like `ipv4-addr:value`"));
        }
        Ok(out)
    }

    /// The body of a `'…'` string after the opening quote, unescaped.
    fn quoted_body(&mut self) -> Result<String, PatternError> {
        let mut v = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err(PatternError::Eof),
                Some(b'\\') => {
                    let c = *self.s.get(self.i + 1).ok_or(PatternError::Eof)?;
                    v.push(c);
                    self.i += 2;
                }
                Some(b'\'') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&v).into_owned());
                }
                Some(&c) => {
                    v.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// `'string'`, `t'…'`, `h'…'`, `b'…'`, a number, `true`/`false`.
    fn literal(&mut self) -> Result<String, PatternError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'\'') => {
                self.i += 1;
                self.quoted_body()
            }
            Some(b't' | b'h' | b'b') if self.s.get(self.i + 1) == Some(&b'\'') => {
                self.i += 2;
                self.quoted_body()
            }
            Some(b) if b.is_ascii_digit() || *b == b'-' => self.number(),
            _ => self
                .word()
                .filter(|w| w == "true" || w == "false")
                .ok_or_else(|| self.unexpected("a literal")),
        }
    }
}

/// The Varde type of an object path's value, for the paths Varde reads.
fn path_type(path: &str, value: &str) -> Option<IndicatorType> {
    let ip = |v4: IndicatorType| {
        if value.contains('/') {
            IndicatorType::Cidr
        } else {
            v4
        }
    };
    Some(match path {
        "ipv4-addr:value" => ip(IndicatorType::Ipv4),
        "ipv6-addr:value" => ip(IndicatorType::Ipv6),
        "domain-name:value" => IndicatorType::Domain,
        "url:value" => IndicatorType::Url,
        "email-addr:value" | "email-message:from_ref.value" => IndicatorType::Email,
        "autonomous-system:number" => IndicatorType::Asn,
        _ => {
            let hash = path.strip_prefix("file:hashes.")?;
            match hash.to_ascii_uppercase().replace('-', "").as_str() {
                "MD5" => IndicatorType::Md5,
                "SHA1" => IndicatorType::Sha1,
                "SHA256" => IndicatorType::Sha256,
                _ => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorType::*;

    #[test]
    fn patterns() {
        let p = |s| parse_pattern(s).unwrap();
        assert_eq!(
            p("[ipv4-addr:value = '198.51.100.7']"),
            vec![(Ipv4, "198.51.100.7".into())]
        );
        assert_eq!(
            p("[ipv4-addr:value = '10.0.0.0/8']"),
            vec![(Cidr, "10.0.0.0/8".into())]
        );
        assert_eq!(
            p(
                "[file:hashes.'SHA-256' = 'aa' OR file:hashes.MD5 = 'bb'] AND [domain-name:value='x.example']"
            ),
            vec![
                (Sha256, "aa".into()),
                (Md5, "bb".into()),
                (Domain, "x.example".into())
            ]
        );
        assert_eq!(
            p("[url:value = 'http://a.example/it\\'s']"),
            vec![(Url, "http://a.example/it's".into())]
        );
        assert_eq!(
            p("[autonomous-system:number = 64500]"),
            vec![(Asn, "64500".into())]
        );
        assert_eq!(
            p(
                "([ipv6-addr:value = '2001:db8::1'] FOLLOWEDBY [file:name = 'x.exe']) WITHIN 300 SECONDS"
            ),
            vec![(Ipv6, "2001:db8::1".into())]
        );
        assert_eq!(p("[file:size > 1000 AND file:name NOT = 'a']"), vec![]);
        assert_eq!(p("[network-traffic:dst_port IN (80, 443)]"), vec![]);
        assert_eq!(p("[x-custom:list[0].ref = 'a']"), vec![]);
        for bad in [
            "",
            "ipv4-addr:value = '1.2.3.4'",
            "[ipv4-addr:value = '1.2.3.4'",
            "[ipv4-addr:value = '1.2.3.4]",
            "[ipv4-addr:value ~ '1.2.3.4']",
            "[ipv4-addr:value = '1.2.3.4'] AND",
            "[= '1.2.3.4']",
            "[ipv4-addr:value = '1.2.3.4'] WITHIN",
        ] {
            assert!(parse_pattern(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
