//! `!varde` commands, acks and incidents across two homeservers that do not
//! federate: `ack` and ✅ give exactly one signed `ack` each (seen by the
//! CSIRT with `varde tail`); refusals with reasons; bad input answered;
//! a malformed `incident` envelope on the bus is refused and logged; an
//! incident gets one encrypted room per org's homeserver, messages flow
//! both ways, and `incident close` posts the summary and locks the rooms.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::Result;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::process::Command;
use varde_bridge::matrix::reader::Reader;
use varde_bus::seal::Draft;
use varde_schemas::payload::{Alert, Severity};
use varde_schemas::{Audience, Kind, OrgId, Payload, Tlp};
use varde_tests::MatrixUser;
use varde_tests::bridge::{
    BridgeProcess, body, bot_messages, eventually, read_event, read_room, send_as,
};
use varde_tests::pair::Pair;
use varde_tests::workspace_bin;

const WAIT: Duration = Duration::from_secs(90);

fn token(what: &str) -> String {
    format!("{what}{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

async fn answer(user: &MatrixUser, room: &str, bot: &str, needle: &str) -> Result<Value> {
    eventually(&format!("`{needle}` in {room}"), WAIT, || async {
        let msgs = bot_messages(user, room, bot).await?;
        Ok(msgs
            .into_iter()
            .find(|e| body(&e["content"]).contains(needle)))
    })
    .await
}

async fn read(reader: &Reader, room: &str, needle: &str) -> Result<String> {
    let e = read_event(reader, room, needle, WAIT).await?;
    Ok(body(&e.content).to_string())
}

async fn send(reader: &Reader, room: &str, content: Value) -> Result<()> {
    send_as(reader, room, "m.room.message", content).await
}

async fn invites(user: &MatrixUser) -> Result<Vec<String>> {
    let s = user.sync(None, 0).await?;
    Ok(s["rooms"]["invite"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_commands_acks_and_incidents_matrix() -> Result<()> {
    let p = Pair::start().await?;
    p.display_name("kari", "Kari Nordmann").await?;
    let kari_r = p.reader("kari").await?;
    let lars_r = p.reader("lars").await?;
    let alerts = p.room("kari", &["ola"], false).await?;
    let lobby = p.room("kari", &["stranger"], false).await?;
    let mixed = p.room("kari", &["eve"], true).await?;
    let amber = p.room("kari", &["ola"], true).await?;
    // The report room carries AMBER incident summaries: encrypted, as the
    // room check asks of every post.
    let report = p.room("kari", &[], true).await?;
    let lars_room = p.room("lars", &[], false).await?;
    let cfg_a = p.config(
        &p.a,
        &format!(
            "[[rooms]]\nroom = \"{alerts}\"\nname = \"alerts\"\nkinds = [\"alert\"]\n\n\
             [[rooms]]\nroom = \"{amber}\"\nname = \"amber\"\nkinds = [\"alert\"]\nceiling = \"TLP:AMBER\"\n"
        ),
        &format!(
            "[incidents]\nresponders = [\"{}\"]\nreport_room = \"{report}\"\n",
            p.user_id("kari")
        ),
    )?;
    let cfg_b = p.config(
        &p.b,
        &format!("[[rooms]]\nroom = \"{lars_room}\"\nname = \"b\"\nlanguage = \"nb\"\n"),
        &format!("[incidents]\nresponders = [\"{}\"]\n", p.user_id("lars")),
    )?;
    let (bridge_a, bridge_b) =
        tokio::try_join!(BridgeProcess::start(&cfg_a), BridgeProcess::start(&cfg_b))?;
    let kari = p.user("kari")?;
    let ola = p.user("ola")?;
    let lars = p.user("lars")?;
    let bot_a = p.a.bot.user_id.clone();
    let bot_b = p.b.bot.user_id.clone();

    // Two alerts from the CSIRT: GREEN in the alerts room, AMBER (gjovik)
    // in the encrypted room.
    let csirt = p.bus.identity("kcsirt");
    let alert = |title: &str| {
        Payload::Alert(Alert {
            title: title.into(),
            body: "Block evil.example".into(),
            severity: Severity::High,
            urgent: false,
            references: vec![],
            indicators: vec![],
            advisory_id: None,
        })
    };
    let green = p
        .bus
        .publish(
            &csirt,
            Draft::new(&alert("Green alert"), Tlp::Green, Audience::community()),
        )
        .await?;
    let amber_alert = p
        .bus
        .publish(
            &csirt,
            Draft::new(
                &alert("Amber alert"),
                Tlp::Amber,
                Audience::orgs([OrgId::new("gjovik")?]),
            ),
        )
        .await?;
    let posted = answer(&kari, &alerts, &bot_a, "Green alert").await?;
    let posted_id = posted["event_id"].as_str().unwrap().to_string();

    // `ack` by Kari, ✅ by Ola, and a second ✅ by Kari: two acks in all.
    kari.send_text(&alerts, &format!("!varde ack {}", green.id()))
        .await?;
    answer(&kari, &alerts, &bot_a, "Acknowledged").await?;
    for u in [&ola, &kari] {
        u.send_event(
            &alerts,
            "m.reaction",
            json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": posted_id, "key": "✅" } }),
        )
        .await?;
    }
    answer(&kari, &alerts, &bot_a, "has already acknowledged").await?;

    // Refusals: a user outside the directory; share tlp:clear of a reply to
    // AMBER; AMBER into a room with a foreign member.
    p.user("stranger")?.send_text(&lobby, "!varde help").await?;
    let r = answer(&kari, &lobby, &bot_a, "Refused").await?;
    assert!(body(&r["content"]).contains("not a user of any organisation in the directory"));
    let amber_text = read(&kari_r, &amber, "Amber alert").await?;
    assert!(amber_text.starts_with("TLP:AMBER"));
    let amber_event = eventually("the AMBER post's id", WAIT, || async {
        let events = read_room(&kari_r, &amber).await?;
        Ok(events
            .iter()
            .find(|e| body(&e.content).contains("Amber alert"))
            .map(|e| e.event_id.clone()))
    })
    .await?;
    send(
        &kari_r,
        &amber,
        json!({
            "msgtype": "m.text",
            "body": "!varde share tlp:clear nothing to see",
            "m.relates_to": { "m.in_reply_to": { "event_id": amber_event } },
        }),
    )
    .await?;
    let r = read(&kari_r, &amber, "Refused").await?;
    assert!(
        r.contains("reply to a TLP:AMBER message; it cannot be shared as TLP:CLEAR"),
        "{r}"
    );
    send(
        &kari_r,
        &mixed,
        json!({ "msgtype": "m.text", "body": "!varde share tlp:amber to gjovik secret plan" }),
    )
    .await?;
    let r = read(&kari_r, &mixed, "Refused").await?;
    assert!(r.contains("innlandet-fk") && r.contains("outside"), "{r}");

    // Bad input: an unknown command, an over-long command, a malformed
    // incident envelope on the bus.
    kari.send_text(&lobby, "!varde frobnicate").await?;
    answer(&kari, &lobby, &bot_a, "unknown command `frobnicate`").await?;
    kari.send_text(&lobby, &format!("!varde share {}", "z".repeat(20_000)))
        .await?;
    answer(&kari, &lobby, &bot_a, "the limit is 16384").await?;
    let bad = p
        .bus
        .publish(
            &csirt,
            Draft::raw(
                Kind::Incident,
                Tlp::Amber,
                Audience::orgs([OrgId::new("gjovik")?, OrgId::new("lillehammer")?]),
                br#"{"incident_id": 5, "title": []}"#.to_vec(),
            ),
        )
        .await?;

    // The CSIRT sees exactly one ack per member.
    let tail = Command::new(workspace_bin("varde")?)
        .arg("--config")
        .arg(p.cli_config("kcsirt")?)
        .args(["tail", "--json", "--since", "1h", "--kind", "ack"])
        .output()
        .await?;
    let out = String::from_utf8_lossy(&tail.stdout).to_string();
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
    let acks: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let mut by: Vec<String> = acks
        .iter()
        .filter(|a| a["payload"]["of"] == green.id().to_string())
        .map(|a| {
            a["payload"]["by"]["matrix_user"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    by.sort();
    let mut want = vec![p.user_id("kari"), p.user_id("ola")];
    want.sort();
    assert_eq!(by, want, "one ack each: {out}");
    assert!(
        acks.iter()
            .all(|a| a["header"]["label"] == "TLP:AMBER" && a["payload"]["by"]["org"] == "gjovik")
    );
    let _ = amber_alert;

    // An incident with two orgs: one encrypted room per homeserver, the
    // org's responders invited, a pinned summary.
    let title = token("Ransomware");
    kari.send_text(
        &lobby,
        &format!("!varde incident open \"{title}\" tlp:amber with lillehammer"),
    )
    .await?;
    answer(&kari, &lobby, &bot_a, "opened as TLP:AMBER").await?;
    let room_a = eventually("Kari's incident invitation", WAIT, || async {
        Ok(invites(&kari).await?.into_iter().next())
    })
    .await?;
    let room_b = eventually("Lars' incident invitation", WAIT, || async {
        Ok(invites(&lars).await?.into_iter().next())
    })
    .await?;
    // Room ids of current room versions carry no server name; that each
    // room lives on its org's homeserver shows below: its only members are
    // that homeserver's bot and responder, and the two do not federate.
    assert_ne!(room_a, room_b);
    kari.join(&room_a).await?;
    lars.join(&room_b).await?;
    for (u, room, bot) in [(&kari, &room_a, &bot_a), (&lars, &room_b, &bot_b)] {
        let enc = u.get_state(room, "m.room.encryption", "").await?;
        assert_eq!(enc["algorithm"], "m.megolm.v1.aes-sha2");
        let members = u.joined_members(room).await?;
        let mut want = vec![bot.clone(), u.user_id.clone()];
        want.sort();
        let mut got = members.clone();
        got.sort();
        assert_eq!(got, want, "the bot and the org's responder only");
        let pinned = eventually("the pinned summary", WAIT, || async {
            Ok(u.get_state(room, "m.room.pinned_events", "").await.ok())
        })
        .await?;
        assert_eq!(pinned["pinned"].as_array().map(Vec::len), Some(1));
    }
    // Kari's and Lars' E2EE devices join and talk across homeservers.
    kari_r.join(&room_a).await?;
    lars_r.join(&room_b).await?;
    read(&kari_r, &room_a, &title).await?;
    read(&lars_r, &room_b, &title).await?;
    let m1 = token("isolated");
    send(
        &kari_r,
        &room_a,
        json!({ "msgtype": "m.text", "body": format!("We isolated the file server {m1}") }),
    )
    .await?;
    let got = read(&lars_r, &room_b, &m1).await?;
    assert!(
        got.starts_with("TLP:AMBER Kari Nordmann (Gjøvik kommune): We isolated"),
        "{got}"
    );
    let m2 = token("blocked");
    send(
        &lars_r,
        &room_b,
        json!({ "msgtype": "m.text", "body": format!("Blocked the C2 here {m2}") }),
    )
    .await?;
    read(&kari_r, &room_a, &m2).await?;
    send(
        &kari_r,
        &room_a,
        json!({ "msgtype": "m.text", "body": "!varde incident note backups verified" }),
    )
    .await?;
    read(&lars_r, &room_b, "backups verified").await?;
    send(
        &kari_r,
        &room_a,
        json!({ "msgtype": "m.text", "body": "!varde incident close contained, no data loss" }),
    )
    .await?;
    for (r, room) in [(&kari_r, &room_a), (&lars_r, &room_b)] {
        let s = read(r, room, "Notes: 1").await?;
        assert!(
            s.contains(&title) && s.contains("gjovik, lillehammer") && s.contains("contained"),
            "{s}"
        );
    }
    let s = read(&kari_r, &report, "Incident closed").await?;
    assert!(s.contains("Notes: 1"), "{s}");
    // Room names are not end-to-end encrypted: the title stays out.
    for (u, room) in [(&kari, &room_a), (&lars, &room_b)] {
        let name = u.get_state(room, "m.room.name", "").await?;
        let name = name["name"].as_str().unwrap_or_default();
        assert!(
            name.starts_with("Incident ")
                && name.ends_with("(TLP:AMBER)")
                && !name.contains(&title),
            "{name}"
        );
    }
    for (u, room) in [(&kari, &room_a), (&lars, &room_b)] {
        let pl = eventually("the room locked", WAIT, || async {
            let pl = u.get_state(room, "m.room.power_levels", "").await?;
            Ok((pl["events_default"] == 100).then_some(pl))
        })
        .await?;
        assert_eq!(pl["events_default"], 100);
        assert!(u.send_text(room, "after close").await.is_err(), "read-only");
    }

    // The malformed incident was refused and logged by both bridges.
    for log in [bridge_a.log(), bridge_b.log()] {
        assert!(
            log.lines()
                .any(|l| l.contains("refused envelope terminated") && l.contains(".incident")),
            "malformed incident not logged"
        );
        assert!(
            !log.contains(&m1) && !log.contains("secret plan"),
            "plaintext in a log"
        );
    }
    let _ = (bad, Timestamp::now());
    Ok(())
}
