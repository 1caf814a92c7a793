use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Indicator, Severity};

/// A short, urgent warning from the CSIRT.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    pub title: String,
    pub body: String,
    pub severity: Severity,
    /// Asks bridges to mention the room (`@room`) where their config allows.
    #[serde(default)]
    pub urgent: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<Indicator>,
    /// The advisory that will follow or that this alert is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory_id: Option<String>,
}
