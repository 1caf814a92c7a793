//! Fuzz targets for every parser of input from outside the process: what
//! arrives on the bus (envelopes, subjects, the signed directory), what the
//! hub reads from feeds (MISP, STIX, CSV, plain lists), what members type
//! into Matrix (commands, timeline events) and the configuration files.
//!
//! Each target is a plain `fn(&[u8])`: it must never panic, hang or
//! allocate without bound, whatever the bytes. The libFuzzer binary
//! (`src/main.rs`, built instrumented by `tests/fuzz.sh`) runs one of them,
//! chosen by `VARDE_FUZZ_TARGET`; `tests/corpus.rs` replays the committed
//! corpus through the same functions in the ordinary test build.

use std::sync::{Arc, LazyLock};

use jiff::Timestamp;
use varde_bus::directory::{self, VerifiedDirectory};
use varde_bus::envelope;
use varde_bus::seal;
use varde_bus::settings::Loaded;
use varde_bus::subject;
use varde_hub::record::{Candidate, LocFn, Location, Sink};
use varde_hub::source::{SourceOptions, csv, misp, stix};
use varde_schemas::Tlp;
use varde_schemas::payload::{Advisory, Indicator};

pub mod keys;

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target, by the name `VARDE_FUZZ_TARGET` and the corpus folder use.
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", envelope_frame),
    ("verify", verify),
    ("open", open),
    ("directory", directory),
    ("subject", subject),
    ("misp", misp_event),
    ("stix", stix_bundle),
    ("stix_pattern", stix_pattern),
    ("csv", csv_rows),
    ("list", list_lines),
    ("config", config),
    ("command", bridge::command),
    ("timeline", bridge::timeline),
    ("bridge_config", bridge::config),
];

pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The envelope framing, and each `VRD1` wrap's stanza check (both run
/// before any signature or X25519 work; a `VRD2` wrap is only a length).
fn envelope_frame(data: &[u8]) {
    if let Ok(framed) = envelope::parse(data)
        && framed.format == envelope::WrapFormat::AgeFile
    {
        for (_, wrap) in &framed.wraps {
            let _ = envelope::check_wrap(wrap);
        }
    }
}

/// Raw bytes as they arrive: framing, signer lookup, signature. Random
/// bytes stop at the signature; see `open` for what lies behind it.
fn verify(data: &[u8]) {
    let _ = seal::verify(&keys::FIXED.dir, None, data, Timestamp::now());
}

/// What a member holding its own keys could send: the input is the signed
/// part of an envelope (framing, header, wraps, body), re-signed here with
/// one of the fixed members' keys (the first byte picks which; the signer
/// field is overwritten to match), so the fuzzer reaches the header checks,
/// the wrap check, age and the payload parser behind a valid signature.
fn open(data: &[u8]) {
    let Some((&pick, signed)) = data.split_first() else {
        return;
    };
    let fixed = &*keys::FIXED;
    let sender = &fixed.identities[usize::from(pick) % fixed.identities.len()];
    let mut signed = signed.to_vec();
    if let Some(field) = signed.get_mut(envelope::SIGNER_AT..envelope::SIGNER_AT + 8) {
        field.copy_from_slice(&sender.key_id.0);
    }
    let bytes = seal::sign_unchecked(sender, &signed);
    for me in &fixed.identities {
        let Ok(v) = seal::verify(&fixed.dir, None, &bytes, Timestamp::now()) else {
            return;
        };
        let _ = seal::decrypt(me, v, bytes.len());
    }
}

/// A signed directory as read from the KV bucket or a state file.
fn directory(data: &[u8]) {
    let _ = directory::peek_version(data);
    let _ = directory::verify(data, &keys::FIXED.roots);
}

fn subject(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = subject::parse(s);
    }
}

/// Everything a feed source emits goes through the schema's normaliser,
/// as the hub's pipeline does next.
#[derive(Default)]
struct Normalise;

impl Sink for Normalise {
    fn indicator(&mut self, c: Candidate<'_>) {
        let _ = Indicator::new(c.kind, c.value);
    }
    fn advisory(&mut self, a: Advisory, _: Tlp, _: LocFn<'_>) {
        let _ = serde_json::to_vec(&a);
    }
    fn invalid(&mut self, _: Location, _: String) {}
    fn skipped(&mut self, _: LocFn<'_>, _: &'static str) {}
}

static FILE: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("fuzz"));
static OPTS: LazyLock<SourceOptions> = LazyLock::new(|| SourceOptions::new("fuzz"));

fn misp_event(data: &[u8]) {
    misp::read_event(data, &FILE, &OPTS, &mut Normalise);
}

fn stix_bundle(data: &[u8]) {
    stix::read_bytes(data, &FILE, &OPTS, &mut Normalise);
}

fn stix_pattern(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = stix::parse_pattern(s);
    }
}

fn csv_rows(data: &[u8]) {
    csv::read_csv(data, &FILE, &OPTS, &mut Normalise);
}

fn list_lines(data: &[u8]) {
    csv::read_list(data, &FILE, &OPTS, &mut Normalise);
}

/// Writes `data` to a temporary `name` and hands its path to `load`: the
/// configuration loaders read files (and name them in their errors).
pub fn with_file(name: &str, data: &[u8], load: impl FnOnce(&std::path::Path)) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join(name);
    if std::fs::write(&path, data).is_ok() {
        load(&path);
    }
}

/// `varde.toml` exactly as `varde` reads it.
use varde_hub::settings::VardeToml as Settings;

/// `varde.toml`: the core settings with the hub's section.
fn config(data: &[u8]) {
    with_file("varde.toml", data, |p| {
        if let Ok(s) = Loaded::<Settings>::read(p) {
            let _ = s.org();
            let _ = s.roots();
            let _ = s.value.hub.sources.len();
            let _ = (&s.value.stream, &s.value.consumer);
        }
    });
}

mod bridge {
    /// A message body in a room the bridge serves.
    pub fn command(data: &[u8]) {
        if let Ok(s) = std::str::from_utf8(data) {
            let _ = varde_bridge_core::command::parse("!varde", s);
        }
    }

    /// A timeline event as the homeserver sends it (JSON the member shaped).
    pub fn timeline(data: &[u8]) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            let _ = varde_bridge_core::timeline::parse("!room:fuzz.example", &v);
        }
    }

    /// `bridge.toml`.
    pub fn config(data: &[u8]) {
        super::with_file("bridge.toml", data, |p| {
            let _ = varde_bridge_core::config::load(p);
        });
    }
}

/// The fixed directory's verified form, for targets that need one.
pub fn fixed_directory() -> &'static VerifiedDirectory {
    &keys::FIXED.dir
}
