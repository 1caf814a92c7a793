//! Interoperability with the reference `age` tools (Debian package `age`):
//! a wrap taken out of an envelope opens with `age -d`, and an identity made
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

#[test]
fn a_wrap_from_an_envelope_opens_with_the_age_cli() {
    let age = tool("age");
    let dir = tempfile::tempdir().unwrap();
    let s = Synthetic::demo();
    let d = s.handle().unwrap().current();
    let gjovik = s.identity("gjovik");
    let sealed = seal::seal(
        &s.identity("kcsirt"),
        &d,
        Draft::raw(
            Kind::Chat,
            Tlp::Amber,
            Audience::orgs([OrgId::new("gjovik").unwrap()]),
            b"{}".to_vec(),
        ),
    )
    .unwrap();
    let f = varde_bus::envelope::parse(&sealed.copies[0].bytes).unwrap();
    let (_, wrap) = f.wraps.iter().find(|(k, _)| *k == gjovik.key_id).unwrap();
    std::fs::write(dir.path().join("wrap.age"), wrap).unwrap();
    varde_bus::keys::write_private(
        &dir.path().join("gjovik.age"),
        varde_bus::keys::age_identity_file(&gjovik.age).as_bytes(),
    )
    .unwrap();

    let out = Command::new(&age)
        .arg("-d")
        .arg("-i")
        .arg(dir.path().join("gjovik.age"))
        .arg(dir.path().join("wrap.age"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout.len(),
        32,
        "the wrap holds the 32-byte content key"
    );

    // The key decrypts the body: XChaCha20-Poly1305 with the header as AD.
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let aead = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&out.stdout).unwrap();
    let (nonce, ct) = f.body.split_at(24);
    let pt = aead
        .decrypt(
            chacha20poly1305::XNonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: f.header,
            },
        )
        .unwrap();
    assert_eq!(pt, b"{}");
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
