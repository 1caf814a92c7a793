//! The list of checked-in JSON Schemas and examples: one per payload kind,
//! plus the header and the directory. `schemas/json/<name>.schema.json` and
//! `schemas/examples/<name>.json` are generated/validated from here.

use schemars::{JsonSchema, Schema, generate::SchemaSettings};

use crate::{directory, header, payload};

/// Every schema as `(name, schema)`, in a stable order.
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("indicator", schema_of::<payload::IndicatorBatch>()),
        ("advisory", schema_of::<payload::Advisory>()),
        ("alert", schema_of::<payload::Alert>()),
        ("sighting", schema_of::<payload::Sighting>()),
        ("ack", schema_of::<payload::Ack>()),
        ("chat", schema_of::<payload::Chat>()),
        ("incident", schema_of::<payload::Incident>()),
        ("notification", schema_of::<payload::Notification>()),
        ("status", schema_of::<payload::Status>()),
        ("campaign", schema_of::<payload::Campaign>()),
        ("header", schema_of::<header::Header>()),
        ("directory", schema_of::<directory::Directory>()),
        (
            "signed-directory",
            schema_of::<directory::SignedDirectory>(),
        ),
    ]
}

fn schema_of<T: JsonSchema>() -> Schema {
    // Draft 2020-12 is schemars' default; spelled out so an upgrade that
    // changes the default shows up as schema drift, not silently.
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// The schema serialised as checked in (pretty JSON, trailing newline).
pub fn render(schema: &Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}
