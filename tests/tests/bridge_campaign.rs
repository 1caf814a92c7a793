//! Campaigns in Matrix (Synapse and nats-server, real): gjovik's bridge
//! posts the CSIRT's advisory and tells the CSIRT it was delivered; the
//! CSIRT's reminder is posted in the advisory's thread; Kari answers in
//! the thread (`!varde status in_progress`, no id needed) and with
//! `!varde status … remediated`, which reach the CSIRT alone and count
//! for gjovik. A user of another org cannot set gjovik's status. The
//! bridge is SIGKILLed twice (after the reminder is posted, after the status
//! is sent); the thread still holds one opening and one reminder, and the
//! CSIRT counts each status once.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::Result;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use varde_bridge::matrix::reader::Reader;
use varde_bus::seal::Draft;
use varde_campaign::{OpenSpec, Picture, Standing};
use varde_hub::run::serve_inbox;
use varde_schemas::payload::RemediationState;
use varde_schemas::{Audience, OrgId, Tlp};
use varde_tests::bridge::{BridgeProcess, body, eventually, read_event, read_room, send_as};
use varde_tests::pair::{Pair, all_events};

const WAIT: Duration = Duration::from_secs(90);
const ABOUT: &str = "KCSIRT-2026-0042";

async fn read(reader: &Reader, room: &str, needle: &str) -> Result<String> {
    Ok(read_event(reader, room, needle, WAIT).await?.event_id)
}

async fn say(reader: &Reader, room: &str, text: &str) -> Result<()> {
    send_as(
        reader,
        room,
        "m.room.message",
        json!({ "msgtype": "m.text", "body": text }),
    )
    .await
}

#[tokio::test]
async fn bridge_campaign_reminder_in_thread_and_status_to_the_csirt_alone_across_sigkills()
-> Result<()> {
    let p = Pair::start().await?;
    let kari_r = p.reader("kari").await?;
    // gjovik's own encrypted room for warnings, up to AMBER+STRICT.
    let room = p.room("kari", &["ola"], true).await?;
    let cfg = p.config(
        &p.a,
        &format!(
            "[[rooms]]\nroom = \"{room}\"\nname = \"warnings\"\nkinds = [\"advisory\", \"campaign\"]\nceiling = \"TLP:AMBER+STRICT\"\n"
        ),
        // Unacked envelopes come back soon after a SIGKILL (below).
        "[delivery]\nack_wait = \"5s\"\n",
    )?;
    let mut bridge = BridgeProcess::start(&cfg).await?;

    let advisory =
        varde_tests::csirt::advisory(ABOUT, "Critical authentication bypass in Citrix NetScaler");
    p.bus
        .publish(
            &p.bus.identity("kcsirt"),
            Draft::new(
                &advisory,
                Tlp::Amber,
                Audience::orgs([OrgId::new("gjovik")?]),
            ),
        )
        .await?;
    let first = read(&kari_r, &room, "Critical authentication bypass").await?;

    // The CSIRT opens a campaign and, after the interval, reminds gjovik.
    let state = tempfile::tempdir()?;
    let (h, mut inbox, mut sightings, mut desk) =
        varde_tests::csirt::csirt(&p.bus, state.path()).await?;
    let t0 = Timestamp::now();
    let c = desk
        .open(
            OpenSpec {
                about: ABOUT.into(),
                title: "Patch NetScaler by Friday".into(),
                targets: vec![OrgId::new("gjovik")?],
                deadline: None,
                remind_every: Duration::from_secs(60),
            },
            t0,
        )
        .await?;
    assert_eq!(
        desk.remind_due(t0 + SignedDuration::from_secs(61))
            .await?
            .len(),
        1
    );

    // The opening and the reminder are replies in the advisory's thread.
    if let Err(e) = read(&kari_r, &room, "The CSIRT asks for your status").await {
        let seen: Vec<String> = read_room(&kari_r, &room)
            .await?
            .iter()
            .map(|e| {
                format!(
                    "{} decrypted={} {}",
                    e.event_type,
                    e.decrypted,
                    body(&e.content)
                )
            })
            .collect();
        anyhow::bail!(
            "{e}\nthe room:\n{}\nbridge log:\n{}",
            seen.join("\n"),
            bridge.log_tail()
        );
    }
    read(&kari_r, &room, "Reminder 1").await?;
    // SIGKILL right after the reminder is in the room (its envelope may not
    // be acked yet): after the restart it must not be posted again.
    bridge.kill().await;
    bridge.restart().await?;
    let kari = p.user("kari")?;
    let threaded = eventually("two thread replies to the advisory", WAIT, || async {
        let events: Vec<Value> = all_events(&kari, &room).await?;
        let n = events
            .iter()
            .filter(|e| {
                e["content"]["m.relates_to"]["rel_type"] == "m.thread"
                    && e["content"]["m.relates_to"]["event_id"] == first.as_str()
            })
            .count();
        Ok((n >= 2).then_some(n))
    })
    .await?;
    assert_eq!(threaded, 2);

    // Kari reacts ✅ on the advisory (acknowledged, and the ack to the
    // CSIRT), then answers in the room. A user of another org is refused
    // by the dispatch before anything is signed (bridge_commands).
    send_as(
        &kari_r,
        &room,
        "m.reaction",
        json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": first, "key": "✅" } }),
    )
    .await?;
    read(&kari_r, &room, "Acknowledged").await?;
    // In the advisory's thread the advisory id may be left out.
    send_as(
        &kari_r,
        &room,
        "m.room.message",
        json!({
            "msgtype": "m.text",
            "body": "!varde status in_progress \"patching tonight\"",
            "m.relates_to": { "rel_type": "m.thread", "event_id": first,
                "is_falling_back": true, "m.in_reply_to": { "event_id": first } }
        }),
    )
    .await?;
    read(&kari_r, &room, "Status in_progress sent to kcsirt only").await?;
    // Outside the thread, without an id: refused, nothing sent.
    say(&kari_r, &room, "!varde status affected").await?;
    read(&kari_r, &room, "name the advisory").await?;
    say(
        &kari_r,
        &room,
        &format!("!varde status {ABOUT} remediated \"patched 14:05\""),
    )
    .await?;
    read(&kari_r, &room, "Status remediated sent to kcsirt only").await?;
    // And right after the status went out: the command may be handled
    // again after the restart, and the CSIRT must still count it once.
    bridge.kill().await;
    bridge.restart().await?;
    // The org's own view of what the CSIRT asks it.
    say(&kari_r, &room, "!varde campaigns").await?;
    let listed = eventually("the campaigns answer", WAIT, || async {
        let events = read_room(&kari_r, &room).await?;
        Ok(events
            .iter()
            .map(|e| body(&e.content).to_string())
            .find(|b| b.starts_with(&format!("{ABOUT}: Patch NetScaler by Friday"))))
    })
    .await?;
    assert!(listed.contains("(remediated"), "{listed}");

    // The CSIRT's desk records gjovik's delivered receipt and Kari's answer.
    serve_inbox(
        &h,
        &mut sightings,
        &mut desk,
        &mut inbox,
        Some(Duration::from_secs(3)),
    )
    .await?;
    // Past the ack wait, anything redelivered after the kills has been
    // handled: still one opening and one reminder in the thread.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let events: Vec<Value> = all_events(&kari, &room).await?;
    // The bot's thread replies: the opening, the reminder and its answer
    // to Kari's status in the thread (Kari's own message is there too).
    let threaded = events
        .iter()
        .filter(|e| {
            e["content"]["m.relates_to"]["rel_type"] == "m.thread"
                && e["content"]["m.relates_to"]["event_id"] == first.as_str()
                && e["sender"] != kari.user_id.as_str()
        })
        .count();
    assert_eq!(threaded, 3, "bridge log:\n{}", bridge.log_tail());
    serve_inbox(
        &h,
        &mut sightings,
        &mut desk,
        &mut inbox,
        Some(Duration::from_secs(2)),
    )
    .await?;
    let pic = Picture::of(&desk.store, &c, Timestamp::now())?;
    assert_eq!(pic.rows.len(), 1);
    let row = &pic.rows[0];
    assert_eq!(
        row.standing,
        Standing::Answered(RemediationState::Remediated)
    );
    assert_eq!(row.note.as_deref(), Some("patched 14:05"));
    assert!(row.delivered_at.is_some(), "{row:?}");
    assert_eq!(row.reminders, 1);
    let states: Vec<RemediationState> = desk
        .store
        .statuses(&OrgId::new("gjovik")?, ABOUT)?
        .iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        [
            RemediationState::Delivered,
            RemediationState::Acknowledged,
            RemediationState::InProgress,
            RemediationState::Remediated
        ]
    );
    Ok(())
}
