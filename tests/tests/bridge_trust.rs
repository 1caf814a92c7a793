//! A compromised member can do no harm beyond its own name: each test
//! plays a member organisation holding its own keys and NATS user (or one
//! of its Matrix accounts) against a real Synapse, nats-server and
//! `varde-bridge`, and checks that the bridge believes the verified
//! envelope, not the payload, ids or rooms (docs/THREAT-MODEL.md names
//! these tests).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::Result;
use jiff::Timestamp;
use serde_json::{Value, json};
use uuid::Uuid;
use varde_bus::seal::Draft;
use varde_schemas::payload::{
    Ack, Advisory, Alert, Chat, ChatAction, Incident, IncidentAction, Person, Severity,
};
use varde_schemas::{Audience, OrgId, Payload, Tlp};
use varde_tests::MatrixUser;
use varde_tests::bridge::{BridgeProcess, BridgeWorld, body, bot_messages, eventually, read_room};
use varde_tests::fixture::drain;

const WAIT: Duration = Duration::from_secs(90);

fn token(what: &str) -> String {
    format!("{what}{}", &Uuid::now_v7().simple().to_string()[20..])
}

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

fn advisory(id: &str, revision: u32, title: &str) -> Payload {
    Payload::Advisory(Advisory {
        advisory_id: id.into(),
        revision,
        title: title.into(),
        summary: "Summary".into(),
        severity: Severity::High,
        cves: vec![],
        affected: vec![],
        actions: vec!["Patch".into()],
        references: vec![],
        sectors: vec![],
        published: Timestamp::now(),
        changes: None,
        matched_assets: vec![],
    })
}

fn alert(title: &str, urgent: bool) -> Payload {
    Payload::Alert(Alert {
        title: title.into(),
        body: "Block evil.example".into(),
        severity: Severity::High,
        urgent,
        references: vec![],
        indicators: vec![],
        advisory_id: None,
    })
}

fn person(name: &str, org_id: Option<&str>, user: Option<&str>) -> Person {
    Person {
        matrix_user: user.map(str::to_owned),
        display_name: Some(name.into()),
        org: org_id.map(org),
    }
}

fn chat(author: Person, action: ChatAction, text: &str, target: Option<Uuid>) -> Payload {
    Payload::Chat(Chat {
        conversation: "community".into(),
        action,
        author,
        text: text.into(),
        html: None,
        reply_to: None,
        target,
        attachment: None,
        origin_room: None,
        origin_event: None,
    })
}

async fn bot_post(user: &MatrixUser, room: &str, bot: &str, needle: &str) -> Result<Value> {
    eventually(&format!("`{needle}` in {room}"), WAIT, || async {
        let msgs = bot_messages(user, room, bot).await?;
        Ok(msgs
            .into_iter()
            .find(|e| body(&e["content"]).contains(needle)))
    })
    .await
}

async fn bot_says(user: &MatrixUser, room: &str, bot: &str, needle: &str) -> Result<bool> {
    Ok(bot_messages(user, room, bot)
        .await?
        .iter()
        .any(|e| body(&e["content"]).contains(needle)))
}

/// Payload attribution, edits and redactions of other orgs' posts,
/// advisory hijack and suppression, `@room` from a member, and a room
/// anyone can join: THREAT-MODEL rows 1, 2, 3 and 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_trust_member_cannot_speak_for_others_matrix() -> Result<()> {
    let w = BridgeWorld::start().await?;
    let lobby = w.room("kari", &["ola"], false).await?;
    let kari = w.user("kari")?;
    let bot = w.bot.user_id.clone();
    // A room whose join rule lets anyone in.
    let open = kari
        .create_room(json!({ "preset": "public_chat", "invite": [bot] }))
        .await?;
    // Lars (lillehammer) is a community member, but not in an audience
    // of gjovik alone.
    let narrow = w.room("kari", &["lars"], false).await?;
    let rooms = format!(
        "[[rooms]]\nroom = \"{lobby}\"\nname = \"lobby\"\nkinds = [\"advisory\", \"alert\"]\nurgent_alerts = true\n\
         [rooms.share]\ntlp = \"TLP:GREEN\"\nto = \"community\"\n\n\
         [[rooms]]\nroom = \"{open}\"\nname = \"open\"\nkinds = [\"alert\"]\n\n\
         [[rooms]]\nroom = \"{narrow}\"\nname = \"narrow\"\nkinds = [\"alert\"]\n"
    );
    let config = w.config(&rooms, "")?;
    let bridge = BridgeProcess::start(&config).await?;
    let csirt = w.bus.identity("kcsirt");
    let lh = w.bus.identity("lillehammer");
    let community = Audience::community();

    // The CSIRT's advisory in the room.
    let t_adv = token("csirtadvice");
    let adv = w
        .bus
        .publish(
            &csirt,
            Draft::new(&advisory("ADV-T", 1, &t_adv), Tlp::Green, community.clone()),
        )
        .await?;
    let posted = bot_post(&kari, &lobby, &bot, &t_adv).await?;
    let adv_event = posted["event_id"].as_str().unwrap().to_string();

    // 1. A chat that names the CSIRT as its author's org, and one that
    //    names another org's Matrix user, are refused; a display name that
    //    pretends is shown under the verified org.
    let t1 = token("impersonated");
    let forged = [
        person("KommuneCSIRT vakthavende", Some("kcsirt"), None),
        person("Kari", Some("lillehammer"), Some(&w.user_id("kari"))),
    ];
    for author in forged {
        w.bus
            .publish(
                &lh,
                Draft::new(
                    &chat(author, ChatAction::Message, &t1, None),
                    Tlp::Green,
                    community.clone(),
                ),
            )
            .await?;
    }
    let t1b = token("namedonly");
    w.bus
        .publish(
            &lh,
            Draft::new(
                &chat(
                    person(
                        "KommuneCSIRT vakthavende (KommuneCSIRT)",
                        Some("lillehammer"),
                        None,
                    ),
                    ChatAction::Message,
                    &t1b,
                    None,
                ),
                Tlp::Green,
                community.clone(),
            ),
        )
        .await?;

    // 2. Edit and redaction of the CSIRT's advisory post by another org.
    let t2 = token("withdrawn");
    for action in [ChatAction::Edit, ChatAction::Redact] {
        w.bus
            .publish(
                &lh,
                Draft::new(
                    &chat(
                        person("Lars", Some("lillehammer"), None),
                        action,
                        &format!("Advisory is WITHDRAWN {t2}"),
                        Some(adv.id()),
                    ),
                    Tlp::Green,
                    community.clone(),
                ),
            )
            .await?;
    }

    // 3. Another org's "revision" of the CSIRT's advisory id, and a huge
    //    revision of the next id published before the CSIRT's.
    let t3 = token("iwrevil");
    w.bus
        .publish(
            &lh,
            Draft::new(&advisory("ADV-T", 2, &t3), Tlp::Green, community.clone()),
        )
        .await?;
    w.bus
        .publish(
            &lh,
            Draft::new(
                &advisory("ADV-S", u32::MAX, "squatted"),
                Tlp::Green,
                community.clone(),
            ),
        )
        .await?;

    // 7. `@room` from a member org, and from the CSIRT.
    let t5 = token("memberurgent");
    w.bus
        .publish(
            &lh,
            Draft::new(&alert(&t5, true), Tlp::Green, community.clone()),
        )
        .await?;
    let t6 = token("csirturgent");
    w.bus
        .publish(
            &csirt,
            Draft::new(&alert(&t6, true), Tlp::Green, community.clone()),
        )
        .await?;
    // The CSIRT's own ADV-S comes last: once it is posted, everything
    // before it was handled (one worker per room, in order).
    let t4 = token("genuine");
    w.bus
        .publish(
            &csirt,
            Draft::new(&advisory("ADV-S", 1, &t4), Tlp::Green, community.clone()),
        )
        .await?;
    bot_post(&kari, &lobby, &bot, &t4).await?;

    let msgs = bot_messages(&kari, &lobby, &bot).await?;
    let bodies: Vec<String> = msgs
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                body(&e["content"]),
                e["content"]["m.new_content"]["body"]
                    .as_str()
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(
        !bodies.iter().any(|b| b.contains(&t1)),
        "an impersonating chat was posted: {bodies:#?}"
    );
    let shown = bodies.iter().find(|b| b.contains(&t1b)).unwrap();
    assert!(
        shown.contains("(KommuneCSIRT) (Lillehammer kommune):"),
        "attributed to the verified sender: {shown}"
    );
    assert!(
        !bodies.iter().any(|b| b.contains(&t2)),
        "another org's edit was applied: {bodies:#?}"
    );
    let original = kari
        .request(
            reqwest::Method::GET,
            &["rooms", &lobby, "event", &adv_event],
            &[],
            None,
        )
        .await?;
    assert!(
        body(&original["content"]).contains(&t_adv),
        "the CSIRT's post was redacted or changed: {original}"
    );
    for e in msgs.iter().filter(|e| body(&e["content"]).contains(&t3)) {
        assert_ne!(
            e["content"]["m.relates_to"]["event_id"].as_str(),
            Some(adv_event.as_str()),
            "another org's advisory edited the CSIRT's post"
        );
    }
    let member_urgent = msgs
        .iter()
        .find(|e| body(&e["content"]).contains(&t5))
        .unwrap();
    assert!(
        !body(&member_urgent["content"]).contains("@room")
            && member_urgent["content"]["m.mentions"]["room"] != true,
        "a member org mentioned @room: {member_urgent}"
    );
    let csirt_urgent = msgs
        .iter()
        .find(|e| body(&e["content"]).contains(&t6))
        .unwrap();
    assert!(body(&csirt_urgent["content"]).contains("@room"));

    // 7. GREEN to gjovik alone is not for a room with a lillehammer
    //    member, although lillehammer is in the community.
    let t7 = token("gjovikonly");
    w.bus
        .publish(
            &csirt,
            Draft::new(
                &alert(&t7, false),
                Tlp::Green,
                Audience::orgs([org("gjovik")]),
            ),
        )
        .await?;
    let notice = bot_post(&kari, &narrow, &bot, "withheld").await?;
    assert!(
        body(&notice["content"]).contains("outside the message's audience"),
        "{}",
        body(&notice["content"])
    );
    assert!(!bot_says(&kari, &narrow, &bot, &t7).await?);

    // 7. The open room gets a withheld notice, not the GREEN alert.
    let notice = bot_post(&kari, &open, &bot, "withheld").await?;
    assert!(
        body(&notice["content"]).contains("anyone in"),
        "{}",
        body(&notice["content"])
    );
    assert!(!bot_says(&kari, &open, &bot, &t6).await?);

    let log = bridge.log();
    assert!(
        log.matches("claims another organisation's author").count() >= 2,
        "impersonation not logged"
    );
    assert!(log.contains("edit or redaction of another author's message refused"));
    Ok(())
}

/// A bridge acts only for its own org; acks answer only for the room;
/// derived ids cannot be squatted; incident state belongs to its
/// participants: THREAT-MODEL rows 2 (same org, other user), 4, 5, 6, 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_trust_bridge_acts_for_its_own_org_matrix() -> Result<()> {
    let w = BridgeWorld::start().await?;
    let kari_r = w.reader("kari").await?;
    let lobby = w.room("kari", &["ola"], false).await?;
    let mixed = w.room("kari", &["lars"], false).await?;
    let kari = w.user("kari")?;
    let ola = w.user("ola")?;
    let lars = w.user("lars")?;
    let bot = w.bot.user_id.clone();
    let rooms = format!(
        "[[rooms]]\nroom = \"{lobby}\"\nname = \"lobby\"\nkinds = [\"advisory\"]\n\
         [rooms.share]\ntlp = \"TLP:GREEN\"\nto = \"community\"\n\n\
         [[rooms]]\nroom = \"{mixed}\"\nname = \"mixed\"\nkinds = [\"alert\"]\n"
    );
    let config = w.config(
        &rooms,
        &format!("[incidents]\nresponders = [\"{}\"]\n", w.user_id("kari")),
    )?;
    let bridge = BridgeProcess::start(&config).await?;
    let csirt = w.bus.identity("kcsirt");
    let lh = w.bus.identity("lillehammer");
    let fk = w.bus.identity("innlandet-fk");
    let to_csirt = Audience::orgs([org("kcsirt")]);

    let t_adv = token("advisory");
    let adv = w
        .bus
        .publish(
            &csirt,
            Draft::new(
                &advisory("ADV-A", 1, &t_adv),
                Tlp::Green,
                Audience::community(),
            ),
        )
        .await?;
    bot_post(&kari, &lobby, &bot, &t_adv).await?;

    // 6. Lars (lillehammer) in a room with gjovik's bot cannot make it sign.
    let t7 = token("larsshare");
    lars.send_text(&mixed, &format!("!varde share {t7}"))
        .await?;
    let refused = bot_post(&lars, &mixed, &bot, "acts only for users of").await?;
    assert!(body(&refused["content"]).contains("lillehammer"));
    lars.send_text(&mixed, "!varde sighting 203.0.113.9")
        .await?;
    // …nor set gjovik's campaign status, nor list what the CSIRT asks
    // gjovik (THREAT-MODEL 9.6, 9.7).
    lars.send_text(&mixed, "!varde status ADV-A remediated all patched")
        .await?;
    lars.send_text(&mixed, "!varde campaigns").await?;
    eventually(
        "the sighting, status and campaigns refused",
        WAIT,
        || async {
            let n = bot_messages(&lars, &mixed, &bot)
                .await?
                .iter()
                .filter(|e| body(&e["content"]).contains("acts only for users of"))
                .count();
            Ok((n >= 4).then_some(()))
        },
    )
    .await?;
    // Kari may list them, but not into a room that cannot carry
    // TLP:AMBER+STRICT (the lobby is unencrypted).
    kari.send_text(&lobby, "!varde campaigns").await?;
    bot_post(
        &kari,
        &lobby,
        &bot,
        "campaigns are TLP:AMBER+STRICT and this room cannot carry them",
    )
    .await?;
    // …nor invite it into its own rooms.
    let lars_room = lars
        .create_room(json!({ "preset": "private_chat", "invite": [bot] }))
        .await?;
    eventually("the invitation declined", WAIT, || async {
        Ok(bridge.log().contains("invitation declined").then_some(()))
    })
    .await?;
    let membership = lars.get_state(&lars_room, "m.room.member", &bot).await?;
    assert_ne!(
        membership["membership"], "join",
        "the bot joined lars' room"
    );

    // 7. `ack` answers only for what was posted in the asking room.
    kari.send_text(&mixed, &format!("!varde ack {}", adv.id()))
        .await?;
    bot_post(&kari, &mixed, &bot, "was bridged here").await?;

    // 4. Another org publishes first under the id the bridge would have
    //    derived from public values for Kari's ack; Kari's ack still goes
    //    out, under an id nobody else can compute.
    let public_guess = {
        let d = varde_bridge::hash::of(&["ack", &adv.id().to_string(), &w.user_id("kari")]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        uuid::Builder::from_custom_bytes(b).into_uuid()
    };
    w.bus
        .publish(
            &lh,
            Draft::new(
                &Payload::Ack(Ack {
                    of: adv.id(),
                    by: None,
                    note: Some("squatter".into()),
                }),
                Tlp::Amber,
                to_csirt.clone(),
            )
            .id(public_guess),
        )
        .await?;
    kari.send_text(&lobby, &format!("!varde ack {}", adv.id()))
        .await?;
    bot_post(&kari, &lobby, &bot, "Acknowledged").await?;

    // 2. Kari's edit of Ola's shared message is not shared.
    let t_ola = token("olasays");
    let ola_event = ola.send_text(&lobby, &format!("Seen here {t_ola}")).await?;
    let t_edit = token("karirewrites");
    kari.send_event(
        &lobby,
        "m.room.message",
        json!({
            "msgtype": "m.text",
            "body": format!("* {t_edit}"),
            "m.new_content": { "msgtype": "m.text", "body": t_edit },
            "m.relates_to": { "rel_type": "m.replace", "event_id": ola_event },
        }),
    )
    .await?;

    // 5. An incident between gjovik and lillehammer.
    let title = token("SecretTitle");
    kari.send_text(
        &lobby,
        &format!("!varde incident open \"{title}\" tlp:amber with lillehammer"),
    )
    .await?;
    let opened = bot_post(&kari, &lobby, &bot, "opened as TLP:AMBER").await?;
    let incident_id: Uuid = body(&opened["content"])
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()?;
    let room = eventually("Kari's incident invitation", WAIT, || async {
        let s = kari.sync(None, 0).await?;
        Ok(s["rooms"]["invite"]
            .as_object()
            .and_then(|o| o.keys().next().cloned()))
    })
    .await?;
    kari.join(&room).await?;
    kari_r.join(&room).await?;
    let name = kari.get_state(&room, "m.room.name", "").await?;
    let name = name["name"].as_str().unwrap_or_default();
    assert!(
        !name.contains(&title) && name.contains("TLP:AMBER"),
        "the title in the unencrypted room name: {name}"
    );
    let incident = |action, by: &str, text: &str| {
        Payload::Incident(Incident {
            incident_id,
            action,
            title: "forged".into(),
            participants: vec![org("gjovik"), org("lillehammer")],
            by: person("x", Some(by), None),
            text: Some(text.into()),
        })
    };
    let audience = Audience::orgs([org("gjovik"), org("lillehammer"), org("kcsirt")]);
    let t10 = token("outsidernote");
    // A non-participant notes and closes; a participant that did not open
    // it closes.
    w.bus
        .publish(
            &fk,
            Draft::new(
                &incident(IncidentAction::Note, "innlandet-fk", &t10),
                Tlp::Amber,
                audience.clone(),
            ),
        )
        .await?;
    w.bus
        .publish(
            &fk,
            Draft::new(
                &incident(IncidentAction::Close, "innlandet-fk", "forged close"),
                Tlp::Amber,
                audience.clone(),
            ),
        )
        .await?;
    w.bus
        .publish(
            &lh,
            Draft::new(
                &incident(IncidentAction::Close, "lillehammer", "forged close"),
                Tlp::Amber,
                audience.clone(),
            ),
        )
        .await?;
    let t9 = token("participantnote");
    w.bus
        .publish(
            &lh,
            Draft::new(
                &incident(IncidentAction::Note, "lillehammer", &t9),
                Tlp::Amber,
                audience.clone(),
            ),
        )
        .await?;
    eventually("the participant's note", WAIT, || async {
        let events = read_room(&kari_r, &room).await?;
        Ok(events
            .iter()
            .any(|e| body(&e.content).contains(&t9))
            .then_some(()))
    })
    .await?;
    let events = read_room(&kari_r, &room).await?;
    assert!(
        !events.iter().any(|e| body(&e.content).contains(&t10)),
        "a non-participant's note was posted"
    );
    let pl = kari.get_state(&room, "m.room.power_levels", "").await?;
    assert_ne!(pl["events_default"], 100, "a forged close locked the room");
    kari.send_text(&room, "still open").await?;

    // What the CSIRT received: Kari's genuine ack from gjovik, Ola's
    // message, and no edit of it.
    let mut inbox = w.bus.inbox(csirt.clone(), "kcsirt-trust").await?;
    let got = drain(&mut inbox, Duration::from_secs(3)).await?;
    let genuine_ack = got.iter().any(|d| {
        d.opened.header.sender.org.as_str() == "gjovik"
            && matches!(&d.opened.payload, Payload::Ack(a) if a.of == adv.id())
    });
    assert!(genuine_ack, "the CSIRT did not get gjovik's ack");
    let chats: Vec<&Chat> = got
        .iter()
        .filter_map(|d| match &d.opened.payload {
            Payload::Chat(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(chats.iter().any(|c| c.text.contains(&t_ola)));
    assert!(
        !chats.iter().any(|c| c.text.contains(&t_edit)),
        "Kari's edit of Ola's message was shared"
    );

    let log = bridge.log();
    assert!(log.contains("incident envelope refused"));
    assert!(!log.contains(&title), "an AMBER title in the log");
    Ok(())
}
