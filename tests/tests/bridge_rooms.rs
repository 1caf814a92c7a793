//! The Matrix bridge against a real Synapse and nats-server: the right
//! messages in the right rooms (read back by a second account, decrypted
//! where the room is encrypted), withheld with a notice where the label
//! does not fit the room, advisory revisions as edit + thread reply,
//! `release`, `check-config`, metrics, and no plaintext in the logs.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::Result;
use jiff::Timestamp;
use serde_json::json;
use varde_bridge::matrix::reader::ReadEvent;
use varde_schemas::payload::{Advisory, Alert, Severity};
use varde_schemas::{Audience, OrgId, Payload, Tlp};
use varde_tests::bridge::{BridgeProcess, BridgeWorld, body, bot_messages, eventually, read_room};
use varde_tests::free_port;

const WAIT: Duration = Duration::from_secs(90);

fn token(what: &str) -> String {
    format!("{what}{}", uuid::Uuid::now_v7().simple())
}

fn advisory(id: &str, revision: u32, title: &str, summary: &str, changes: Option<&str>) -> Payload {
    Payload::Advisory(Advisory {
        advisory_id: id.into(),
        revision,
        title: title.into(),
        summary: summary.into(),
        severity: Severity::High,
        cves: vec!["CVE-2026-12345".into()],
        affected: vec![],
        actions: vec!["Patch today".into()],
        references: vec!["https://example.org/adv".into()],
        sectors: vec![],
        published: Timestamp::now(),
        changes: changes.map(str::to_owned),
        matched_assets: vec![],
    })
}

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

/// The first event the reader sees whose body contains `needle`.
fn find<'a>(events: &'a [ReadEvent], needle: &str) -> Option<&'a ReadEvent> {
    events.iter().find(|e| body(&e.content).contains(needle))
}

async fn wait_read(
    reader: &varde_bridge::matrix::reader::Reader,
    room: &str,
    needle: &str,
) -> Result<ReadEvent> {
    eventually(&format!("`{needle}` in {room}"), WAIT, || async {
        let events = read_room(reader, room).await?;
        Ok(find(&events, needle).cloned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_relays_within_labels_and_withholds() -> Result<()> {
    let w = BridgeWorld::start().await?;
    // Kari's E2EE device exists (and is cross-signed) before any room key
    // is shared.
    let kari = w.reader("kari").await?;
    assert!(
        kari.cross_signed().await,
        "the reader's device is cross-signed"
    );

    let green = w.room("kari", &["lars"], false).await?;
    let amber = w.room("kari", &["ola"], true).await?;
    let alerts = w.room("kari", &["stranger"], false).await?;
    let amber_plain = w.room("kari", &[], false).await?;
    let amber_mixed = w.room("kari", &["eve"], true).await?;
    let amber_late = w.room("kari", &[], true).await?;
    let strict = w.room("kari", &["lars"], true).await?;
    let no_red = w.room("kari", &[], true).await?;
    let red = w.room("kari", &[], true).await?;

    let amber_filter =
        "kinds = [\"advisory\"]\nlabels = [\"TLP:AMBER\", \"TLP:AMBER\"]\nceiling = \"TLP:AMBER\"";
    let rooms = format!(
        "[[rooms]]\nroom = \"{green}\"\nname = \"green\"\nkinds = [\"advisory\"]\nlabels = [\"TLP:CLEAR\", \"TLP:GREEN\"]\nlanguage = \"nb\"\n\n\
         [[rooms]]\nroom = \"{amber}\"\nname = \"amber\"\n{amber_filter}\n\n\
         [[rooms]]\nroom = \"{alerts}\"\nname = \"alerts\"\nkinds = [\"alert\"]\nurgent_alerts = true\n\n\
         [[rooms]]\nroom = \"{amber_plain}\"\nname = \"amber-plain\"\n{amber_filter}\n\n\
         [[rooms]]\nroom = \"{amber_mixed}\"\nname = \"amber-mixed\"\n{amber_filter}\n\n\
         [[rooms]]\nroom = \"{amber_late}\"\nname = \"amber-late\"\n{amber_filter}\n\n\
         [[rooms]]\nroom = \"{strict}\"\nname = \"strict\"\nkinds = [\"advisory\"]\nlabels = [\"TLP:AMBER+STRICT\", \"TLP:AMBER+STRICT\"]\nceiling = \"TLP:AMBER+STRICT\"\n\n\
         [[rooms]]\nroom = \"{no_red}\"\nname = \"no-red\"\nkinds = [\"advisory\"]\nlabels = [\"TLP:RED\", \"TLP:RED\"]\nceiling = \"TLP:AMBER\"\n\n\
         [[rooms]]\nroom = \"{red}\"\nname = \"red\"\nkinds = [\"advisory\"]\nlabels = [\"TLP:RED\", \"TLP:RED\"]\nceiling = \"TLP:RED\"\nred = true\n"
    );
    let metrics_port = free_port();
    let config = w.config(
        &rooms,
        &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    )?;
    let mut bridge = BridgeProcess::start(&config).await?;

    // Secrets that may appear only where the label allows, never in a log.
    let s2 = token("ambertitle");
    let s4 = token("stricttitle");
    let s5 = token("redtitle");
    let s6 = token("ambertwo");

    let _m1 = w
        .publish(
            &advisory(
                "ADV-1",
                1,
                "Greenable patch note",
                "Community summary",
                None,
            ),
            Tlp::Green,
            Audience::community(),
        )
        .await?;
    let m2 = w
        .publish(
            &advisory("ADV-2", 1, &s2, "Amber summary", None),
            Tlp::Amber,
            Audience::orgs([org("gjovik")]),
        )
        .await?;
    let _m3 = w
        .publish(
            &Payload::Alert(Alert {
                title: "Phishing wave impersonating ID-porten".into(),
                body: "Block idporten-fornyelse.example".into(),
                severity: Severity::High,
                urgent: true,
                references: vec![],
                indicators: vec![],
                advisory_id: None,
            }),
            Tlp::Clear,
            Audience::community(),
        )
        .await?;
    let m4 = w
        .publish(
            &advisory("ADV-4", 1, &s4, "Strict summary", None),
            Tlp::AmberStrict,
            Audience::orgs([org("gjovik"), org("lillehammer")]),
        )
        .await?;
    let m5 = w
        .publish(
            &advisory("ADV-5", 1, &s5, "Red summary", None),
            Tlp::Red,
            Audience::people([w.kari_key, w.bridge.key_id]),
        )
        .await?;

    // GREEN advisory, Norwegian, in the unencrypted community room; read
    // with the plain API by Lars (lillehammer), not the bot.
    let lars = w.user("lars")?;
    let bot = w.bot.user_id.clone();
    let first = eventually("ADV-1 in the green room", WAIT, || async {
        let msgs = bot_messages(&lars, &green, &bot).await?;
        Ok(msgs
            .into_iter()
            .find(|e| body(&e["content"]).contains("ADV-1")))
    })
    .await?;
    let c = &first["content"];
    assert!(
        body(c).starts_with("TLP:GREEN Sikkerhetsvarsel ADV-1 (revisjon 1)"),
        "{c}"
    );
    assert_eq!(c["msgtype"], "m.notice");
    let html = c["formatted_body"].as_str().unwrap();
    assert!(html.starts_with("<p><font color=\"#33FF00\""), "{html}");
    assert!(html.contains("TLP:GREEN") && html.contains("Alvorlighetsgrad"));
    let first_id = first["event_id"].as_str().unwrap().to_string();

    // AMBER advisory in the encrypted gjovik room, decrypted by Kari.
    let e = wait_read(&kari, &amber, &s2).await?;
    assert!(
        e.encrypted && e.decrypted,
        "arrived encrypted, decrypted by the reader"
    );
    assert!(body(&e.content).starts_with("TLP:AMBER Advisory ADV-2"));
    let html = e.content["formatted_body"].as_str().unwrap();
    assert!(
        html.contains("#FFC000") && html.contains("TLP:AMBER"),
        "{html}"
    );
    assert_eq!(e.content["msgtype"], "m.notice");
    assert_eq!(e.sender, bot);

    // CLEAR urgent alert: any room, m.text with an @room mention.
    let alert = eventually("the alert", WAIT, || async {
        let msgs = bot_messages(&w.user("stranger")?, &alerts, &bot).await?;
        Ok(msgs.into_iter().next())
    })
    .await?;
    let c = &alert["content"];
    assert!(body(c).starts_with("@room TLP:CLEAR Alert (high)"), "{c}");
    assert_eq!(c["msgtype"], "m.text");
    assert_eq!(c["m.mentions"]["room"], true);
    assert!(c["formatted_body"].as_str().unwrap().contains("#FFFFFF"));

    // RED into a room marked red = true whose only member is Kari.
    let e = wait_read(&kari, &red, &s5).await?;
    assert!(e.decrypted && body(&e.content).starts_with("TLP:RED"));
    assert!(
        e.content["formatted_body"]
            .as_str()
            .unwrap()
            .contains("#FF2B2B")
    );

    // Withheld: AMBER into an unencrypted room.
    let m2id = m2.id().to_string();
    let notice = eventually("the withheld notice", WAIT, || async {
        let msgs = bot_messages(&w.user("kari")?, &amber_plain, &bot).await?;
        Ok(msgs
            .into_iter()
            .find(|e| body(&e["content"]).contains(&m2id)))
    })
    .await?;
    let nb = body(&notice["content"]);
    assert!(
        nb.contains("withheld") && nb.contains("needs an end-to-end encrypted room"),
        "{nb}"
    );
    // Withheld: AMBER where a user of another org (eve, innlandet-fk) is in.
    let e = wait_read(&kari, &amber_mixed, &m2id).await?;
    assert!(body(&e.content).contains("outside the message's audience"));
    assert!(body(&e.content).contains(&w.user_id("eve")));
    // Withheld: AMBER+STRICT with two orgs in the room. The message named
    // gjovik and lillehammer, but each org's copy names only that org, so
    // lillehammer's member is outside gjovik's copy before the
    // single-organisation rule is reached (policy::tests covers that rule).
    let e = wait_read(&kari, &strict, &m4.id().to_string()).await?;
    assert!(
        body(&e.content).contains("outside the message's audience")
            && body(&e.content).contains("(lillehammer)"),
        "{}",
        body(&e.content)
    );
    // Withheld: RED where the room is not marked red.
    let e = wait_read(&kari, &no_red, &m5.id().to_string()).await?;
    assert!(body(&e.content).contains("not configured for TLP:RED"));

    // A user of a non-audience org joins after the bridge started: the
    // first AMBER went in, the next is withheld.
    wait_read(&kari, &amber_late, &s2).await?;
    w.user("kari")?
        .invite(&amber_late, &w.user_id("eve"))
        .await?;
    w.user("eve")?.join(&amber_late).await?;
    let m6 = w
        .publish(
            &advisory("ADV-6", 1, &s6, "Second amber", None),
            Tlp::Amber,
            Audience::orgs([org("gjovik")]),
        )
        .await?;
    let m6id = m6.id().to_string();
    let e = wait_read(&kari, &amber_late, &m6id).await?;
    assert!(body(&e.content).contains("outside the message's audience"));
    // … while the room without eve got it.
    wait_read(&kari, &amber, &s6).await?;

    // A revision edits the first post and adds a thread reply.
    w.publish(
        &advisory(
            "ADV-1",
            2,
            "Greenable patch note",
            "Community summary, updated",
            Some("Ny versjon av fiksen"),
        ),
        Tlp::Green,
        Audience::community(),
    )
    .await?;
    let (edit, thread) = eventually("the edit and the thread reply", WAIT, || async {
        let msgs = bot_messages(&lars, &green, &bot).await?;
        let rel = |t: &str| {
            msgs.iter()
                .find(|e| {
                    e["content"]["m.relates_to"]["rel_type"] == t
                        && e["content"]["m.relates_to"]["event_id"] == first_id.as_str()
                })
                .cloned()
        };
        Ok(rel("m.replace").zip(rel("m.thread")))
    })
    .await?;
    let new = &edit["content"]["m.new_content"];
    assert!(
        body(new).contains("ADV-1 (revisjon 2)") && body(new).contains("updated"),
        "{new}"
    );
    assert!(body(&thread["content"]).contains("Oppdatert til revisjon 2"));
    assert!(body(&thread["content"]).contains("Ny versjon av fiksen"));
    // Exactly one post per message in the green room: first, edit, thread.
    assert_eq!(bot_messages(&lars, &green, &bot).await?.len(), 3);

    // Release: refused while the room still breaks the label …
    let (code, out) = w
        .cli(&config, &["release", &m2id, &amber_plain, "--wait", "60s"])
        .await?;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused") && out.contains("encrypted"),
        "{out}"
    );
    // … posted once the foreign member is gone.
    w.user("kari")?
        .request(
            reqwest::Method::POST,
            &["rooms", &amber_late, "kick"],
            &[],
            Some(&json!({ "user_id": w.user_id("eve") })),
        )
        .await?;
    let (code, out) = w
        .cli(&config, &["release", &m6id, &amber_late, "--wait", "60s"])
        .await?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("posted: $"), "{out}");
    let e = wait_read(&kari, &amber_late, &s6).await?;
    assert!(e.decrypted && body(&e.content).starts_with("TLP:AMBER"));

    // No plaintext of a withheld message in its room.
    for (room, secrets) in [
        (&amber_mixed, vec![&s2, &s6]),
        (&strict, vec![&s4]),
        (&no_red, vec![&s5]),
    ] {
        let events = read_room(&kari, room).await?;
        for e in &events {
            for s in &secrets {
                assert!(
                    !body(&e.content).contains(s.as_str()),
                    "{s} leaked into {room}"
                );
            }
        }
    }
    for e in bot_messages(&w.user("kari")?, &amber_plain, &bot).await? {
        assert!(!e.to_string().contains(&s2) && !e.to_string().contains(&s6));
    }

    // check-config flags the rooms whose ceiling they cannot carry.
    let (code, out) = w.cli(&config, &["check-config"]).await?;
    eprintln!("{out}");
    assert_eq!(code, 1, "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("amber-plain").contains("FLAG ceiling TLP:AMBER not supported"),
        "{out}"
    );
    assert!(
        line("strict").contains("FLAG") && line("strict").contains("one organisation"),
        "{out}"
    );
    assert!(line("amber").ends_with("ok"), "{out}");
    assert!(line("red").ends_with("ok"), "{out}");
    assert!(
        line("alerts").contains("FLAG"),
        "a stranger cannot hold GREEN: {out}"
    );

    // An invitation from someone the directory does not know is declined.
    let strangers = w
        .user("stranger")?
        .create_room(json!({ "preset": "private_chat", "invite": [bot.clone()] }))
        .await?;
    eventually("the declined invitation", WAIT, || async {
        let m = w
            .user("stranger")?
            .get_state(&strangers, "m.room.member", &bot)
            .await?;
        Ok((m["membership"] == "leave").then_some(()))
    })
    .await?;
    assert!(bridge.log().contains("invitation declined"));

    // Metrics and health.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let metrics = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for want in [
        "varde_bridge_withheld_total{room=\"amber-plain\",reason=\"not_encrypted\"}",
        "varde_bridge_withheld_total{room=\"amber-mixed\",reason=\"outside_audience\"}",
        // Each org's copy of the STRICT message names that org only (above).
        "varde_bridge_withheld_total{room=\"strict\",reason=\"outside_audience\"}",
        "varde_bridge_withheld_total{room=\"no-red\",reason=\"red_not_allowed\"}",
        "varde_bridge_posted_total{room=\"green\",kind=\"advisory_revision\"} 1",
        "varde_bridge_released_total{room=\"amber-late\"} 1",
        "varde_bridge_device_cross_signed 1",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }
    let health = http
        .get(format!("http://127.0.0.1:{metrics_port}/healthz"))
        .send()
        .await?;
    assert_eq!(health.status().as_u16(), 200);

    // The log names ids, labels and reasons, never content.
    let log = bridge.log();
    assert!(
        log.contains("message withheld from the room"),
        "{}",
        bridge.log_tail()
    );
    for s in [&s2, &s4, &s5, &s6] {
        assert!(
            !log.contains(s.as_str()),
            "plaintext {s} in the bridge's log"
        );
    }
    assert!(!log.contains("Amber summary") && !log.contains("Red summary"));
    assert!(bridge.is_running(), "{}", bridge.log_tail());
    Ok(())
}
