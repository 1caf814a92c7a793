//! No message stalls a room: posts too large for one Matrix event are cut
//! and carry their full text as a file; a post the homeserver refuses for
//! good (here a file over Synapse's `max_upload_size`, HTTP 413) is
//! withheld with a notice and the messages behind it flow.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::Result;
use jiff::Timestamp;
use serde_json::Value;
use varde_schemas::payload::{Advisory, Alert, Severity};
use varde_schemas::{Audience, Payload, Tlp};
use varde_tests::MatrixUser;
use varde_tests::bridge::{BridgeProcess, BridgeWorld, body, bot_messages, eventually};

const WAIT: Duration = Duration::from_secs(90);

fn token(what: &str) -> String {
    format!("{what}{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

fn alert(title: &str, body: String) -> Payload {
    Payload::Alert(Alert {
        title: title.into(),
        body,
        severity: Severity::High,
        urgent: false,
        references: vec![],
        indicators: vec![],
        advisory_id: None,
    })
}

/// Every event the bot sent in the room (messages and files).
async fn bot_events(user: &MatrixUser, room: &str, bot: &str) -> Result<Vec<Value>> {
    bot_messages(user, room, bot).await
}

async fn wait_for(user: &MatrixUser, room: &str, bot: &str, needle: &str) -> Result<Value> {
    eventually(&format!("`{needle}` in {room}"), WAIT, || async {
        Ok(bot_events(user, room, bot)
            .await?
            .into_iter()
            .find(|e| body(&e["content"]).contains(needle)))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_oversized_posts_are_cut_and_refusals_do_not_stall_matrix() -> Result<()> {
    let w = BridgeWorld::start_with("max_upload_size: 100K\n").await?;
    let room = w.room("kari", &["ola"], false).await?;
    let config = w.config(
        &format!(
            "[[rooms]]\nroom = \"{room}\"\nname = \"alerts\"\nkinds = [\"alert\", \"advisory\"]\n"
        ),
        "",
    )?;
    let bridge = BridgeProcess::start(&config).await?;
    let kari = w.user("kari")?;
    let bot = w.bot.user_id.clone();
    let community = Audience::community();

    // 70 KiB alert and 70 KiB advisory: cut, full text attached.
    let long = "Indicators and advice. ".repeat(70 * 1024 / 23);
    let t1 = token("longalert");
    w.publish(&alert(&t1, long.clone()), Tlp::Green, community.clone())
        .await?;
    let t2 = token("longadvisory");
    w.publish(
        &Payload::Advisory(Advisory {
            advisory_id: "ADV-LONG".into(),
            revision: 1,
            title: t2.clone(),
            summary: long.clone(),
            severity: Severity::High,
            cves: vec![],
            affected: vec![],
            actions: vec![],
            references: vec![],
            sectors: vec![],
            published: Timestamp::now(),
            changes: None,
            matched_assets: vec![],
        }),
        Tlp::Green,
        community.clone(),
    )
    .await?;
    // 150 KiB: cut too, but Synapse refuses its file (413): withheld.
    let t3 = token("hugealert");
    w.publish(
        &alert(&t3, "x".repeat(150 * 1024)),
        Tlp::Green,
        community.clone(),
    )
    .await?;
    // …and what comes behind it flows.
    let t4 = token("behind");
    w.publish(&alert(&t4, "short".into()), Tlp::Green, community.clone())
        .await?;
    wait_for(&kari, &room, &bot, &t4).await?;

    let events = bot_events(&kari, &room, &bot).await?;
    for t in [&t1, &t2] {
        let post = events
            .iter()
            .find(|e| body(&e["content"]).contains(t.as_str()))
            .unwrap();
        let b = body(&post["content"]);
        assert!(b.contains("Shortened"), "{t} not marked as shortened");
        assert!(b.len() < 16 << 10, "{t}: body of {} bytes", b.len());
    }
    let files: Vec<&Value> = events
        .iter()
        .filter(|e| e["content"]["msgtype"] == "m.file")
        .collect();
    assert_eq!(files.len(), 2, "one file per long post: {files:#?}");
    let withheld = wait_for(&kari, &room, &bot, "HTTP 413").await?;
    assert!(body(&withheld["content"]).contains("withheld"));

    let log = bridge.log();
    assert!(log.contains("refused the post for good"));
    assert!(!log.contains("room keeps failing"), "the room was held up");
    Ok(())
}
