//! Payload types, one module per message kind. A payload is the JSON inside
//! the (encrypted) body; its kind is in the header, never in the payload.

mod ack;
mod advisory;
mod alert;
mod campaign;
mod chat;
mod incident;
mod indicator;
// Canonical indicator values: part of what an indicator is, so it lives
// with the payload types (and is re-exported as `varde_schemas::normalise`).
pub mod normalise;
mod notification;
mod sighting;

pub use ack::Ack;
pub use advisory::{Advisory, Product, Severity};
pub use alert::Alert;
pub use campaign::{
    Campaign, CampaignAction, MAX_ABOUT, MAX_NOTE, RemediationState, Status, UnknownState,
};
pub use chat::{Attachment, Chat, ChatAction};
pub use incident::{Incident, IncidentAction};
pub use indicator::{Indicator, IndicatorBatch, IndicatorType};
pub use notification::{Match, MatchKind, Notification};
pub use sighting::{Sighting, SightingAggregate};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::header::Kind;
use crate::ids::OrgId;

/// Limit on indicators in one envelope (README "How a message is sealed").
pub const MAX_INDICATORS: usize = 5_000;

/// A person acting through a bridge or the CLI, for attribution.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Person {
    /// Matrix user id (`@kari:matrix.gjovik.kommune.no`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The directory org the person belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgId>,
}

/// Any payload, tagged by the header's kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    Indicator(IndicatorBatch),
    Advisory(Advisory),
    Alert(Alert),
    Sighting(Sighting),
    Ack(Ack),
    Chat(Chat),
    Incident(Incident),
    Notification(Notification),
    Status(Status),
    Campaign(Campaign),
}

/// A payload that does not parse as its header's kind.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("{kind} payload is not valid JSON for its kind: {source}")]
    Json {
        kind: Kind,
        #[source]
        source: serde_json::Error,
    },
    #[error("indicator batch holds {count} indicators; the limit is {MAX_INDICATORS}")]
    TooManyIndicators { count: usize },
    #[error(
        "{kind} payload is over its bounds (`about` 1..={MAX_ABOUT} bytes, note or title ≤ {MAX_NOTE})"
    )]
    Bounds { kind: Kind },
}

impl Payload {
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Indicator(_) => Kind::Indicator,
            Payload::Advisory(_) => Kind::Advisory,
            Payload::Alert(_) => Kind::Alert,
            Payload::Sighting(_) => Kind::Sighting,
            Payload::Ack(_) => Kind::Ack,
            Payload::Chat(_) => Kind::Chat,
            Payload::Incident(_) => Kind::Incident,
            Payload::Notification(_) => Kind::Notification,
            Payload::Status(_) => Kind::Status,
            Payload::Campaign(_) => Kind::Campaign,
        }
    }

    /// Parses a payload as `kind`. serde_json refuses invalid UTF-8 and
    /// nesting deeper than 128 levels, so hostile bodies end here as errors.
    pub fn from_json(kind: Kind, bytes: &[u8]) -> Result<Self, PayloadError> {
        fn parse<'a, T: Deserialize<'a>>(kind: Kind, b: &'a [u8]) -> Result<T, PayloadError> {
            serde_json::from_slice(b).map_err(|source| PayloadError::Json { kind, source })
        }
        let p = match kind {
            Kind::Indicator => {
                let batch: IndicatorBatch = parse(kind, bytes)?;
                if batch.indicators.len() > MAX_INDICATORS {
                    return Err(PayloadError::TooManyIndicators {
                        count: batch.indicators.len(),
                    });
                }
                Payload::Indicator(batch)
            }
            Kind::Advisory => Payload::Advisory(parse(kind, bytes)?),
            Kind::Alert => Payload::Alert(parse(kind, bytes)?),
            Kind::Sighting => Payload::Sighting(parse(kind, bytes)?),
            Kind::Ack => Payload::Ack(parse(kind, bytes)?),
            Kind::Chat => Payload::Chat(parse(kind, bytes)?),
            Kind::Incident => Payload::Incident(parse(kind, bytes)?),
            Kind::Notification => Payload::Notification(parse(kind, bytes)?),
            Kind::Status => {
                let s: Status = parse(kind, bytes)?;
                if !s.within_limits() {
                    return Err(PayloadError::Bounds { kind });
                }
                Payload::Status(s)
            }
            Kind::Campaign => {
                let c: Campaign = parse(kind, bytes)?;
                if !c.within_limits() {
                    return Err(PayloadError::Bounds { kind });
                }
                Payload::Campaign(c)
            }
        };
        Ok(p)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising these plain data types cannot fail (no maps with
        // non-string keys, no foreign Serialize impls that error).
        let r = match self {
            Payload::Indicator(p) => serde_json::to_vec(p),
            Payload::Advisory(p) => serde_json::to_vec(p),
            Payload::Alert(p) => serde_json::to_vec(p),
            Payload::Sighting(p) => serde_json::to_vec(p),
            Payload::Ack(p) => serde_json::to_vec(p),
            Payload::Chat(p) => serde_json::to_vec(p),
            Payload::Incident(p) => serde_json::to_vec(p),
            Payload::Notification(p) => serde_json::to_vec(p),
            Payload::Status(p) => serde_json::to_vec(p),
            Payload::Campaign(p) => serde_json::to_vec(p),
        };
        r.unwrap_or_default()
    }

    /// Number of indicators carried (for throughput accounting).
    pub fn indicator_count(&self) -> usize {
        match self {
            Payload::Indicator(b) => b.indicators.len(),
            Payload::Notification(_) => 1,
            _ => 0,
        }
    }
}
