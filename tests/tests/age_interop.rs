//! Interoperability with the reference `age` tools (Debian package `age`):
//! the X25519 stanza `age -e` writes opens as a wrap, and an identity made
//! by `age-keygen` works as an org identity through `varde keygen
//! --age-identity`.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use varde_bus::seal::{self, Draft, Opener};
use varde_schemas::directory::KeyRole;
use varde_schemas::{Audience, Kind, OrgId, Tlp};
use varde_testkit::synthetic::Synthetic;

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` not found: install Debian's `age` package (apt-get install age); .ci/run does"
    );
    name.to_string()
}

/// A wrap is age's X25519 recipient stanza, share and body in binary: the
/// stanza the reference `age` CLI writes for a recipient opens through the
/// same code as a wrap in an envelope, and gives the file key that opens
/// the CLI's file (checked by the stanza's Poly1305 tag inside age).
#[test]
fn a_stanza_from_the_age_cli_opens_as_a_wrap() {
    use base64::Engine;
    let age = tool("age");
    let dir = tempfile::tempdir().unwrap();
    let s = Synthetic::demo();
    let gjovik = s.identity("gjovik");
    let out = Command::new(&age)
        .arg("-e")
        .arg("-r")
        .arg(gjovik.recipient.as_str())
        .arg("-o")
        .arg(dir.path().join("file.age"))
        .arg("/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -e failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::read(dir.path().join("file.age")).unwrap();
    let text = String::from_utf8_lossy(&file);
    let mut lines = text.lines().skip_while(|l| !l.starts_with("-> X25519 "));
    let share = lines
        .next()
        .unwrap()
        .trim_start_matches("-> X25519 ")
        .to_string();
    let body = lines.next().unwrap().to_string();
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut wrap = b64.decode(share).unwrap();
    wrap.extend(b64.decode(body).unwrap());
    assert_eq!(wrap.len(), varde_bus::wrap::LEN);
    varde_bus::wrap::open(&gjovik.age, &wrap).unwrap();
    // and not for another org's identity
    assert!(varde_bus::wrap::open(&s.identity("lillehammer").age, &wrap).is_err());
}

#[test]
fn an_age_keygen_identity_works_as_an_org_identity() {
    let keygen = tool("age-keygen");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("from-age-keygen.txt");
    let out = Command::new(&keygen)
        .arg("-o")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // age-keygen writes 0600; load it the way `varde keygen --age-identity` does
    let age_id = varde_bus::keys::load_age_identity(&key_file).unwrap();
    let mut s = Synthetic::demo();
    let imported = std::sync::Arc::new(varde_bus::keys::Identity::from_parts(
        OrgId::new("gjovik").unwrap(),
        age_id,
        varde_bus::keys::generate_signing_key(),
    ));
    s.org_mut("gjovik").unwrap().keys = vec![imported.public_key(KeyRole::Org, None)];
    let d = s.handle().unwrap().current();
    let sealed = seal::seal(
        &s.identity("kcsirt"),
        &d,
        Draft::raw(
            Kind::Chat,
            Tlp::AmberStrict,
            Audience::orgs([OrgId::new("gjovik").unwrap()]),
            b"{\"conversation\":\"c\",\"author\":{},\"text\":\"hei\"}".to_vec(),
        ),
    )
    .unwrap();
    Opener::new(imported.clone())
        .open(&d, &sealed.copies[0].subject, &sealed.copies[0].bytes)
        .unwrap();
    // and it signs: a message from the imported identity opens for kcsirt
    let back = seal::seal(
        &imported,
        &d,
        Draft::raw(
            Kind::Chat,
            Tlp::Amber,
            Audience::orgs([OrgId::new("kcsirt").unwrap()]),
            b"{\"conversation\":\"c\",\"author\":{},\"text\":\"svar\"}".to_vec(),
        ),
    )
    .unwrap();
    Opener::new(s.identity("kcsirt"))
        .open(&d, &back.copies[0].subject, &back.copies[0].bytes)
        .unwrap();

    // The CLI path: `varde keygen --age-identity` imports it and writes a card.
    let varde = varde_tests::workspace_bin("varde").unwrap();
    let out = Command::new(varde)
        .args([
            "keygen",
            "--org",
            "gjovik",
            "--role",
            "org",
            "--age-identity",
        ])
        .arg(&key_file)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("gjovik-org.pub.json")).unwrap())
            .unwrap();
    assert_eq!(card["key"]["age"], imported.recipient.as_str());
}
