//! Varde's data: the TLP label, identifiers, the envelope header, every
//! payload kind and the member directory, with their JSON Schemas.
//!
//! Pure data and pure functions only (no I/O), so publishers, the hub, the
//! bridge and external tools can all depend on it cheaply.

pub mod catalog;
pub mod directory;
pub mod header;
pub mod ids;
pub mod payload;
pub mod tlp;

pub use directory::{Directory, Key, KeyRole, Org, OrgKind, SignedDirectory};
pub use header::{Audience, Header, Kind, Sender};
pub use ids::{GroupId, IdError, KeyId, OrgId};
pub use payload::{Payload, normalise};
pub use tlp::Tlp;
