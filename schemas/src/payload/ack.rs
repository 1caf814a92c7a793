use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Person;

/// "We have seen and are handling it", sent to the original sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Ack {
    /// Envelope id of the acknowledged message.
    pub of: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Person>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
