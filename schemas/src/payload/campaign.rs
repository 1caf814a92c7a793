//! Closing the loop on a warning: the CSIRT's campaign for an advisory or
//! alert (kind `campaign`, to each target org alone) and each org's
//! remediation status (kind `status`, to the CSIRT alone). Who a status is
//! from is the envelope's verified sender: the payload names no org, so no
//! org can report for another. The bus enforces the labels and audiences of
//! both kinds (bus/src/kind_rules.rs).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Person;

/// The longest `about` (an advisory id or an alert's envelope id).
pub const MAX_ABOUT: usize = 128;
/// The longest note on a status or title of a campaign, in bytes.
pub const MAX_NOTE: usize = 2_000;

/// Where an org stands on a warning, close to CSAF 2.0's remediation and
/// product-status vocabulary. `delivered` is automatic (the org's bridge
/// posted it into a room); the rest are set by the org's people.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RemediationState {
    Delivered,
    Acknowledged,
    NotAffected,
    Affected,
    InProgress,
    Remediated,
    NeedsHelp,
}

impl RemediationState {
    pub const ALL: [RemediationState; 7] = [
        RemediationState::Delivered,
        RemediationState::Acknowledged,
        RemediationState::NotAffected,
        RemediationState::Affected,
        RemediationState::InProgress,
        RemediationState::Remediated,
        RemediationState::NeedsHelp,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RemediationState::Delivered => "delivered",
            RemediationState::Acknowledged => "acknowledged",
            RemediationState::NotAffected => "not_affected",
            RemediationState::Affected => "affected",
            RemediationState::InProgress => "in_progress",
            RemediationState::Remediated => "remediated",
            RemediationState::NeedsHelp => "needs_help",
        }
    }

    /// A person's answer, as opposed to the bridge's automatic receipt:
    /// only an answer stops the reminders.
    pub const fn is_answer(self) -> bool {
        !matches!(self, RemediationState::Delivered)
    }
}

impl fmt::Display for RemediationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a status (delivered, acknowledged, not_affected, affected, in_progress, remediated, needs_help)"
)]
pub struct UnknownState(pub String);

impl FromStr for RemediationState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        RemediationState::ALL
            .into_iter()
            .find(|k| k.as_str() == norm)
            .ok_or_else(|| UnknownState(s.chars().take(40).collect()))
    }
}

/// One org's status on one warning (kind `status`). Sealed TLP:AMBER+STRICT
/// to the directory's CSIRT alone: no municipality ever sees another's
/// exposure or patch state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    /// The advisory id (`KCSIRT-2026-0042`), or an alert's envelope id.
    #[schemars(length(max = 128))]
    pub about: String,
    pub state: RemediationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
    /// The person within the sender org who set it (a display name only:
    /// the org is the envelope's sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Person>,
}

/// What a campaign envelope says to its target org.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum CampaignAction {
    /// The CSIRT wants this org's status on the warning.
    Opened,
    /// No answer yet: the `n`th reminder.
    Reminder { n: u32 },
    /// The CSIRT no longer asks.
    Closed,
}

/// The CSIRT's campaign as one target org sees it (kind `campaign`): sealed
/// TLP:AMBER+STRICT to that org alone, so no org learns who else is asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Campaign {
    pub campaign: Uuid,
    /// The advisory id, or an alert's envelope id.
    #[schemars(length(max = 128))]
    pub about: String,
    #[schemars(length(max = 2000))]
    pub title: String,
    #[serde(flatten)]
    pub action: CampaignAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// This org's last status as the CSIRT has it (in reminders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub your_status: Option<RemediationState>,
}

impl Status {
    /// Bounds a reader checks after parsing (the schema says the same).
    pub fn within_limits(&self) -> bool {
        self.about.len() <= MAX_ABOUT
            && !self.about.is_empty()
            && self.note.as_ref().is_none_or(|n| n.len() <= MAX_NOTE)
    }
}

impl Campaign {
    pub fn within_limits(&self) -> bool {
        self.about.len() <= MAX_ABOUT && !self.about.is_empty() && self.title.len() <= MAX_NOTE
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn states_parse_loosely_and_print_as_csaf() {
        assert_eq!(
            "In-Progress".parse::<RemediationState>().unwrap(),
            RemediationState::InProgress
        );
        assert_eq!(RemediationState::NotAffected.to_string(), "not_affected");
        assert!("patched".parse::<RemediationState>().is_err());
        assert!(!RemediationState::Delivered.is_answer());
    }

    #[test]
    fn campaign_action_is_a_flat_tag() {
        let c = Campaign {
            campaign: Uuid::nil(),
            about: "KCSIRT-2026-0042".into(),
            title: "t".into(),
            action: CampaignAction::Reminder { n: 2 },
            deadline: None,
            your_status: None,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["action"], "reminder");
        assert_eq!(v["n"], 2);
        let back: Campaign = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
