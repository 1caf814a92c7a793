//! The `varde` binary against hostile input from a compromised member or a
//! feed author: terminal escapes and bidi overrides in a payload must not
//! reach the reader's terminal raw, and a MISP feed with multi-byte tags and
//! retracted (deleted) attributes is ingested without a panic.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use varde_bus::seal::Draft;
use varde_schemas::payload::{Chat, ChatAction, Person};
use varde_schemas::{Audience, OrgId, Payload, Tlp};
use varde_tests::BusFixture;

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

/// A config for `who` next to its key files, reading temporary consumers.
fn write_config(bus: &BusFixture, dir: &Path, who: &str) -> PathBuf {
    bus.write_config(dir, who).unwrap()
}

/// What a compromised lillehammer would send to make gjovik's terminal
/// show a forged CSIRT line: erase the line, return to column 0, write a
/// fake header, then a right-to-left override to reverse what follows.
const FORGED: &str = "hei\x1b[2K\rTLP:CLEAR kcsirt: fake\u{202E}moc.live\u{9b}31m";

fn chat(text: &str) -> Payload {
    Payload::Chat(Chat {
        conversation: "trust-test".into(),
        action: ChatAction::Message,
        author: Person {
            matrix_user: None,
            display_name: Some("Mallory\x1b]0;title\x07".into()),
            org: Some(org("lillehammer")),
        },
        text: text.into(),
        html: None,
        reply_to: None,
        target: None,
        attachment: None,
        origin_room: None,
        origin_event: None,
    })
}

fn assert_no_raw_controls(out: &str) {
    for c in ['\x1b', '\r', '\x07', '\u{202E}', '\u{9b}'] {
        assert!(!out.contains(c), "raw {:?} in output:\n{out:?}", c);
    }
}

#[tokio::test]
async fn tail_escapes_terminal_controls_from_another_org() {
    let bus = BusFixture::start().await.unwrap();
    let lillehammer = bus.identity("lillehammer");
    bus.publish(
        &lillehammer,
        Draft::new(&chat(FORGED), Tlp::Amber, Audience::orgs([org("gjovik")])),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&bus, dir.path(), "gjovik");

    let text = varde_tests::varde_ok(&cfg, &["tail", "--since", "1h"]).unwrap();
    assert_no_raw_controls(&text);
    assert!(
        text.contains("hei\\u{1b}[2K\\u{d}TLP:CLEAR kcsirt: fake\\u{202e}moc.live"),
        "{text}"
    );
    assert!(text.contains("Mallory\\u{1b}]0;title\\u{7}"), "{text}");
    // The only line that starts at column 0 is the real header.
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(' '))
        .collect();
    assert_eq!(headers.len(), 1, "{text}");
    assert!(headers[0].contains("from lillehammer"), "{text}");

    // --json: the same message as JSON that a terminal shows as text and
    // that still parses to the original payload.
    let text = varde_tests::varde_ok(&cfg, &["tail", "--since", "1h", "--json"]).unwrap();
    assert_no_raw_controls(&text);
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["payload"]["text"].as_str(), Some(FORGED));
}

#[tokio::test]
async fn ingest_misp_with_multibyte_tags_and_deleted_attributes() {
    let bus = BusFixture::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&bus, dir.path(), "kcsirt");
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    let uuid = "6a1f2c3d-0000-4000-8000-00000000b0d0";
    std::fs::write(
        feed.join("manifest.json"),
        format!("{{\"{uuid}\": {{\"info\": \"Bodø\"}}}}"),
    )
    .unwrap();
    std::fs::write(
        feed.join(format!("{uuid}.json")),
        format!(
            r#"{{"Event": {{"uuid": "{uuid}", "Tag": [{{"name": "Bodø"}}, {{"name": "tlp:green"}}],
              "Attribute": [
                {{"type": "domain", "value": "normal.example", "to_ids": true, "Tag": [{{"name": "ø"}}]}},
                {{"type": "domain", "value": "retracted.example", "to_ids": true, "deleted": true}}
              ],
              "Object": [{{"uuid": "o1", "deleted": true, "Attribute": [
                {{"type": "url", "value": "http://gone.example/", "to_ids": true}}]}}]
            }}}}"#
        ),
    )
    .unwrap();
    let feed = feed.to_string_lossy();
    let out = varde_tests::varde_ok(&cfg, &["ingest", "misp", &feed, "--name", "bodo", "--json"])
        .unwrap();
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            s["accepted"].as_u64(),
            s["skipped"].as_u64(),
            s["invalid"].as_u64()
        ),
        (Some(1), Some(2), Some(0)),
        "{s}"
    );
}

/// After a root rotation, a state file signed by the old (now unpinned) root
/// and newer than the offered directory stops the process with an error that
/// names the file and the way out, instead of "check root_keys".
#[tokio::test]
async fn state_from_an_unpinned_root_gives_a_clear_error() {
    let bus = BusFixture::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&bus, dir.path(), "gjovik");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text = text.replace(
        "file = \"directory.json\"\n",
        "file = \"directory.json\"\nstate = \"state/directory.json\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let old_root = varde_bus::keys::generate_signing_key();
    let mut old = bus.world.dir.clone();
    old.version += 10;
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let state = dir.path().join("state/directory.json");
    std::fs::write(&state, varde_bus::directory::sign(&old, &old_root).unwrap()).unwrap();

    let out = std::process::Command::new(varde_tests::workspace_bin("varde").unwrap())
        .arg("-c")
        .arg(&cfg)
        .args(["tail", "--since", "1h"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    let old_pub = varde_bus::keys::encode_verifying_key(&old_root.verifying_key());
    assert!(e.contains("state/directory.json"), "{e}");
    assert!(e.contains(&old_pub), "{e}");
    assert!(e.contains("do not delete the state file"), "{e}");
    // The floor is still on disk.
    assert!(state.exists());
}
