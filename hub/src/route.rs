//! Who owns a finding: the directory's constituencies (CIDRs by
//! longest-prefix match, ASNs, domains and their sub-domains) and asset
//! tags (vendor/product names matched against an advisory's affected
//! products). Built once per directory version; lookups never allocate
//! unless they match.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use varde_schemas::payload::{Indicator, IndicatorType, Match, MatchKind, Product};

use varde_bus::directory::VerifiedDirectory;

/// Orgs by directory index. Almost always one; several only when two orgs
/// list the very same prefix, ASN or domain.
type Owners = Vec<u32>;

#[derive(Default)]
pub struct Router {
    v4: PrefixMap<Ipv4Net, Owners>,
    v6: PrefixMap<Ipv6Net, Owners>,
    asns: HashMap<u32, Owners>,
    domains: HashMap<String, Owners>,
    /// (normalised asset tag, the org's own spelling, org index)
    assets: Vec<(String, String, u32)>,
    cidrs: usize,
}

/// A finding's owners and the constituency entry that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed<'a> {
    pub orgs: &'a [u32],
    pub matched: Match,
}

impl Router {
    pub fn new(dir: &VerifiedDirectory) -> Router {
        let mut r = Router::default();
        for (i, org) in dir.orgs().iter().enumerate() {
            let i = i as u32;
            let c = &org.constituency;
            for net in &c.cidrs {
                r.cidrs += 1;
                match net.trunc() {
                    IpNet::V4(n) => push(r.v4.entry(n).or_default(), i),
                    IpNet::V6(n) => push(r.v6.entry(n).or_default(), i),
                }
            }
            for a in &c.asns {
                push(r.asns.entry(*a).or_default(), i);
            }
            for d in &c.domains {
                // Directory domains are written by people: same canonical
                // form as indicator values (lower case, punycode).
                let d = varde_schemas::normalise::normalise(IndicatorType::Domain, d)
                    .unwrap_or_else(|_| d.trim().trim_end_matches('.').to_ascii_lowercase());
                push(r.domains.entry(d).or_default(), i);
            }
            for a in &org.assets {
                let n = asset_words(a);
                if !n.is_empty() {
                    r.assets.push((n, a.clone(), i));
                }
            }
        }
        r
    }

    /// CIDRs in the table.
    pub fn cidrs(&self) -> usize {
        self.cidrs
    }

    /// Longest-prefix match of one address.
    pub fn lookup_ip(&self, ip: IpAddr) -> Option<(IpNet, &[u32])> {
        match ip {
            IpAddr::V4(a) => {
                let (n, o) = self.v4.get_lpm(&Ipv4Net::from(a))?;
                Some((IpNet::V4(n), o.as_slice()))
            }
            IpAddr::V6(a) => {
                let (n, o) = self.v6.get_lpm(&Ipv6Net::from(a))?;
                Some((IpNet::V6(n), o.as_slice()))
            }
        }
    }

    fn lookup_net(&self, net: IpNet) -> Option<(IpNet, &[u32])> {
        match net {
            IpNet::V4(n) => self
                .v4
                .get_lpm(&n)
                .map(|(p, o)| (IpNet::V4(p), o.as_slice())),
            IpNet::V6(n) => self
                .v6
                .get_lpm(&n)
                .map(|(p, o)| (IpNet::V6(p), o.as_slice())),
        }
    }

    /// The owned domain that is `name` or its nearest parent.
    pub fn lookup_domain(&self, name: &str) -> Option<(&str, &[u32])> {
        if self.domains.is_empty() {
            return None;
        }
        let mut rest = name;
        loop {
            if let Some((k, o)) = self.domains.get_key_value(rest) {
                return Some((k.as_str(), o.as_slice()));
            }
            rest = rest.split_once('.')?.1;
        }
    }

    fn host(&self, host: &str) -> Option<Routed<'_>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.lookup_ip(ip).map(|(n, o)| cidr(n, o));
        }
        self.lookup_domain(host).map(|(d, o)| Routed {
            orgs: o,
            matched: Match {
                kind: MatchKind::Domain,
                value: d.to_string(),
            },
        })
    }

    /// Who owns a (normalised) indicator.
    pub fn route(&self, ind: &Indicator) -> Option<Routed<'_>> {
        let v = ind.value.as_str();
        match ind.kind {
            IndicatorType::Ipv4 | IndicatorType::Ipv6 => {
                let ip: IpAddr = v.parse().ok()?;
                self.lookup_ip(ip).map(|(n, o)| cidr(n, o))
            }
            IndicatorType::Cidr => {
                let net: IpNet = v.parse().ok()?;
                self.lookup_net(net).map(|(n, o)| cidr(n, o))
            }
            IndicatorType::Domain | IndicatorType::Hostname => self.host(v),
            IndicatorType::Email => self.host(v.rsplit_once('@')?.1),
            IndicatorType::Url => {
                let u = url::Url::parse(v).ok()?;
                self.host(u.host_str()?)
            }
            IndicatorType::Asn => {
                let n: u32 = v.strip_prefix("AS")?.parse().ok()?;
                self.asns.get(&n).map(|o| Routed {
                    orgs: o.as_slice(),
                    matched: Match {
                        kind: MatchKind::Asn,
                        value: v.to_string(),
                    },
                })
            }
            IndicatorType::Md5
            | IndicatorType::Sha1
            | IndicatorType::Sha256
            | IndicatorType::Cve => None,
        }
    }

    /// Orgs running one of `products`, each with the asset tags that
    /// matched (in the org's own spelling).
    pub fn assets(&self, products: &[Product]) -> Vec<(u32, Vec<String>)> {
        let mut out: Vec<(u32, Vec<String>)> = Vec::new();
        for p in products {
            let tag = asset_words(&format!("{} {}", p.vendor, p.product));
            if tag.is_empty() {
                continue;
            }
            for (asset, spelling, org) in &self.assets {
                if same_product(asset, &tag) {
                    match out.iter_mut().find(|(o, _)| o == org) {
                        Some((_, list)) if !list.contains(spelling) => list.push(spelling.clone()),
                        Some(_) => {}
                        None => out.push((*org, vec![spelling.clone()])),
                    }
                }
            }
        }
        out.sort_by_key(|(o, _)| *o);
        out
    }
}

fn push(v: &mut Owners, i: u32) {
    if !v.contains(&i) {
        v.push(i);
    }
}

fn cidr(n: IpNet, orgs: &[u32]) -> Routed<'_> {
    Routed {
        orgs,
        matched: Match {
            kind: MatchKind::Cidr,
            value: n.to_string(),
        },
    }
}

/// Lower case words, punctuation as spaces: `Citrix NetScaler-ADC` →
/// `citrix netscaler adc`.
fn asset_words(s: &str) -> String {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '.')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Same product, or one names a more specific edition of the other on a
/// word boundary: an org that runs `citrix netscaler` is concerned by
/// `citrix netscaler adc`, and one that runs `fortinet fortigate 7.2` by
/// `fortinet fortigate`.
fn same_product(asset: &str, tag: &str) -> bool {
    let prefix = |long: &str, short: &str| {
        long.len() > short.len() && long.starts_with(short) && long.as_bytes()[short.len()] == b' '
    };
    asset == tag || prefix(tag, asset) || prefix(asset, tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use varde_testkit::synthetic::Synthetic;

    #[test]
    fn routes_by_longest_prefix_asn_domain_and_asset() {
        let mut s = Synthetic::demo();
        if let Some(o) = s.org_mut("innlandet-fk") {
            // a /24 inside gjovik's /16 belongs to the county
            o.constituency.cidrs = vec![
                "10.20.5.0/24".parse().unwrap(),
                "2001:db8:20::/48".parse().unwrap(),
            ];
            o.constituency.asns = vec![64500];
        }
        let h = s.handle().unwrap();
        let dir = h.current();
        let r = Router::new(&dir);
        let idx = |o: &str| dir.org_index(o).unwrap() as u32;
        let ind = |t, v| Indicator::new(t, v).unwrap();
        use IndicatorType::*;
        let got = r.route(&ind(Ipv4, "10.20.1.1")).unwrap();
        assert_eq!(got.orgs, &[idx("gjovik")]);
        assert_eq!(got.matched.value, "10.20.0.0/16");
        let got = r.route(&ind(Ipv4, "10.20.5.9")).unwrap();
        assert_eq!(
            (got.orgs, got.matched.value.as_str()),
            (&[idx("innlandet-fk")][..], "10.20.5.0/24")
        );
        assert!(r.route(&ind(Ipv4, "10.21.0.1")).is_none());
        assert_eq!(
            r.route(&ind(Ipv6, "2001:db8:20::5")).unwrap().orgs,
            &[idx("innlandet-fk")]
        );
        assert_eq!(
            r.route(&ind(Cidr, "10.30.7.0/24")).unwrap().orgs,
            &[idx("lillehammer")]
        );
        assert_eq!(
            r.route(&ind(Asn, "AS64500")).unwrap().matched.kind,
            MatchKind::Asn
        );
        let got = r.route(&ind(Domain, "vpn.gjovik.kommune.example")).unwrap();
        assert_eq!(
            (got.orgs, got.matched.value.as_str()),
            (&[idx("gjovik")][..], "gjovik.kommune.example")
        );
        assert!(r.route(&ind(Domain, "notgjovik.kommune.example")).is_none());
        assert!(
            r.route(&ind(Url, "https://mail.gjovik.kommune.example/owa"))
                .is_some()
        );
        assert!(r.route(&ind(Url, "http://10.30.1.1:8080/x")).is_some());
        assert!(r.route(&ind(Email, "it@gjovik.kommune.example")).is_some());
        assert!(r.route(&ind(Sha256, &"a".repeat(64))).is_none());

        let p = |v: &str, pr: &str| Product {
            vendor: v.into(),
            product: pr.into(),
            versions: None,
        };
        assert_eq!(
            r.assets(&[p("Fortinet", "FortiGate")]),
            vec![(idx("lillehammer"), vec!["fortinet fortigate".to_string()])]
        );
        assert_eq!(
            r.assets(&[p("Citrix", "NetScaler ADC")]),
            vec![(idx("gjovik"), vec!["citrix netscaler".to_string()])]
        );
        assert!(r.assets(&[p("Citrix", "Net")]).is_empty());
        assert!(r.assets(&[p("Fortinet", "FortiOS")]).is_empty());
    }
}
