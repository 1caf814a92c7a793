//! Canonical forms of indicator values, so that dedup, warninglists and
//! routing compare like with like: canonical IPs, lower-case domains and hex,
//! upper-case CVE ids, `AS<n>` numbers. Defanged input (`hxxp`, `[.]`) is
//! refanged first, since feeds and humans paste it that way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::IndicatorType;

/// Longest value accepted for any type (URLs are the long ones).
pub const MAX_VALUE_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error("empty {0} value")]
    Empty(IndicatorType),
    #[error("{kind} value is {len} bytes; the limit is {MAX_VALUE_LEN}")]
    TooLong { kind: IndicatorType, len: usize },
    #[error("`{value}` is not a valid {kind}: {reason}")]
    Invalid {
        kind: IndicatorType,
        value: String,
        reason: &'static str,
    },
}

fn invalid(kind: IndicatorType, value: &str, reason: &'static str) -> NormaliseError {
    // Keep error messages short even for hostile input.
    let value: String = value.chars().take(120).collect();
    NormaliseError::Invalid {
        kind,
        value,
        reason,
    }
}

/// Undoes common defanging: `hxxp://`, `[.]`, `(.)`, `[dot]`, `[:]`, `[@]`.
pub fn refang(s: &str) -> String {
    let mut out = s.trim().to_string();
    for (from, to) in [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("[:]", ":"),
        ("[@]", "@"),
        ("[at]", "@"),
        ("[://]", "://"),
    ] {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    let lower = out.get(..5).map(str::to_ascii_lowercase);
    if let Some(l) = lower {
        if l.starts_with("hxxps") {
            out.replace_range(..5, "https");
        } else if l.starts_with("hxxp") {
            out.replace_range(..4, "http");
        } else if l.starts_with("fxp") {
            out.replace_range(..3, "ftp");
        }
    }
    out
}

/// Normalises `value` as `kind`, or says why it is not one.
pub fn normalise(kind: IndicatorType, value: &str) -> Result<String, NormaliseError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(NormaliseError::TooLong {
            kind,
            len: value.len(),
        });
    }
    let v = refang(value);
    if v.is_empty() {
        return Err(NormaliseError::Empty(kind));
    }
    match kind {
        IndicatorType::Ipv4 => v
            .parse::<Ipv4Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| invalid(kind, value, "expected a dotted-quad IPv4 address")),
        IndicatorType::Ipv6 => v
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| invalid(kind, value, "expected an IPv6 address")),
        IndicatorType::Cidr => {
            let net = if v.contains('/') {
                v.parse::<ipnet::IpNet>()
                    .map_err(|_| invalid(kind, value, "expected address/prefix-length"))?
            } else {
                // A bare address is its own host route.
                let ip: IpAddr = v
                    .parse()
                    .map_err(|_| invalid(kind, value, "expected address/prefix-length"))?;
                ipnet::IpNet::from(ip)
            };
            Ok(net.trunc().to_string())
        }
        IndicatorType::Domain | IndicatorType::Hostname => domain(kind, &v, value),
        IndicatorType::Url => url(&v, value),
        IndicatorType::Email => {
            let (local, dom) = v
                .rsplit_once('@')
                .ok_or_else(|| invalid(kind, value, "expected local@domain"))?;
            if local.is_empty()
                || local.len() > 64
                || local.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(invalid(kind, value, "bad local part"));
            }
            let dom = domain(IndicatorType::Domain, dom, value)
                .map_err(|_| invalid(kind, value, "bad domain part"))?;
            Ok(format!("{}@{dom}", local.to_lowercase()))
        }
        IndicatorType::Md5 => hex_digest(kind, &v, value, 32),
        IndicatorType::Sha1 => hex_digest(kind, &v, value, 40),
        IndicatorType::Sha256 => hex_digest(kind, &v, value, 64),
        IndicatorType::Cve => {
            let u = v.to_ascii_uppercase();
            let rest = u
                .strip_prefix("CVE-")
                .ok_or_else(|| invalid(kind, value, "expected CVE-YYYY-NNNN"))?;
            let (year, num) = rest
                .split_once('-')
                .ok_or_else(|| invalid(kind, value, "expected CVE-YYYY-NNNN"))?;
            let ok = year.len() == 4
                && year.bytes().all(|b| b.is_ascii_digit())
                && (4..=19).contains(&num.len())
                && num.bytes().all(|b| b.is_ascii_digit())
                && year >= "1999";
            if ok {
                Ok(u)
            } else {
                Err(invalid(kind, value, "expected CVE-YYYY-NNNN"))
            }
        }
        IndicatorType::Asn => {
            let u = v.to_ascii_uppercase();
            let digits = u.strip_prefix("AS").unwrap_or(&u).trim();
            let n: u32 = digits
                .parse()
                .map_err(|_| invalid(kind, value, "expected AS<number> (32-bit)"))?;
            Ok(format!("AS{n}"))
        }
    }
}

fn hex_digest(
    kind: IndicatorType,
    v: &str,
    original: &str,
    len: usize,
) -> Result<String, NormaliseError> {
    if v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(invalid(kind, original, "wrong length or not hex"))
    }
}

fn domain(kind: IndicatorType, v: &str, original: &str) -> Result<String, NormaliseError> {
    let v = v.trim_end_matches('.');
    if v.parse::<IpAddr>().is_ok() {
        return Err(invalid(kind, original, "an IP address, not a name"));
    }
    // url::Host applies IDNA (UTS 46), so `Gjøvik.kommune.no` becomes its
    // punycode form and case is folded.
    let host = match url::Host::parse(v) {
        Ok(url::Host::Domain(d)) => d,
        _ => return Err(invalid(kind, original, "not a valid domain name")),
    };
    let labels_ok = host.len() <= 253
        && host.contains('.')
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if labels_ok {
        Ok(host)
    } else {
        Err(invalid(kind, original, "not a valid domain name"))
    }
}

fn url(v: &str, original: &str) -> Result<String, NormaliseError> {
    let kind = IndicatorType::Url;
    // Feeds often list URLs without a scheme.
    let with_scheme = if v.contains("://") {
        v.to_string()
    } else {
        format!("http://{v}")
    };
    let mut u =
        url::Url::parse(&with_scheme).map_err(|_| invalid(kind, original, "not a valid URL"))?;
    if !matches!(u.scheme(), "http" | "https" | "ftp" | "ftps" | "ws" | "wss") {
        return Err(invalid(kind, original, "unsupported URL scheme"));
    }
    if u.host().is_none() {
        return Err(invalid(kind, original, "URL without a host"));
    }
    // Fragments never reach the server: they do not distinguish indicators.
    u.set_fragment(None);
    Ok(u.to_string())
}

/// Best guess of a bare value's type; used where no type is given.
pub fn guess_type(value: &str) -> Option<IndicatorType> {
    let v = refang(value);
    if v.is_empty() {
        return None;
    }
    if v.parse::<Ipv4Addr>().is_ok() {
        return Some(IndicatorType::Ipv4);
    }
    if v.parse::<Ipv6Addr>().is_ok() {
        return Some(IndicatorType::Ipv6);
    }
    if v.contains('/') && v.parse::<ipnet::IpNet>().is_ok() {
        return Some(IndicatorType::Cidr);
    }
    if v.contains("://") {
        return Some(IndicatorType::Url);
    }
    let upper = v.to_ascii_uppercase();
    if upper.starts_with("CVE-") {
        return Some(IndicatorType::Cve);
    }
    if upper.starts_with("AS") && upper[2..].bytes().all(|b| b.is_ascii_digit()) && v.len() > 2 {
        return Some(IndicatorType::Asn);
    }
    if v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match v.len() {
            32 => Some(IndicatorType::Md5),
            40 => Some(IndicatorType::Sha1),
            64 => Some(IndicatorType::Sha256),
            _ => None,
        };
    }
    if v.contains('@') {
        return Some(IndicatorType::Email);
    }
    if v.contains('.') && normalise(IndicatorType::Domain, &v).is_ok() {
        return Some(IndicatorType::Domain);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndicatorType::*;

    fn n(k: IndicatorType, v: &str) -> String {
        normalise(k, v).unwrap()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(n(Ipv4, " 192.0.2.1 "), "192.0.2.1");
        assert_eq!(n(Ipv4, "192[.]0[.]2[.]1"), "192.0.2.1");
        assert_eq!(n(Ipv6, "2001:DB8:0:0::1"), "2001:db8::1");
        assert_eq!(n(Ipv6, "[2001:db8::1]"), "2001:db8::1");
        assert_eq!(n(Cidr, "10.20.30.40/16"), "10.20.0.0/16");
        assert_eq!(n(Cidr, "2001:db8::1/32"), "2001:db8::/32");
        assert_eq!(n(Cidr, "192.0.2.7"), "192.0.2.7/32");
        assert_eq!(n(Domain, "Evil.Example.COM."), "evil.example.com");
        assert_eq!(n(Domain, "evil[.]example[.]com"), "evil.example.com");
        assert_eq!(n(Domain, "gjøvik.kommune.no"), "xn--gjvik-wua.kommune.no");
        assert_eq!(
            n(Url, "hxxps://Evil.Example.com:443/a/b?c=d#frag"),
            "https://evil.example.com/a/b?c=d"
        );
        assert_eq!(n(Url, "evil.example.com/x"), "http://evil.example.com/x");
        assert_eq!(n(Email, "Phish@Evil.Example.com"), "phish@evil.example.com");
        assert_eq!(
            n(Md5, "D41D8CD98F00B204E9800998ECF8427E"),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(n(Cve, "cve-2024-3400"), "CVE-2024-3400");
        assert_eq!(n(Asn, "as64500"), "AS64500");
        assert_eq!(n(Asn, "64500"), "AS64500");
    }

    #[test]
    fn refuses_junk() {
        for (k, v) in [
            (Ipv4, "300.1.1.1"),
            (Ipv4, "010.0.0.1"),
            (Ipv4, "1.2.3"),
            (Ipv6, "2001:::1"),
            (Cidr, "10.0.0.0/33"),
            (Domain, "192.0.2.1"),
            (Domain, "no_dot"),
            (Domain, "a..b"),
            (Domain, "-a.example"),
            (Url, "javascript:alert(1)"),
            (Url, "http://"),
            (Email, "no-at.example"),
            (Md5, "xyz"),
            (Sha256, "d41d8cd98f00b204e9800998ecf8427e"),
            (Cve, "CVE-24-1"),
            (Cve, "CVE-2024-12"),
            (Asn, "AS-1"),
            (Asn, "AS99999999999"),
            (Ipv4, ""),
        ] {
            assert!(normalise(k, v).is_err(), "{k} {v:?} should be refused");
        }
        assert!(matches!(
            normalise(Url, &"a".repeat(5000)),
            Err(NormaliseError::TooLong { .. })
        ));
    }

    #[test]
    fn guesses() {
        assert_eq!(guess_type("192.0.2.1"), Some(Ipv4));
        assert_eq!(guess_type("2001:db8::1"), Some(Ipv6));
        assert_eq!(guess_type("10.0.0.0/8"), Some(Cidr));
        assert_eq!(guess_type("https://x.example/a"), Some(Url));
        assert_eq!(guess_type("CVE-2024-3400"), Some(Cve));
        assert_eq!(guess_type("AS64500"), Some(Asn));
        assert_eq!(guess_type("evil.example.com"), Some(Domain));
        assert_eq!(guess_type(&"a".repeat(64)), Some(Sha256));
        assert_eq!(guess_type("a@b.example"), Some(Email));
        assert_eq!(guess_type("hello"), None);
    }
}
