//! Varde advisories as JSON files (the `advisory` payload schema), so the
//! CSIRT's own advisories go through the same asset matching as a feed's.

// Feed input is attacker-controlled: no slice that can panic on a
// char boundary or an out-of-range index.
#![deny(clippy::string_slice, clippy::indexing_slicing)]

use std::sync::Arc;

use varde_schemas::Kind;
use varde_schemas::payload::Payload;

use super::SourceOptions;
use crate::record::{Location, Sink};

/// One advisory object, or an array of them.
pub fn read_bytes(bytes: &[u8], file: &Arc<str>, opts: &SourceOptions, sink: &mut dyn Sink) {
    let items: Vec<&serde_json::value::RawValue> = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => match serde_json::from_slice::<&serde_json::value::RawValue>(bytes) {
            Ok(one) => vec![one],
            Err(e) => {
                sink.invalid(Location::file(file), format!("not JSON: {e}"));
                return;
            }
        },
    };
    for (i, raw) in items.iter().enumerate() {
        match Payload::from_json(Kind::Advisory, raw.get().as_bytes()) {
            Ok(Payload::Advisory(a)) => {
                let loc = || Location::object(file, format!("{i}:{}", a.advisory_id));
                sink.advisory(a.clone(), opts.default_tlp, &loc);
            }
            Ok(_) => {}
            Err(e) => sink.invalid(Location::object(file, format!("[{i}]")), e.to_string()),
        }
    }
}
