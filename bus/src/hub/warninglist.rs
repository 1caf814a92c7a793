//! Known false positives in MISP warninglist format (`name`, `type`,
//! `list`, `matching_attributes`), loaded from folders of `*.json`. Types:
//! `cidr` (longest-prefix tables), `hostname` (the name and every
//! sub-domain), `string` (exact), `substring` (Aho-Corasick) and `regex`
//! (one `RegexSet`). Lists are grouped by the indicator types they apply
//! to, so a check costs one lookup per group, not one per list.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use regex::RegexSet;
use serde::Deserialize;
use varde_schemas::payload::{Indicator, IndicatorType};

#[derive(Debug, thiserror::Error)]
pub enum WarninglistError {
    #[error("cannot read warninglist {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a MISP warninglist: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error(
        "{path}: warninglist type `{kind}` is not supported (cidr, hostname, string, substring, regex)"
    )]
    UnknownType { path: PathBuf, kind: String },
    #[error("{path}: entry `{entry}` is not valid for a `{kind}` list: {reason}")]
    Entry {
        path: PathBuf,
        kind: &'static str,
        entry: String,
        reason: String,
    },
}

#[derive(Deserialize)]
struct ListFile {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    list: Vec<String>,
    #[serde(default)]
    matching_attributes: Vec<String>,
}

/// A set of indicator types as a bit mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Types(u16);

impl Types {
    fn of(ts: &[IndicatorType]) -> Types {
        Types(ts.iter().fold(0, |m, t| m | bit(*t)))
    }
    fn has(self, t: IndicatorType) -> bool {
        self.0 & bit(t) != 0
    }
}

fn bit(t: IndicatorType) -> u16 {
    1 << (t as u16)
}

/// MISP attribute types → Varde types, for `matching_attributes`.
fn misp_types(attr: &str) -> &'static [IndicatorType] {
    use IndicatorType::*;
    match attr {
        "ip-src" | "ip-dst" | "ip-src|port" | "ip-dst|port" | "ip" => &[Ipv4, Ipv6, Cidr],
        "domain|ip" => &[Domain, Ipv4, Ipv6, Cidr],
        "domain" => &[Domain],
        "hostname" | "hostname|port" => &[Hostname, Domain],
        "url" | "uri" | "link" => &[Url],
        "md5" | "filename|md5" => &[Md5],
        "sha1" | "filename|sha1" => &[Sha1],
        "sha256" | "filename|sha256" => &[Sha256],
        "email" | "email-src" | "email-dst" | "target-email" => &[Email],
        "AS" => &[Asn],
        "vulnerability" => &[Cve],
        _ => &[],
    }
}

/// What a list type applies to when the list names no attributes.
fn default_types(kind: &str) -> Types {
    use IndicatorType::*;
    match kind {
        "cidr" => Types::of(&[Ipv4, Ipv6, Cidr]),
        "hostname" => Types::of(&[Domain, Hostname, Url, Email]),
        _ => Types(u16::MAX),
    }
}

#[derive(Default)]
struct Group {
    v4: PrefixMap<Ipv4Net, u16>,
    v6: PrefixMap<Ipv6Net, u16>,
    hostnames: HashMap<String, u16>,
    strings: HashMap<String, u16>,
    substrings: Vec<(String, u16)>,
    regexes: Vec<(String, u16)>,
    substring_ac: Option<(AhoCorasick, Vec<u16>)>,
    regex_set: Option<(RegexSet, Vec<u16>)>,
}

/// Loaded warninglists.
#[derive(Default)]
pub struct Warninglists {
    names: Vec<String>,
    groups: Vec<(Types, Group)>,
    entries: usize,
}

impl Warninglists {
    /// Every `*.json` under each path (files or folders, recursively).
    pub fn load(paths: &[PathBuf]) -> Result<Warninglists, WarninglistError> {
        let mut files = Vec::new();
        for p in paths {
            collect(p, &mut files)?;
        }
        files.sort();
        let mut wl = Warninglists::default();
        for f in &files {
            wl.add_file(f)?;
        }
        wl.finish(files.first().map(PathBuf::as_path).unwrap_or(Path::new("")))?;
        Ok(wl)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Entries over all lists.
    pub fn entries(&self) -> usize {
        self.entries
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn add_file(&mut self, path: &Path) -> Result<(), WarninglistError> {
        let bytes = std::fs::read(path).map_err(|source| WarninglistError::Read {
            path: path.into(),
            source,
        })?;
        let lf: ListFile =
            serde_json::from_slice(&bytes).map_err(|e| WarninglistError::Format {
                path: path.into(),
                detail: e.to_string(),
            })?;
        let kind: &'static str = match lf.kind.as_str() {
            "cidr" => "cidr",
            "hostname" => "hostname",
            "string" => "string",
            "substring" => "substring",
            "regex" => "regex",
            other => {
                return Err(WarninglistError::UnknownType {
                    path: path.into(),
                    kind: other.into(),
                });
            }
        };
        let types = if lf.matching_attributes.is_empty() {
            default_types(kind)
        } else {
            let ts: Vec<IndicatorType> = lf
                .matching_attributes
                .iter()
                .flat_map(|a| misp_types(a).iter().copied())
                .collect();
            Types::of(&ts)
        };
        let id = self.names.len() as u16;
        self.names.push(lf.name);
        let gi = match self.groups.iter().position(|(t, _)| *t == types) {
            Some(i) => i,
            None => {
                self.groups.push((types, Group::default()));
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[gi].1;
        let bad = |entry: &str, reason: &str| WarninglistError::Entry {
            path: path.into(),
            kind,
            entry: entry.chars().take(80).collect(),
            reason: reason.into(),
        };
        for raw in &lf.list {
            let e = raw.trim();
            if e.is_empty() {
                continue;
            }
            self.entries += 1;
            match kind {
                "cidr" => {
                    let net: IpNet = match e.parse::<IpNet>() {
                        Ok(n) => n.trunc(),
                        Err(_) => e
                            .parse::<IpAddr>()
                            .map(IpNet::from)
                            .map_err(|_| bad(e, "not an address or CIDR"))?,
                    };
                    match net {
                        IpNet::V4(n) => {
                            g.v4.insert(n, id);
                        }
                        IpNet::V6(n) => {
                            g.v6.insert(n, id);
                        }
                    }
                }
                "hostname" => {
                    let h = e
                        .trim_start_matches("*.")
                        .trim_matches('.')
                        .to_ascii_lowercase();
                    g.hostnames.insert(h, id);
                }
                "string" => {
                    g.strings.insert(e.to_ascii_lowercase(), id);
                }
                "substring" => g.substrings.push((e.to_ascii_lowercase(), id)),
                _ => g.regexes.push((misp_regex(e), id)),
            }
        }
        Ok(())
    }

    fn finish(&mut self, any_path: &Path) -> Result<(), WarninglistError> {
        for (_, g) in &mut self.groups {
            if !g.substrings.is_empty() {
                let ac = AhoCorasick::new(g.substrings.iter().map(|(s, _)| s)).map_err(|e| {
                    WarninglistError::Format {
                        path: any_path.into(),
                        detail: e.to_string(),
                    }
                })?;
                g.substring_ac = Some((ac, g.substrings.iter().map(|(_, i)| *i).collect()));
            }
            if !g.regexes.is_empty() {
                let set = RegexSet::new(g.regexes.iter().map(|(r, _)| r)).map_err(|e| {
                    WarninglistError::Entry {
                        path: any_path.into(),
                        kind: "regex",
                        entry: String::new(),
                        reason: e.to_string(),
                    }
                })?;
                g.regex_set = Some((set, g.regexes.iter().map(|(_, i)| *i).collect()));
            }
        }
        Ok(())
    }

    /// The name of a list the (normalised) indicator is on, if any.
    pub fn check(&self, ind: &Indicator) -> Option<&str> {
        let t = ind.kind;
        let v = ind.value.as_str();
        for (types, g) in &self.groups {
            if !types.has(t) {
                continue;
            }
            if let Some(id) = g.check(t, v) {
                return self.names.get(id as usize).map(String::as_str);
            }
        }
        None
    }
}

impl Group {
    fn check(&self, t: IndicatorType, v: &str) -> Option<u16> {
        use IndicatorType::*;
        if let Some(&id) = self.strings.get(v) {
            return Some(id);
        }
        match t {
            Ipv4 | Ipv6 | Cidr => {
                if let Some(id) = self.ip(v) {
                    return Some(id);
                }
            }
            Domain | Hostname => {
                if let Some(id) = self.hostname(v) {
                    return Some(id);
                }
            }
            Url => {
                if let Some(host) = url::Url::parse(v)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                {
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    if let Some(id) = self.hostname(host).or_else(|| self.ip(host)) {
                        return Some(id);
                    }
                }
            }
            Email => {
                if let Some((_, d)) = v.rsplit_once('@')
                    && let Some(id) = self.hostname(d)
                {
                    return Some(id);
                }
            }
            _ => {}
        }
        if let Some((ac, ids)) = &self.substring_ac
            && let Some(m) = ac.find(v)
        {
            return ids.get(m.pattern().as_usize()).copied();
        }
        if let Some((set, ids)) = &self.regex_set
            && let Some(i) = set.matches(v).iter().next()
        {
            return ids.get(i).copied();
        }
        None
    }

    fn ip(&self, v: &str) -> Option<u16> {
        if self.v4.is_empty() && self.v6.is_empty() {
            return None;
        }
        let net: IpNet = match v.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => IpNet::from(v.parse::<IpAddr>().ok()?),
        };
        match net {
            IpNet::V4(n) => self.v4.get_lpm(&n).map(|(_, id)| *id),
            IpNet::V6(n) => self.v6.get_lpm(&n).map(|(_, id)| *id),
        }
    }

    /// The name or any parent domain is listed.
    fn hostname(&self, name: &str) -> Option<u16> {
        if self.hostnames.is_empty() {
            return None;
        }
        let mut rest = name;
        loop {
            if let Some(&id) = self.hostnames.get(rest) {
                return Some(id);
            }
            rest = rest.split_once('.')?.1;
        }
    }
}

/// MISP writes regexes PCRE-style, often as `/…/flags`.
fn misp_regex(e: &str) -> String {
    if let Some(body) = e.strip_prefix('/')
        && let Some(end) = body.rfind('/')
    {
        let (pat, flags) = (&body[..end], &body[end + 1..]);
        if flags.contains('i') {
            return format!("(?i){pat}");
        }
        return pat.to_string();
    }
    e.to_string()
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), WarninglistError> {
    let meta = std::fs::metadata(p).map_err(|source| WarninglistError::Read {
        path: p.into(),
        source,
    })?;
    if meta.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let rd = std::fs::read_dir(p).map_err(|source| WarninglistError::Read {
        path: p.into(),
        source,
    })?;
    for e in rd.flatten() {
        let path = e.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(t: IndicatorType, v: &str) -> Indicator {
        Indicator::new(t, v).unwrap()
    }

    #[test]
    fn every_list_type() {
        let d = tempfile::tempdir().unwrap();
        let w = |name: &str, body: serde_json::Value| {
            std::fs::write(d.path().join(name), body.to_string()).unwrap();
        };
        w(
            "a.json",
            serde_json::json!({"name": "resolvers", "type": "cidr", "list": ["8.8.8.8", "2606:4700:4700::1111/128", "10.0.0.0/8"], "matching_attributes": ["ip-dst", "ip-src"]}),
        );
        w(
            "b.json",
            serde_json::json!({"name": "cdn", "type": "hostname", "list": ["cloudfront.net", ".akamaiedge.net"]}),
        );
        w(
            "c.json",
            serde_json::json!({"name": "exact", "type": "string", "list": ["d41d8cd98f00b204e9800998ecf8427e"], "matching_attributes": ["md5"]}),
        );
        w(
            "d.json",
            serde_json::json!({"name": "sub", "type": "substring", "list": ["windowsupdate"]}),
        );
        w(
            "e.json",
            serde_json::json!({"name": "re", "type": "regex", "list": ["/^https?:\\/\\/localhost/i"], "matching_attributes": ["url"]}),
        );
        let wl = Warninglists::load(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(wl.len(), 5);
        use IndicatorType::*;
        assert_eq!(wl.check(&ind(Ipv4, "8.8.8.8")), Some("resolvers"));
        assert_eq!(wl.check(&ind(Ipv4, "10.1.2.3")), Some("resolvers"));
        assert_eq!(wl.check(&ind(Cidr, "10.1.0.0/16")), Some("resolvers"));
        assert_eq!(
            wl.check(&ind(Ipv6, "2606:4700:4700::1111")),
            Some("resolvers")
        );
        assert_eq!(wl.check(&ind(Ipv4, "8.8.4.4")), None);
        assert_eq!(wl.check(&ind(Domain, "d1.cloudfront.net")), Some("cdn"));
        assert_eq!(wl.check(&ind(Domain, "cloudfront.net")), Some("cdn"));
        assert_eq!(wl.check(&ind(Domain, "notcloudfront.net")), None);
        assert_eq!(
            wl.check(&ind(Url, "https://x.akamaiedge.net/a")),
            Some("cdn")
        );
        assert_eq!(
            wl.check(&ind(Md5, "D41D8CD98F00B204E9800998ECF8427E")),
            Some("exact")
        );
        assert_eq!(
            wl.check(&ind(Domain, "a.windowsupdate.example")),
            Some("sub")
        );
        assert_eq!(wl.check(&ind(Url, "http://LOCALHOST/x")), Some("re"));
        assert_eq!(wl.check(&ind(Domain, "evil.example")), None);

        w(
            "f.json",
            serde_json::json!({"name": "x", "type": "cidr", "list": ["not-an-ip"]}),
        );
        assert!(matches!(
            Warninglists::load(&[d.path().to_path_buf()]),
            Err(WarninglistError::Entry { .. })
        ));
        w(
            "f.json",
            serde_json::json!({"name": "x", "type": "fuzzy", "list": []}),
        );
        assert!(matches!(
            Warninglists::load(&[d.path().to_path_buf()]),
            Err(WarninglistError::UnknownType { .. })
        ));
        std::fs::write(d.path().join("f.json"), "{").unwrap();
        assert!(matches!(
            Warninglists::load(&[d.path().to_path_buf()]),
            Err(WarninglistError::Format { .. })
        ));
    }
}
