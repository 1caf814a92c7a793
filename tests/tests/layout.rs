//! The crate graph is the architecture (docs/ARCHITECTURE.md): the trusted
//! core stays small and free of Matrix, the hub and the CLI; the bridge
//! links the core, never the hub or its feed machinery. These read the
//! graph cargo resolves, so a new dependency that breaks a seam fails here.
//! `one_build` (a module, so that this stays one test binary to link)
//! checks that the README's two commands share one build.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

#[path = "layout/one_build.rs"]
mod one_build;

/// Names of every crate `package` links (normal dependencies, any depth).
fn linked(package: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(varde_tests::repo_root())
        .args([
            "tree",
            "--locked",
            "--offline",
            "--package",
            package,
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn assert_absent(package: &str, forbidden: &[&str]) {
    let deps = linked(package);
    assert!(deps.len() > 20, "{package}: only {} crates?", deps.len());
    let found: Vec<&&str> = forbidden.iter().filter(|f| deps.contains(**f)).collect();
    assert!(
        found.is_empty(),
        "{package} links {found:?}, which belong to another concern"
    );
    println!("{package}: {} crates, none of {forbidden:?}", deps.len());
}

#[test]
fn the_core_links_no_matrix_hub_cli_or_feed_crates() {
    assert_absent(
        "varde-bus",
        &[
            "matrix-sdk",
            "varde-hub",
            "varde-cli",
            "varde-bridge",
            "varde-testkit",
            "clap",
            "csv",
            "ureq",
            "indicatif",
            "rcgen",
            "prefix-trie",
            "reqwest",
        ],
    );
}

#[test]
fn the_bridge_decisions_link_no_matrix_sdk_store_or_http() {
    assert!(linked("varde-bridge-core").contains("varde-bus"));
    assert_absent(
        "varde-bridge-core",
        &[
            "matrix-sdk",
            "matrix-sdk-crypto",
            "rusqlite",
            "reqwest",
            "axum",
            "clap",
            "varde-bridge",
            "varde-hub",
            "varde-cli",
            "varde-testkit",
        ],
    );
}

#[test]
fn the_bridge_links_the_core_but_not_the_hub_or_the_cli() {
    let deps = linked("varde-bridge");
    assert!(deps.contains("varde-bus") && deps.contains("varde-bridge-core"));
    assert_absent(
        "varde-bridge",
        &[
            "varde-hub",
            "varde-cli",
            "ureq",
            "indicatif",
            "rcgen",
            "prefix-trie",
        ],
    );
}

#[test]
fn the_hub_links_no_matrix_and_no_cli() {
    assert_absent(
        "varde-hub",
        &[
            "matrix-sdk",
            "varde-bridge",
            "varde-cli",
            "varde-testkit",
            "rcgen",
        ],
    );
}
