use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::normalise::{self, NormaliseError};

/// Indicator types, named as in MISP/STIX.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorType {
    Ipv4,
    Ipv6,
    Cidr,
    Domain,
    Hostname,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Cve,
    Asn,
}

impl IndicatorType {
    pub const ALL: [IndicatorType; 12] = [
        IndicatorType::Ipv4,
        IndicatorType::Ipv6,
        IndicatorType::Cidr,
        IndicatorType::Domain,
        IndicatorType::Hostname,
        IndicatorType::Url,
        IndicatorType::Email,
        IndicatorType::Md5,
        IndicatorType::Sha1,
        IndicatorType::Sha256,
        IndicatorType::Cve,
        IndicatorType::Asn,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            IndicatorType::Ipv4 => "ipv4",
            IndicatorType::Ipv6 => "ipv6",
            IndicatorType::Cidr => "cidr",
            IndicatorType::Domain => "domain",
            IndicatorType::Hostname => "hostname",
            IndicatorType::Url => "url",
            IndicatorType::Email => "email",
            IndicatorType::Md5 => "md5",
            IndicatorType::Sha1 => "sha1",
            IndicatorType::Sha256 => "sha256",
            IndicatorType::Cve => "cve",
            IndicatorType::Asn => "asn",
        }
    }

    /// Guesses the type of a bare value (for `!varde ioc <value>` and plain
    /// lists without a type column).
    pub fn guess(value: &str) -> Option<IndicatorType> {
        normalise::guess_type(value)
    }
}

impl fmt::Display for IndicatorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an indicator type (ipv4, ipv6, cidr, domain, hostname, url, email, md5, sha1, sha256, cve, asn)"
)]
pub struct UnknownIndicatorType(pub String);

impl FromStr for IndicatorType {
    type Err = UnknownIndicatorType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase();
        IndicatorType::ALL
            .into_iter()
            .find(|t| t.as_str() == l)
            .ok_or_else(|| UnknownIndicatorType(s.to_string()))
    }
}

/// One observable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Indicator {
    #[serde(rename = "type")]
    pub kind: IndicatorType,
    /// Normalised value (see `Indicator::new`).
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// 0-100, as in STIX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub confidence: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Indicator {
    /// Builds an indicator with its value normalised and validated.
    pub fn new(kind: IndicatorType, value: &str) -> Result<Self, NormaliseError> {
        Ok(Indicator {
            kind,
            value: normalise::normalise(kind, value)?,
            first_seen: None,
            last_seen: None,
            confidence: None,
            tags: Vec::new(),
            comment: None,
        })
    }
}

/// A batch of indicators from one source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IndicatorBatch {
    /// Feed or system the batch came from (`misp:circl-osint`, `ids:gjovik-fw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schemars(length(max = 5000))]
    pub indicators: Vec<Indicator>,
}
