use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{IndicatorType, Person};

/// "We saw this value." From a member to the hub, or, with `aggregate`,
/// the hub's anonymous count to the community.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sighting {
    #[serde(rename = "type")]
    pub kind: IndicatorType,
    pub value: String,
    pub seen_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Person>,
    /// Present only on the hub's republished counts; never names the orgs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<SightingAggregate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SightingAggregate {
    /// Distinct member organisations that reported the value.
    pub orgs: u32,
    pub window_hours: u32,
}
