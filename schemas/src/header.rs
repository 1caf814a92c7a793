//! The plaintext envelope header: what the broker, every consumer and the
//! signature see. It is bound to the ciphertext as AEAD associated data.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{GroupId, KeyId, OrgId};
use crate::tlp::Tlp;

/// Message kinds; the last token of every subject.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Indicator,
    Advisory,
    Alert,
    Sighting,
    Ack,
    Chat,
    Incident,
    Notification,
    /// An org's remediation status, to the CSIRT alone.
    Status,
    /// The CSIRT's campaign (opened, reminder, closed), to one org alone.
    Campaign,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Indicator,
        Kind::Advisory,
        Kind::Alert,
        Kind::Sighting,
        Kind::Ack,
        Kind::Chat,
        Kind::Incident,
        Kind::Notification,
        Kind::Status,
        Kind::Campaign,
    ];

    /// Kinds whose label and audience follow from the kind (the bus's
    /// `kind_rules`): a status to the CSIRT alone, a campaign message from
    /// it to one org alone. The sender picks them for every other kind.
    pub const fn has_fixed_audience(self) -> bool {
        matches!(self, Kind::Status | Kind::Campaign)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Indicator => "indicator",
            Kind::Advisory => "advisory",
            Kind::Alert => "alert",
            Kind::Sighting => "sighting",
            Kind::Ack => "ack",
            Kind::Chat => "chat",
            Kind::Incident => "incident",
            Kind::Notification => "notification",
            Kind::Status => "status",
            Kind::Campaign => "campaign",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a message kind (indicator, advisory, alert, sighting, ack, chat, incident, notification, status, campaign)"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// Who a message is addressed to. The label decides which combinations are
/// allowed (see `varde_bus::audience`); for CLEAR the audience only routes,
/// for every other label it decides who receives a key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Every member organisation (the TLP:GREEN community).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub community: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orgs: Vec<OrgId>,
    /// Named keys (person keys, and for RED the bridge keys allowed to carry
    /// the message into a RED room).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<KeyId>,
}

impl Audience {
    pub fn community() -> Self {
        Audience {
            community: true,
            ..Default::default()
        }
    }
    pub fn orgs(orgs: impl IntoIterator<Item = OrgId>) -> Self {
        Audience {
            orgs: orgs.into_iter().collect(),
            ..Default::default()
        }
    }
    pub fn groups(groups: impl IntoIterator<Item = GroupId>) -> Self {
        Audience {
            groups: groups.into_iter().collect(),
            ..Default::default()
        }
    }
    pub fn people(keys: impl IntoIterator<Item = KeyId>) -> Self {
        Audience {
            people: keys.into_iter().collect(),
            ..Default::default()
        }
    }
    pub fn is_empty(&self) -> bool {
        !self.community && self.groups.is_empty() && self.orgs.is_empty() && self.people.is_empty()
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.community {
            parts.push("community".to_string());
        }
        parts.extend(self.groups.iter().map(|g| format!("group:{g}")));
        parts.extend(self.orgs.iter().map(|o| format!("org:{o}")));
        parts.extend(self.people.iter().map(|k| format!("key:{k}")));
        if parts.is_empty() {
            f.write_str("public")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    pub org: OrgId,
    pub key: KeyId,
}

/// Envelope header, version 1. The subject a copy travels on is not listed:
/// it must be one of the routes the audience implies (community, one of
/// its groups, or the org of a named org or person), which binds the
/// subject without making the header grow with the audience.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version, always 1.
    pub v: u8,
    /// Envelope id (UUIDv7): the JetStream `Nats-Msg-Id` and dedup key.
    pub id: Uuid,
    pub kind: Kind,
    pub label: Tlp,
    pub sender: Sender,
    pub audience: Audience,
    pub created: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
}
