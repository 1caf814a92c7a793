//! Traffic Light Protocol 2.0 labels (FIRST), as carried on every message.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A TLP 2.0 label. The derived order is the order of restriction:
/// `Clear < Green < Amber < AmberStrict < Red`, so "at most AMBER" is `<=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

/// A string that is not a TLP label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a TLP 2.0 label; use one of TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED"
)]
pub struct UnknownTlp(pub String);

impl Tlp {
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The label as FIRST writes it: capitals, never translated.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// FIRST display colour (to be shown on a black background).
    pub const fn colour_hex(self) -> &'static str {
        match self {
            Tlp::Clear => "#FFFFFF",
            Tlp::Green => "#33FF00",
            Tlp::Amber | Tlp::AmberStrict => "#FFC000",
            Tlp::Red => "#FF2B2B",
        }
    }

    /// The colour as an RGB triple, for terminals with true colour.
    pub const fn colour_rgb(self) -> (u8, u8, u8) {
        match self {
            Tlp::Clear => (0xFF, 0xFF, 0xFF),
            Tlp::Green => (0x33, 0xFF, 0x00),
            Tlp::Amber | Tlp::AmberStrict => (0xFF, 0xC0, 0x00),
            Tlp::Red => (0xFF, 0x2B, 0x2B),
        }
    }

    /// The OASIS TLP 2.0 STIX marking-definition id.
    pub const fn stix_marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// Maps a STIX marking-definition id to a label, accepting the TLP 2.0
    /// ids, the TLP 1.0 ids (WHITE → CLEAR) and OpenCTI's AMBER+STRICT id.
    pub fn from_stix_marking_id(id: &str) -> Option<Tlp> {
        let id = id.trim().to_ascii_lowercase();
        let uuid = id.strip_prefix("marking-definition--").unwrap_or(&id);
        Some(match uuid {
            // TLP 2.0 (OASIS extension)
            "94868c89-83c2-464b-929b-a1a8aa3c8487" => Tlp::Clear,
            "bab4a63c-aed9-4cf5-a766-dfca5abac2bb" => Tlp::Green,
            "55d920b0-5e8b-4f79-9ee9-91f868d9b421" => Tlp::Amber,
            "939a9414-2ddd-4d32-a0cd-375ea402b003" => Tlp::AmberStrict,
            "e828b379-4e03-4974-9ac4-e53a884c97c1" => Tlp::Red,
            // TLP 1.0 (STIX 2.1 spec section 7.2.1.4)
            "613f2e26-407d-48c7-9eca-b8e91df99dc9" => Tlp::Clear,
            "34098fce-860f-48ae-8e50-ebd3cc5e41da" => Tlp::Green,
            "f88d31f6-486f-44da-b317-01333bde0b82" => Tlp::Amber,
            "5e57c739-391a-4eb3-b6be-7d15ca92d5ed" => Tlp::Red,
            // OpenCTI's own AMBER+STRICT definition
            "826578e1-40ad-459f-bc73-ede076f81f37" => Tlp::AmberStrict,
            _ => return None,
        })
    }

    /// Whether messages with this label are encrypted on the bus.
    pub const fn is_encrypted(self) -> bool {
        !matches!(self, Tlp::Clear)
    }

    /// The label in the short form used in subjects, MISP tags and commands
    /// (`clear`, `green`, `amber`, `amber+strict`, `red`).
    pub const fn short(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }
}

impl FromStr for Tlp {
    type Err = UnknownTlp;

    /// Accepts `TLP:AMBER+STRICT`, `tlp:amber+strict`, `amber+strict`, and
    /// `TLP:WHITE` (TLP 1.0) as CLEAR. Surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_uppercase();
        let bare = t.strip_prefix("TLP:").unwrap_or(&t).trim();
        Ok(match bare {
            "CLEAR" | "WHITE" => Tlp::Clear,
            "GREEN" => Tlp::Green,
            "AMBER" => Tlp::Amber,
            "AMBER+STRICT" => Tlp::AmberStrict,
            "RED" => Tlp::Red,
            _ => return Err(UnknownTlp(s.to_string())),
        })
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for Tlp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Tlp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Tlp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Tlp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Emitted labels only; WHITE is accepted on input but never written.
        schemars::json_schema!({
            "description": "TLP 2.0 label (FIRST), in capitals",
            "type": "string",
            "enum": ["TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!("TLP:AMBER+STRICT".parse(), Ok(Tlp::AmberStrict));
        assert_eq!("tlp:amber+strict".parse(), Ok(Tlp::AmberStrict));
        assert_eq!(" Amber ".parse(), Ok(Tlp::Amber));
        assert_eq!("TLP:WHITE".parse(), Ok(Tlp::Clear));
        assert_eq!("tlp:clear".parse(), Ok(Tlp::Clear));
        assert_eq!("TLP:RED".parse(), Ok(Tlp::Red));
        assert!("TLP:PURPLE".parse::<Tlp>().is_err());
        assert!("".parse::<Tlp>().is_err());
        assert!("TLP:AMBER STRICT".parse::<Tlp>().is_err());
    }

    #[test]
    fn never_emits_white() {
        let t: Tlp = serde_json::from_str("\"TLP:WHITE\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"TLP:CLEAR\"");
        for t in Tlp::ALL {
            assert_eq!(t.to_string().parse::<Tlp>(), Ok(t));
            assert!(!t.to_string().contains("WHITE"));
        }
    }

    #[test]
    fn orders_by_restriction() {
        assert!(Tlp::Clear < Tlp::Green);
        assert!(Tlp::Green < Tlp::Amber);
        assert!(Tlp::Amber < Tlp::AmberStrict);
        assert!(Tlp::AmberStrict < Tlp::Red);
    }

    #[test]
    fn colours_follow_first() {
        assert_eq!(Tlp::Red.colour_hex(), "#FF2B2B");
        assert_eq!(Tlp::Amber.colour_hex(), "#FFC000");
        assert_eq!(Tlp::AmberStrict.colour_hex(), "#FFC000");
        assert_eq!(Tlp::Green.colour_hex(), "#33FF00");
        assert_eq!(Tlp::Clear.colour_hex(), "#FFFFFF");
    }

    #[test]
    fn stix_ids_round_trip_and_accept_legacy() {
        for t in Tlp::ALL {
            assert_eq!(Tlp::from_stix_marking_id(t.stix_marking_id()), Some(t));
        }
        assert_eq!(
            Tlp::from_stix_marking_id("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"),
            Some(Tlp::Clear)
        );
        assert_eq!(
            Tlp::from_stix_marking_id("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"),
            Some(Tlp::Red)
        );
        assert_eq!(
            Tlp::from_stix_marking_id("marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"),
            Some(Tlp::AmberStrict)
        );
        assert_eq!(Tlp::from_stix_marking_id("marking-definition--0000"), None);
    }
}
