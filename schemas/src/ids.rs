//! Validated identifiers: organisation and group slugs, key ids.
//!
//! Slugs become NATS subject tokens and file names, so they are restricted
//! to lower-case ASCII letters, digits and inner hyphens: no `.`, `*`, `>`,
//! whitespace or path separators can ever reach a subject or a path.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// An identifier that is not valid, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "`{0}` is not a valid slug: use 1-63 lower-case letters a-z, digits and inner hyphens (e.g. `innlandet-fk`)"
    )]
    Slug(String),
    #[error("`{0}` is not a key id: expected 16 lower-case hex digits")]
    KeyId(String),
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

macro_rules! slug_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
        #[serde(transparent)]
        #[schemars(transparent)]
        pub struct $name(
            #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))] String,
        );

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                if is_slug(&s) { Ok(Self(s)) } else { Err(IdError::Slug(s)) }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

slug_type!(
    /// An organisation id, e.g. `gjovik`, `innlandet-fk`, `kcsirt`.
    OrgId
);
slug_type!(
    /// A group (sector) id, e.g. `health`, `ot-water`, `upper-secondary`.
    GroupId
);

/// A key id: the first 16 hex digits of SHA-256 over the key's `age1…`
/// recipient string. Stored as 8 raw bytes so it is `Copy` and cheap to
/// compare in the envelope's key list.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    pub fn from_hex(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::KeyId(s.to_string());
        if s.len() != 16 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut out = [0u8; 8];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = (chunk[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (chunk[1] as char).to_digit(16).ok_or_else(bad)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(KeyId(out))
    }

    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(16);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl FromStr for KeyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyId::from_hex(s)
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        KeyId::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for KeyId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "KeyId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "first 16 hex digits of SHA-256 over the key's age1… recipient",
            "type": "string",
            "pattern": "^[0-9a-f]{16}$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(OrgId::new("gjovik").is_ok());
        assert!(OrgId::new("innlandet-fk").is_ok());
        assert!(OrgId::new("k1").is_ok());
        for bad in [
            "", "Gjovik", "gjøvik", "a.b", "a*", ">", "-a", "a-", "a b", "../x",
        ] {
            assert!(OrgId::new(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<OrgId>("\"a.b\"").is_err());
    }

    #[test]
    fn key_ids() {
        let k = KeyId::from_hex("0123456789abcdef").unwrap();
        assert_eq!(k.to_hex(), "0123456789abcdef");
        assert!(KeyId::from_hex("0123456789ABCDEF").is_err());
        assert!(KeyId::from_hex("0123").is_err());
        assert!(KeyId::from_hex("0123456789abcdeg").is_err());
        assert!(KeyId::from_hex("ééééééééé").is_err());
    }
}
