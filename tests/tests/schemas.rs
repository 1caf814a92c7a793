//! The checked-in JSON Schemas must match the Rust types, and every example
//! must validate against its schema and parse as its type.
//!
//! Regenerate after changing a type:
//! `VARDE_BLESS=1 cargo nextest run --workspace -E 'binary(schemas)'`.
//!
//! It lives here rather than in `schemas/tests` so that its validator
//! (jsonschema) is a normal dependency of the test crate: as a
//! dev-dependency it turned on features of shared crates (serde_json's
//! `float_roundtrip`, …) that the binaries' build did not have, and the
//! test command rebuilt matrix-sdk after `deploy/local/up.sh` had built it.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use varde_schemas::{Header, Kind, Payload, catalog, directory::Directory};

fn root() -> PathBuf {
    varde_tests::repo_root().join("schemas")
}

#[test]
fn checked_in_schemas_match_the_types() {
    let bless = std::env::var_os("VARDE_BLESS").is_some();
    let mut drift = Vec::new();
    for (name, schema) in catalog::all() {
        let path = root().join("json").join(format!("{name}.schema.json"));
        let want = catalog::render(&schema);
        if bless {
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(have) if have == want => {}
            _ => drift.push(path.display().to_string()),
        }
    }
    assert!(
        drift.is_empty(),
        "schemas drifted from the types: {drift:?}\nrun `VARDE_BLESS=1 cargo test -p varde-schemas` and commit the result"
    );
}

#[test]
fn every_example_validates_and_parses() {
    let mut checked = 0;
    for (name, schema) in catalog::all() {
        let path = root().join("examples").join(format!("{name}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            // signed-directory has no hand-written example: it needs real signatures
            assert_eq!(
                name,
                "signed-directory",
                "missing example {}",
                path.display()
            );
            continue;
        };
        let instance: serde_json::Value = serde_json::from_str(&text).unwrap();
        let schema_json = serde_json::to_value(&schema).unwrap();
        let validator = jsonschema::draft202012::new(&schema_json).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");

        match name {
            "header" => {
                serde_json::from_str::<Header>(&text).unwrap();
            }
            "directory" => {
                serde_json::from_str::<Directory>(&text).unwrap();
            }
            kind => {
                let kind: Kind = kind.parse().unwrap();
                let p = Payload::from_json(kind, text.as_bytes()).unwrap();
                assert_eq!(p.kind(), kind);
                // and back: what we emit parses to the same value
                let again = Payload::from_json(kind, &p.to_json()).unwrap();
                assert_eq!(p, again);
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 12);
}

#[test]
fn a_wrong_example_is_caught_by_the_validator() {
    // Guards against a validator that accepts everything.
    let schema = catalog::all()
        .into_iter()
        .find(|(n, _)| *n == "advisory")
        .unwrap()
        .1;
    let v = jsonschema::draft202012::new(&serde_json::to_value(&schema).unwrap()).unwrap();
    let bad = serde_json::json!({"advisory_id": "X", "revision": 0, "title": 3});
    assert!(!v.is_valid(&bad));
}

#[test]
fn hostile_payloads_are_errors() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(Payload::from_json(Kind::Chat, deep.as_bytes()).is_err());
    assert!(Payload::from_json(Kind::Chat, b"{\"text\": \"\xff\xfe\"}").is_err());
    let many = serde_json::json!({
        "indicators": (0..5001).map(|i| serde_json::json!({"type":"asn","value":format!("AS{i}")})).collect::<Vec<_>>()
    });
    assert!(matches!(
        Payload::from_json(Kind::Indicator, many.to_string().as_bytes()),
        Err(varde_schemas::payload::PayloadError::TooManyIndicators { count: 5001 })
    ));
}
