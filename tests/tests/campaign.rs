//! Campaigns against a real nats-server: the CSIRT asks three orgs, each
//! answers (or not) with a status sealed to the CSIRT alone, the silent ones
//! are reminded exactly once per interval across a crash of the desk, and no
//! member ever reads another's status. The abuse side: a member cannot send
//! a status anywhere but the CSIRT, cannot send campaign messages, and
//! cannot report for another org.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use varde_bus::kind_rules;
use varde_bus::seal::{self, Draft, SealError};
use varde_campaign::{OpenSpec, Standing};
use varde_hub::Hub;
use varde_hub::run::{campaign_desk, serve_inbox};
use varde_hub::sighting::SightingDesk;
use varde_schemas::payload::{Campaign, CampaignAction, Person, RemediationState, Status};
use varde_schemas::{Audience, Header, Kind, OrgId, Payload, Tlp};
use varde_tests::{BusFixture, drain};

const IDLE: Duration = Duration::from_millis(1500);
const ABOUT: &str = "KCSIRT-2026-0042";

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

async fn csirt(
    bus: &BusFixture,
    state: &Path,
) -> (
    Hub,
    varde_bus::inbox::Inbox,
    SightingDesk,
    varde_campaign::Desk,
) {
    varde_tests::csirt::csirt(bus, state).await.unwrap()
}

fn status(state: RemediationState, note: Option<&str>) -> Payload {
    Payload::Status(Status {
        about: ABOUT.into(),
        state,
        note: note.map(String::from),
        by: Some(Person {
            display_name: Some("Kari".into()),
            ..Default::default()
        }),
    })
}

async fn send_status(bus: &BusFixture, who: &str, p: Payload) {
    let dir = bus.handle.current();
    let (label, audience) = kind_rules::status_audience(&dir).unwrap();
    bus.publish(&bus.identity(who), Draft::new(&p, label, audience))
        .await
        .unwrap();
}

fn campaigns_in(got: &[varde_bus::inbox::Delivery]) -> Vec<Campaign> {
    got.iter()
        .filter_map(|d| match &d.opened.payload {
            Payload::Campaign(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// Drops the SQLite file's write-ahead log so a copy of the main file is
/// the whole store (the connection that wrote it is closed first).
fn copy_store(from: &Path, to: &Path) {
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", from.display()));
    }
    std::fs::copy(from, to).unwrap();
}

#[tokio::test]
async fn a_campaign_reminds_the_silent_exactly_once_and_statuses_reach_the_csirt_alone() {
    let bus = BusFixture::start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let (h, mut inbox, mut sightings, mut desk) = csirt(&bus, state.path()).await;

    let t0 = Timestamp::now();
    let c = desk
        .open(
            OpenSpec {
                about: ABOUT.into(),
                title: "Citrix NetScaler: patch by Friday".into(),
                targets: vec![org("gjovik"), org("lillehammer"), org("innlandet-fk")],
                deadline: Some(t0 + jiff::SignedDuration::from_hours(72)),
                remind_every: Duration::from_secs(60),
            },
            t0,
        )
        .await
        .unwrap();

    // gjovik acknowledges, later remediates; lillehammer's bridge posted it
    // (delivered) and nothing more; innlandet-fk is offline.
    send_status(&bus, "gjovik", status(RemediationState::Acknowledged, None)).await;
    send_status(
        &bus,
        "gjovik",
        status(RemediationState::Remediated, Some("patched 14:05")),
    )
    .await;
    send_status(
        &bus,
        "lillehammer",
        status(RemediationState::Delivered, None),
    )
    .await;
    serve_inbox(&h, &mut sightings, &mut desk, &mut inbox, Some(IDLE))
        .await
        .unwrap();

    // Before the interval: nobody is reminded.
    assert!(
        desk.remind_due(t0 + jiff::SignedDuration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );

    // After it, as if the desk crashed between storing the reminders on
    // the bus and recording them: the store is put back to before, and
    // the desk sends again. Readers must still see each reminder once.
    let store = h.settings.campaign_store();
    let before = state.path().join("before.sqlite");
    drop(desk);
    copy_store(&store, &before);
    let due = t0 + jiff::SignedDuration::from_secs(61);
    let mut desk = campaign_desk(&h).unwrap();
    let sent = desk.remind_due(due).await.unwrap();
    let mut orgs: Vec<_> = sent.iter().map(|(_, o, n)| (o.to_string(), *n)).collect();
    orgs.sort();
    assert_eq!(
        orgs,
        [("innlandet-fk".into(), 1), ("lillehammer".to_string(), 1)]
    );
    drop(desk);
    copy_store(&before, &store);
    let mut desk = campaign_desk(&h).unwrap();
    assert_eq!(
        desk.remind_due(due).await.unwrap().len(),
        2,
        "redone after the crash"
    );
    // ... and once recorded, a restarted desk does not send them again.
    drop(desk);
    let mut desk = campaign_desk(&h).unwrap();
    assert!(desk.remind_due(due).await.unwrap().is_empty());

    // The CSIRT's picture.
    let p = varde_campaign::Picture::of(&desk.store, &c, Timestamp::now()).unwrap();
    let labels: Vec<(String, String)> = p
        .rows
        .iter()
        .map(|r| (r.org.to_string(), r.label()))
        .collect();
    assert_eq!(
        labels,
        [
            ("gjovik".to_string(), "remediated".to_string()),
            ("innlandet-fk".into(), "pending+reminded".into()),
            ("lillehammer".into(), "delivered+reminded".into()),
        ]
    );
    assert_eq!(p.rows[0].note.as_deref(), Some("patched 14:05"));
    assert_eq!(
        p.rows[0].standing,
        Standing::Answered(RemediationState::Remediated)
    );
    assert!(p.escalation.is_empty());
    // Past the deadline the escalation list names who is not done.
    let late =
        varde_campaign::Picture::of(&desk.store, &c, t0 + jiff::SignedDuration::from_hours(73))
            .unwrap();
    let late: Vec<&str> = late.escalation.iter().map(|o| o.as_str()).collect();
    assert_eq!(late, ["innlandet-fk", "lillehammer"]);
    let csv = p.to_csv().unwrap();
    assert!(csv.contains("gjovik,remediated,0,"), "{csv}");

    // Each member's view: its own campaign messages, once each, and no
    // status of anyone (the innlandet-fk reader comes back online last).
    for (who, want) in [
        ("gjovik", vec![CampaignAction::Opened]),
        (
            "lillehammer",
            vec![CampaignAction::Opened, CampaignAction::Reminder { n: 1 }],
        ),
        (
            "innlandet-fk",
            vec![CampaignAction::Opened, CampaignAction::Reminder { n: 1 }],
        ),
    ] {
        let mut member = bus.inbox(bus.identity(who), who).await.unwrap();
        let got = drain(&mut member, IDLE).await.unwrap();
        assert!(
            got.iter().all(|d| d.opened.header.kind != Kind::Status),
            "{who} read a status"
        );
        let cs = campaigns_in(&got);
        assert_eq!(
            cs.iter().map(|c| c.action.clone()).collect::<Vec<_>>(),
            want,
            "{who}"
        );
        assert!(
            cs.iter()
                .all(|c| c.campaign == p.campaign.id && c.about == ABOUT)
        );
        for d in &got {
            assert_eq!(
                d.opened.header.audience.orgs,
                [org(who)],
                "sealed to {who} alone"
            );
        }
    }
    // Statuses are stored only in the CSIRT's own stream.
    let usage = varde_bus::usage::usage(&bus.js).await.unwrap();
    for u in &usage {
        for stream in u.streams.keys() {
            if u.org != "kcsirt" {
                assert_eq!(stream, "VARDE_O_kcsirt", "{usage:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_member_can_send_a_status_only_to_the_csirt_and_only_as_itself() {
    let bus = BusFixture::start().await.unwrap();
    let dir = bus.handle.current();
    let gj = bus.identity("gjovik");
    let st = status(RemediationState::Affected, None);

    // Anywhere but the CSIRT alone, AMBER+STRICT: refused when sealing.
    for (label, audience) in [
        (Tlp::AmberStrict, Audience::orgs([org("lillehammer")])),
        (Tlp::Amber, Audience::orgs([org("kcsirt")])),
        (
            Tlp::AmberStrict,
            Audience::orgs([org("kcsirt"), org("lillehammer")]),
        ),
        (Tlp::Green, Audience::community()),
    ] {
        let e = seal::seal(&gj, &dir, Draft::new(&st, label, audience)).unwrap_err();
        assert!(matches!(e, SealError::KindRule(_)), "{e}");
    }
    // A member sending campaign messages: refused when sealing.
    let fake = Payload::Campaign(Campaign {
        campaign: uuid::Uuid::now_v7(),
        about: ABOUT.into(),
        title: "Advisory withdrawn, ignore it".into(),
        action: CampaignAction::Closed,
        deadline: None,
        your_status: None,
    });
    let e = seal::seal(
        &gj,
        &dir,
        Draft::new(
            &fake,
            Tlp::AmberStrict,
            Audience::orgs([org("lillehammer")]),
        ),
    )
    .unwrap_err();
    assert!(matches!(e, SealError::KindRule(_)), "{e}");

    // Sealed by hand past those checks and published: every reader refuses
    // both on the verified header, before decrypting (reason `kind_rule`).
    let mut lh = bus
        .inbox(bus.identity("lillehammer"), "lillehammer")
        .await
        .unwrap();
    for kind in [Kind::Status, Kind::Campaign] {
        let h = Header {
            v: 1,
            id: uuid::Uuid::now_v7(),
            kind,
            label: Tlp::AmberStrict,
            sender: varde_schemas::header::Sender {
                org: org("gjovik"),
                key: gj.key_id,
            },
            audience: Audience::orgs([org("lillehammer")]),
            created: Timestamp::now(),
            expires: None,
        };
        let bytes = seal::assemble_unchecked(&gj, &h, &[], b"x", true);
        let subject = varde_bus::subject::org(&org("gjovik"), &org("lillehammer"), kind);
        bus.js.publish(subject, bytes).await.unwrap().await.unwrap();
    }
    let got = drain(&mut lh, IDLE).await.unwrap();
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(lh.stats().refused_by_reason().get("kind_rule"), Some(&2));

    // A status names no org: it counts for its verified sender, whatever
    // its `by` claims.
    let state = tempfile::tempdir().unwrap();
    let (h, mut inbox, mut sightings, mut desk) = csirt(&bus, state.path()).await;
    let c = desk
        .open(
            OpenSpec {
                about: ABOUT.into(),
                title: "t".into(),
                targets: vec![org("gjovik"), org("lillehammer")],
                deadline: None,
                remind_every: Duration::from_secs(3600),
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    let claim = Payload::Status(Status {
        about: ABOUT.into(),
        state: RemediationState::Remediated,
        note: Some("lillehammer is patched".into()),
        by: Some(Person {
            org: Some(org("lillehammer")),
            display_name: Some("Lillehammer IT".into()),
            ..Default::default()
        }),
    });
    send_status(&bus, "gjovik", claim).await;
    serve_inbox(&h, &mut sightings, &mut desk, &mut inbox, Some(IDLE))
        .await
        .unwrap();
    let p = varde_campaign::Picture::of(&desk.store, &c, Timestamp::now()).unwrap();
    let got: Vec<(&str, Standing)> = p
        .rows
        .iter()
        .map(|r| (r.org.as_str(), r.standing))
        .collect();
    assert_eq!(
        got,
        [
            ("gjovik", Standing::Answered(RemediationState::Remediated)),
            ("lillehammer", Standing::Pending),
        ]
    );
}

/// The commands as the CSIRT and a member use them: `varde campaign open`,
/// `varde status` from gjovik, the hub records it, `varde campaign show`
/// (table and CSV) and `close`.
#[tokio::test]
async fn cli_opens_a_campaign_takes_a_status_and_shows_the_picture() {
    let bus = BusFixture::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = bus.write_config(dir.path(), "kcsirt").unwrap();
    let gj = bus.write_config(dir.path(), "gjovik").unwrap();

    let out = varde_tests::varde_ok(
        &kc,
        &[
            "campaign",
            "open",
            "--about",
            ABOUT,
            "--title",
            "Patch NetScaler",
            "--org",
            "gjovik",
            "--org",
            "lillehammer",
            "--deadline",
            "3d",
            "--remind-every",
            "1h",
        ],
    )
    .unwrap();
    assert!(out.contains("opened for 2 org(s)"), "{out}");
    let out = varde_tests::varde_ok(
        &gj,
        &[
            "status",
            ABOUT,
            "in-progress",
            "patching tonight",
            "--by",
            "Kari",
        ],
    )
    .unwrap();
    assert!(out.contains("status in_progress sent to kcsirt"), "{out}");

    // The CSIRT's hub (its state dir is the one `campaign open` used).
    let (h, mut inbox, mut sightings, mut desk) =
        csirt(&bus, &dir.path().join("state-kcsirt")).await;
    serve_inbox(&h, &mut sightings, &mut desk, &mut inbox, Some(IDLE))
        .await
        .unwrap();
    drop(desk);

    let show = varde_tests::varde_ok(&kc, &["campaign", "show", ABOUT]).unwrap();
    let line = |org: &str| {
        show.lines()
            .find(|l| l.starts_with(org))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("gjovik").contains("in_progress"), "{show}");
    assert!(line("gjovik").contains("Kari: patching tonight"), "{show}");
    assert!(line("lillehammer").contains("pending"), "{show}");
    let csv = varde_tests::varde_ok(&kc, &["campaign", "show", ABOUT, "--csv"]).unwrap();
    assert!(csv.starts_with("org,status,reminders,"), "{csv}");
    assert!(csv.contains("\ngjovik,in_progress,0,"), "{csv}");
    let list = varde_tests::varde_ok(&kc, &["campaign", "list"]).unwrap();
    assert!(
        list.contains("in_progress 1") && list.contains("pending 1"),
        "{list}"
    );

    // A state that is not one is refused with the list of states.
    let bad = std::process::Command::new(varde_tests::workspace_bin("varde").unwrap())
        .args(["-c", &gj.display().to_string(), "status", ABOUT, "patched"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("remediated"), "{err}");
    // A note over the bound is refused before anything is sent.
    let long = "x".repeat(varde_schemas::payload::MAX_NOTE + 1);
    let bad = std::process::Command::new(varde_tests::workspace_bin("varde").unwrap())
        .args([
            "-c",
            &gj.display().to_string(),
            "status",
            ABOUT,
            "affected",
            &long,
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("at most 2000 bytes"), "{err}");

    let out = varde_tests::varde_ok(&kc, &["campaign", "close", ABOUT]).unwrap();
    assert!(out.contains("closed"), "{out}");
    let list = varde_tests::varde_ok(&kc, &["campaign", "list"]).unwrap();
    assert!(list.contains("no campaigns"), "{list}");
    // The targets heard of the opening and the closing, each alone.
    let mut lh = bus
        .inbox(bus.identity("lillehammer"), "lillehammer")
        .await
        .unwrap();
    let got = campaigns_in(&drain(&mut lh, IDLE).await.unwrap());
    let actions: Vec<CampaignAction> = got.into_iter().map(|c| c.action).collect();
    assert_eq!(actions, [CampaignAction::Opened, CampaignAction::Closed]);
    drop(lh);

    // `varde tail --durable` at lillehammer (the same durable, read to the
    // end above) shows the CSIRT's advisory and tells the CSIRT, alone, that
    // it was delivered, as a bridge does when it posts it.
    let advisory = varde_tests::csirt::advisory(ABOUT, "Patch NetScaler");
    bus.publish(
        &bus.identity("kcsirt"),
        Draft::new(&advisory, Tlp::Amber, Audience::orgs([org("lillehammer")])),
    )
    .await
    .unwrap();
    let lh_cfg = bus.write_config(dir.path(), "lillehammer").unwrap();
    let shown = varde_tests::varde_ok(&lh_cfg, &["tail", "--durable", "--json"]).unwrap();
    assert!(shown.contains(ABOUT), "{shown}");
    let mut desk = campaign_desk(&h).unwrap();
    serve_inbox(&h, &mut sightings, &mut desk, &mut inbox, Some(IDLE))
        .await
        .unwrap();
    let states: Vec<RemediationState> = desk
        .store
        .statuses(&org("lillehammer"), ABOUT)
        .unwrap()
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, [RemediationState::Delivered]);
    // gjovik's tail shows no advisory and sends nothing.
    let gj_shown = varde_tests::varde_ok(&gj, &["tail", "--durable", "--json"]).unwrap();
    assert!(!gj_shown.contains("\"advisory\""), "{gj_shown}");
    serve_inbox(&h, &mut sightings, &mut desk, &mut inbox, Some(IDLE))
        .await
        .unwrap();
    assert!(
        desk.store
            .statuses(&org("gjovik"), ABOUT)
            .unwrap()
            .iter()
            .all(|s| s.state != RemediationState::Delivered)
    );
}
