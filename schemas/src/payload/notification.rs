use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Indicator;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Cidr,
    Asn,
    Domain,
    Asset,
}

/// Why the hub routed a finding to this org.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Match {
    pub kind: MatchKind,
    /// The constituency entry that matched (`10.20.0.0/16`, `AS64500`,
    /// `gjovik.kommune.no`, `citrix netscaler`).
    pub value: String,
}

/// "Something in your constituency was reported", AMBER+STRICT to the owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Notification {
    pub indicator: Indicator,
    pub matched: Match,
    /// Feed the finding came from.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    pub message: String,
    /// Advisory that will follow, if one is planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory_id: Option<String>,
}
