//! The README's two commands share one build: `deploy/local/up.sh` builds
//! the binaries (`cargo build --workspace --bins`), `tests/run.sh` then
//! builds the tests too (`--tests`). Cargo turns on the features of a
//! dependency that the selected targets need, so a dev-dependency that
//! enables one more feature of a shared crate (serde_json's
//! `float_roundtrip` through jsonschema did) makes the test command
//! recompile that crate and everything above it, matrix-sdk included
//! (about 25 minutes on two cores). Dev-dependencies may add crates, never
//! features of crates the binaries already use.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

/// `name version` → features, as cargo resolves them for the workspace.
fn resolved(with_dev: bool) -> BTreeMap<String, String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(varde_tests::repo_root()).args([
        "tree",
        "--locked",
        "--offline",
        "--workspace",
        "--prefix",
        "none",
        "--format",
        "{p}|{f}",
    ]);
    if !with_dev {
        cmd.args(["--edges", "no-dev"]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (pkg, features) = l.split_once('|')?;
            // "name v1.2.3 (/path)" or "name v1.2.3 (proc-macro)": name and version.
            let pkg: Vec<&str> = pkg.split_whitespace().take(2).collect();
            let features = features.trim_end_matches(" (*)").trim();
            Some((pkg.join(" "), features.to_owned()))
        })
        .collect()
}

#[test]
fn dev_dependencies_add_no_features_to_the_binaries_dependencies() {
    let bins = resolved(false);
    let all = resolved(true);
    assert!(
        bins.len() > 300 && bins.contains_key("matrix-sdk v0.18.0"),
        "cargo tree gave {} packages; expected the whole workspace with matrix-sdk",
        bins.len()
    );
    let changed: Vec<String> = bins
        .iter()
        .filter_map(|(pkg, f)| {
            let g = all.get(pkg)?;
            (g != f).then(|| format!("{pkg}: binaries [{f}], tests [{g}]"))
        })
        .collect();
    assert!(
        changed.is_empty(),
        "dev-dependencies change features of crates the binaries use, so the \
         test command would rebuild them; make the dependency a normal one of \
         varde-tests, or enable the feature in the workspace:\n{}",
        changed.join("\n")
    );
    let added = all.len() - bins.len();
    println!(
        "{} packages in the binaries' build; the tests add {added}, change none",
        bins.len()
    );
}
