use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::GroupId;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a severity (info, low, medium, high, critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" => Severity::Info,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" | "important" => Severity::High,
            "critical" => Severity::Critical,
            _ => return Err(UnknownSeverity(s.to_string())),
        })
    }
}

/// An affected product, matched against organisations' asset tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Product {
    pub vendor: String,
    pub product: String,
    /// Affected versions as the vendor writes them (`< 10.1.9`, `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<String>,
}

impl Product {
    /// `vendor product`, lower-case: the form asset tags are written in.
    pub fn tag(&self) -> String {
        format!("{} {}", self.vendor.trim(), self.product.trim()).to_lowercase()
    }
}

/// A security advisory. Updates keep `advisory_id` and raise `revision`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Advisory {
    /// Stable id across revisions (`KCSIRT-2026-0042`).
    pub advisory_id: String,
    /// 1 for the first version, raised on every update.
    #[schemars(range(min = 1))]
    pub revision: u32,
    pub title: String,
    pub summary: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected: Vec<Product>,
    /// Recommended actions, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// Reference URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Sectors concerned (groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sectors: Vec<GroupId>,
    pub published: Timestamp,
    /// What changed in this revision (for revision > 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<String>,
    /// Set by the hub when the advisory was routed because the recipient runs
    /// an affected product ("you run citrix netscaler").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched_assets: Vec<String>,
}
