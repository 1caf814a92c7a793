//! Known false positives in MISP warninglist format (`name`, `type`,
//! `list`, `matching_attributes`), loaded from folders of `*.json`. Types:
//! `cidr` (longest-prefix tables), `hostname` (the name and every
//! sub-domain), `string` (exact), `substring` (Aho-Corasick) and `regex`
//! (one `RegexSet`). Lists are grouped by the indicator types they apply
//! to, so a check costs one lookup per group, not one per list.
//!
//! A checkout of MISP's own repository (github.com/MISP/misp-warninglists,
//! `lists/<name>/list.json` beside `schema.json`) can be named as is: only
//! its `lists/` folder is read. A list Varde cannot use (a type it does not
//! implement, a regex its engine does not accept, attribute types with no
//! Varde indicator type) is left out and reported in
//! [`Warninglists::skipped`], not an error: a full checkout always holds
//! some. A file that is not a warninglist, or an entry that does not parse
//! for its type, is an error naming the file.

use std::collections::HashMap;
use std::fmt;
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
    #[error("{path}: entry `{entry}` is not valid for a `{kind}` list: {reason}")]
    Entry {
        path: PathBuf,
        kind: &'static str,
        entry: String,
        reason: String,
    },
    #[error("{path}: more than {max} warninglists", max = u16::MAX)]
    TooMany { path: PathBuf },
    #[error("{path}: folders nested more than {MAX_DEPTH} deep (a symlink loop?)")]
    TooDeep { path: PathBuf },
}

/// Folders below a named path that are still searched for lists (a MISP
/// checkout needs 2: `lists/<name>/list.json`).
const MAX_DEPTH: usize = 8;

/// Why a list was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A `type` other than cidr, hostname, string, substring and regex.
    UnsupportedType(String),
    /// `matching_attributes` names only MISP attribute types that have no
    /// Varde indicator type (`phone-number`, `azure-application-id`), so
    /// the list could never match.
    NoIndicatorType(Vec<String>),
    /// A regex the `regex` crate does not accept (PCRE look-around or
    /// back-references).
    Regex { entry: String, reason: String },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::UnsupportedType(t) => write!(
                f,
                "type `{t}` is not supported (cidr, hostname, string, substring, regex)"
            ),
            SkipReason::NoIndicatorType(attrs) => write!(
                f,
                "matching_attributes [{}] name no indicator type Varde has",
                attrs.join(", ")
            ),
            SkipReason::Regex { entry, reason } => {
                // the crate's message ends with the one-line cause
                let cause = reason.lines().last().unwrap_or_default().trim();
                write!(f, "regex `{entry}` is not supported: {cause}")
            }
        }
    }
}

/// A list left out of the load.
#[derive(Clone, Debug)]
pub struct Skipped {
    pub path: PathBuf,
    pub name: String,
    pub reason: SkipReason,
}

/// A loaded list.
#[derive(Clone, Debug)]
pub struct ListInfo {
    pub path: PathBuf,
    pub name: String,
    /// cidr, hostname, string, substring or regex.
    pub kind: &'static str,
    /// Non-empty entries.
    pub entries: usize,
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
    lists: Vec<ListInfo>,
    skipped: Vec<Skipped>,
    groups: Vec<(Types, Group)>,
    entries: usize,
}

impl Warninglists {
    /// Every `*.json` under each path (files or folders, recursively;
    /// names starting with `.` are passed over). A folder holding `lists/`
    /// and `schema.json` is a MISP warninglists checkout: only its
    /// `lists/` is read.
    pub fn load(paths: &[PathBuf]) -> Result<Warninglists, WarninglistError> {
        let mut files = Vec::new();
        for p in paths {
            collect(p, 0, &mut files)?;
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

    /// The loaded lists, in load order.
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// Lists left out, and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
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
                self.skip(path, lf.name, SkipReason::UnsupportedType(other.into()));
                return Ok(());
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
        if types.0 == 0 {
            let attrs = lf.matching_attributes;
            self.skip(path, lf.name, SkipReason::NoIndicatorType(attrs));
            return Ok(());
        }
        if kind == "regex" {
            for e in lf.list.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
                if let Err(err) = regex::Regex::new(&misp_regex(e)) {
                    let reason = SkipReason::Regex {
                        entry: e.chars().take(80).collect(),
                        reason: err.to_string(),
                    };
                    self.skip(path, lf.name, reason);
                    return Ok(());
                }
            }
        }
        let id = u16::try_from(self.names.len())
            .map_err(|_| WarninglistError::TooMany { path: path.into() })?;
        self.names.push(lf.name.clone());
        let before = self.entries;
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
        self.lists.push(ListInfo {
            path: path.into(),
            name: lf.name,
            kind,
            entries: self.entries - before,
        });
        Ok(())
    }

    fn skip(&mut self, path: &Path, name: String, reason: SkipReason) {
        self.skipped.push(Skipped {
            path: path.into(),
            name,
            reason,
        });
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

fn collect(p: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), WarninglistError> {
    let read_err = |source| WarninglistError::Read {
        path: p.into(),
        source,
    };
    let meta = std::fs::metadata(p).map_err(read_err)?;
    if meta.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(WarninglistError::TooDeep { path: p.into() });
    }
    // A checkout of MISP/misp-warninglists: `lists/<name>/list.json`; the
    // schema and tooling beside `lists/` are not lists.
    let lists = p.join("lists");
    if lists.is_dir() && p.join("schema.json").is_file() {
        return collect(&lists, depth + 1, out);
    }
    for e in std::fs::read_dir(p).map_err(read_err)? {
        let e = e.map_err(read_err)?;
        if e.file_name().to_string_lossy().starts_with('.') {
            continue; // .git, .github, editor files
        }
        let path = e.path();
        if path.is_dir() {
            collect(&path, depth + 1, out)?;
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
        // a type Varde does not implement is left out, not an error
        w(
            "f.json",
            serde_json::json!({"name": "x", "type": "fuzzy", "list": ["a"]}),
        );
        let wl = Warninglists::load(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(wl.len(), 5);
        assert_eq!(wl.skipped().len(), 1);
        assert_eq!(
            wl.skipped()[0].reason,
            SkipReason::UnsupportedType("fuzzy".into())
        );
        assert!(wl.skipped()[0].path.ends_with("f.json"));
        std::fs::write(d.path().join("f.json"), "{").unwrap();
        assert!(matches!(
            Warninglists::load(&[d.path().to_path_buf()]),
            Err(WarninglistError::Format { .. })
        ));
    }

    /// The layout of github.com/MISP/misp-warninglists: `lists/<name>/
    /// list.json` beside `schema.json` (not a list) and `.git/`.
    fn misp_checkout(root: &Path) {
        let w = |rel: &str, body: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        };
        let list = |v: serde_json::Value| v.to_string();
        w(
            "schema.json",
            r#"{"$schema": "http://json-schema.org/schema#"}"#,
        );
        w(".git/config.json", "not json at all");
        w("tools/generator.json", "{}");
        w(
            "lists/rfc1918/list.json",
            &list(
                serde_json::json!({"name": "List of RFC 1918 CIDR blocks", "version": 5, "description": "d", "type": "cidr", "list": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"], "matching_attributes": ["ip-src", "ip-dst"]}),
            ),
        );
        w("lists/rfc1918/README.md", "# notes");
        w(
            "lists/top/list.json",
            &list(
                serde_json::json!({"name": "Top", "version": 1, "description": "d", "type": "string", "list": ["google.com"], "matching_attributes": ["domain", "hostname"]}),
            ),
        );
        w(
            "lists/fuzzy/list.json",
            &list(
                serde_json::json!({"name": "Fuzzy", "version": 1, "description": "d", "type": "fuzzy-hash", "list": ["3::"]}),
            ),
        );
        w(
            "lists/phones/list.json",
            &list(
                serde_json::json!({"name": "Phones", "version": 1, "description": "d", "type": "regex", "list": ["^\\+47"], "matching_attributes": ["phone-number"]}),
            ),
        );
        w(
            "lists/lookaround/list.json",
            &list(
                serde_json::json!({"name": "Look-around", "version": 1, "description": "d", "type": "regex", "list": ["/^(?!www\\.)evil/i"], "matching_attributes": ["domain"]}),
            ),
        );
    }

    #[test]
    fn a_misp_checkout_loads_from_its_lists_folder_and_skips_what_it_cannot_use() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("misp-warninglists");
        misp_checkout(&root);
        use IndicatorType::*;
        // the checkout, its lists/ folder, or a folder holding the checkout
        // beside an own list
        std::fs::write(
            d.path().join("own.json"),
            serde_json::json!({"name": "Own", "type": "hostname", "list": ["intra.example"]})
                .to_string(),
        )
        .unwrap();
        for (path, lists) in [
            (root.clone(), 2),
            (root.join("lists"), 2),
            (d.path().to_path_buf(), 3),
        ] {
            let wl = Warninglists::load(std::slice::from_ref(&path))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(wl.len(), lists, "{}", path.display());
            assert_eq!(wl.entries(), if lists == 3 { 5 } else { 4 });
            let mut skipped: Vec<(String, SkipReason)> = wl
                .skipped()
                .iter()
                .map(|s| (s.name.clone(), s.reason.clone()))
                .collect();
            skipped.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(skipped.len(), 3, "{skipped:?}");
            assert_eq!(
                skipped[0].1,
                SkipReason::UnsupportedType("fuzzy-hash".into())
            );
            assert_eq!(skipped[1].0, "Look-around");
            assert!(
                matches!(&skipped[1].1, SkipReason::Regex { entry, .. } if entry == "/^(?!www\\.)evil/i"),
                "{skipped:?}"
            );
            assert!(skipped[1].1.to_string().contains("not supported"));
            assert_eq!(
                skipped[2].1,
                SkipReason::NoIndicatorType(vec!["phone-number".into()])
            );
            let info = wl.lists().iter().find(|l| l.name == "Top").unwrap();
            assert_eq!((info.kind, info.entries), ("string", 1));
            assert!(info.path.ends_with("lists/top/list.json"));
            assert_eq!(
                wl.check(&ind(Domain, "google.com")).map(str::to_string),
                Some("Top".into())
            );
            assert_eq!(
                wl.check(&ind(Ipv4, "192.168.1.1")),
                Some("List of RFC 1918 CIDR blocks")
            );
            assert_eq!(wl.check(&ind(Domain, "evil.example")), None);
        }
        // without schema.json it is a plain folder: every *.json is a list
        std::fs::remove_file(root.join("schema.json")).unwrap();
        assert!(matches!(
            Warninglists::load(std::slice::from_ref(&root)),
            Err(WarninglistError::Format { path, .. }) if path.ends_with("tools/generator.json")
        ));
    }
}
