//! The member registry: organisations, their keys, Matrix presence,
//! constituency and assets. Signed by the CSIRT root key(s); see
//! `varde_bus::directory` for verification.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, KeyId, OrgId};

/// The groups (sectors) the CSIRT serves. Directories may define more; these
/// are the ones `varde directory init` writes.
pub const STANDARD_GROUPS: &[(&str, &str)] = &[
    ("admin", "Administrative systems and networks"),
    ("health", "Health and welfare technology"),
    ("school", "Schools"),
    ("culture", "Culture"),
    ("sports", "Sports"),
    (
        "ot-water",
        "Technical control systems, water and wastewater",
    ),
    ("owned", "Owned companies (IKS, KF, AS)"),
    ("dental", "Dental health (county municipalities)"),
    (
        "upper-secondary",
        "Upper secondary schools (county municipalities)",
    ),
    ("transport", "Transport (county municipalities)"),
];

/// The registry document. `version` only ever grows; every process refuses a
/// lower version than one it has accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub version: u64,
    /// When this version was signed.
    pub issued: Timestamp,
    /// After this instant the directory is refused until a newer one arrives,
    /// so a stale copy cannot be replayed forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// The organisation that operates the CSIRT hub (receives sightings).
    pub csirt: OrgId,
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub orgs: Vec<Org>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OrgKind {
    Kommune,
    Fylkeskommune,
    Iks,
    Csirt,
    Partner,
}

impl OrgKind {
    /// Whether the org belongs to the TLP:GREEN community. Partners receive
    /// community traffic only when named.
    pub const fn in_community(self) -> bool {
        !matches!(self, OrgKind::Partner)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Key>,
    #[serde(default, skip_serializing_if = "Matrix::is_empty")]
    pub matrix: Matrix,
    #[serde(default, skip_serializing_if = "Constituency::is_empty")]
    pub constituency: Constituency,
    /// Vendor/product names the org runs, lower-case (`microsoft exchange`,
    /// `citrix netscaler`), matched against advisories' affected products.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRole {
    Org,
    Person,
    Device,
    Bridge,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// First 16 hex digits of SHA-256 over `age`.
    pub id: KeyId,
    pub role: KeyRole,
    /// Human name: a person's name, a host name, "bridge".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// age X25519 recipient (`age1…`) for encryption to this key.
    pub age: String,
    /// ed25519 verifying key, `ed25519:` followed by unpadded base64.
    pub ed25519: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Timestamp>,
    /// Set when the key was revoked; messages signed by it are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Timestamp>,
    /// For person keys: the person's Matrix user id, so a RED room's members
    /// can be checked against the named recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix_user: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Full Matrix user ids (`@kari:matrix.gjovik.kommune.no`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Homeserver names all of whose users belong to this org.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
}

impl Matrix {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.servers.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Constituency {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub cidrs: Vec<ipnet::IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asns: Vec<u32>,
    /// Domains the org owns; sub-domains match too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
}

impl Constituency {
    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty() && self.asns.is_empty() && self.domains.is_empty()
    }
}

/// A directory as distributed: the exact bytes of the `directory` JSON value
/// are what the root signs, so verification never re-serialises.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedDirectory {
    #[schemars(with = "Directory")]
    pub directory: Box<serde_json::value::RawValue>,
    pub signatures: Vec<RootSignature>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootSignature {
    /// The root verifying key, `ed25519:` + unpadded base64.
    pub key: String,
    /// ed25519 signature, unpadded base64.
    pub sig: String,
}
