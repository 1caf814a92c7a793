use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Person;
use crate::ids::OrgId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentAction {
    Open,
    Note,
    Close,
}

/// Incident coordination across organisations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Incident {
    pub incident_id: Uuid,
    pub action: IncidentAction,
    pub title: String,
    pub participants: Vec<OrgId>,
    pub by: Person,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}
