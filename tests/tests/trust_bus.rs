//! A compromised member on the bus (docs/THREAT-MODEL.md): it holds its own
//! keys and NATS user and speaks in its own name, and nothing it sends may
//! silence, replay or stall another member's messages. Each test is named
//! for the attack, against a real nats-server.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use varde_bus::inbox::{Delivery, Inbox, InboxConfig, InboxStats};
use varde_bus::keys::Identity;
use varde_bus::seal::{self, Draft, Opener};
use varde_bus::transport::{self, TransportError};
use varde_schemas::payload::{Chat, ChatAction, Person};
use varde_schemas::{Audience, OrgId, Payload, Tlp};
use varde_tests::{BusFixture, drain};

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

fn chat(text: &str) -> Payload {
    Payload::Chat(Chat {
        conversation: "community".into(),
        action: ChatAction::Message,
        author: Person {
            matrix_user: None,
            display_name: Some("Kari".into()),
            org: None,
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

fn to_gjovik(text: &str) -> Draft {
    Draft::new(&chat(text), Tlp::Amber, Audience::orgs([org("gjovik")]))
}

fn text(d: &Delivery) -> String {
    match &d.opened.payload {
        Payload::Chat(c) => c.text.clone(),
        other => panic!("not a chat: {other:?}"),
    }
}

/// Publishes raw bytes with a chosen `Nats-Msg-Id`, as a hostile member's
/// own client would; returns whether the broker called it a duplicate.
async fn raw(bus: &BusFixture, subject: &str, msg_id: &str, bytes: Vec<u8>) -> bool {
    let msg = PublishMessage::build()
        .payload(bytes.into())
        .message_id(msg_id);
    bus.js
        .send_publish(subject.to_string(), msg)
        .await
        .unwrap()
        .await
        .unwrap()
        .duplicate
}

async fn inbox(bus: &BusFixture, opener: Arc<Opener>, durable: &str) -> Inbox {
    let filters =
        varde_bus::subject::readable_filters(&bus.handle.current(), &opener.identity().org);
    let cfg = InboxConfig::durable(durable, filters);
    Inbox::open(&bus.js, &cfg, opener, bus.handle.clone())
        .await
        .unwrap()
}

fn persistent(who: Arc<Identity>, path: &Path) -> Arc<Opener> {
    Arc::new(Opener::persistent(who, path).unwrap())
}

const QUIET: Duration = Duration::from_secs(2);

/// lillehammer learns (or guesses) the id kcsirt will use and sends its
/// own validly signed envelope with that id, before and after kcsirt's.
/// Replay memory is keyed by (signing key, id) and dedup ids carry the
/// sender org, so kcsirt's envelope is stored and opens.
#[tokio::test]
async fn replay_of_another_orgs_id_does_not_squat() {
    let bus = BusFixture::start().await.unwrap();
    let (kc, lh) = (bus.identity("kcsirt"), bus.identity("lillehammer"));
    let dir = bus.handle.current();
    let genuine = seal::seal(&kc, &dir, to_gjovik("from kcsirt")).unwrap();
    let id = genuine.id();

    bus.publish(&lh, to_gjovik("squat before").id(id))
        .await
        .unwrap();
    let stored = transport::publish(&bus.js, &genuine).await.unwrap();
    assert!(!stored[0].duplicate);
    // After: the same id again from lillehammer, under a fresh dedup id.
    let after = seal::seal(&lh, &dir, to_gjovik("squat after").id(id)).unwrap();
    raw(
        &bus,
        &after.copies[0].subject,
        &format!("lillehammer.{}", uuid::Uuid::now_v7()),
        after.copies[0].bytes.to_vec(),
    )
    .await;

    let mut gjovik = bus.inbox(bus.identity("gjovik"), "gjovik").await.unwrap();
    let got = drain(&mut gjovik, QUIET).await.unwrap();
    let seen: Vec<(OrgId, String)> = got
        .iter()
        .map(|d| (d.opened.header.sender.org.clone(), text(d)))
        .collect();
    assert_eq!(
        seen,
        [
            (org("lillehammer"), "squat before".to_string()),
            (org("kcsirt"), "from kcsirt".to_string()),
        ]
    );
    assert!(got.iter().all(|d| d.opened.header.id == id));
    // lillehammer's second use of the id is its own replay.
    assert_eq!(InboxStats::get(&gjovik.stats().duplicates), 1);
}

/// A member replays an envelope the reader already handled, after the
/// reader restarted. With a replay file the restarted reader still knows
/// it; a reader without one would take it again.
#[tokio::test]
async fn replay_memory_survives_restart() {
    let bus = BusFixture::start().await.unwrap();
    let kc = bus.identity("kcsirt");
    let gj = bus.identity("gjovik");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("gjovik.replay");

    let original = bus.publish(&kc, to_gjovik("once")).await.unwrap();
    {
        let mut with_file = inbox(&bus, persistent(gj.clone(), &file), "with-file").await;
        let mut in_memory = inbox(&bus, Arc::new(Opener::new(gj.clone())), "in-memory").await;
        assert_eq!(drain(&mut with_file, QUIET).await.unwrap().len(), 1);
        assert_eq!(drain(&mut in_memory, QUIET).await.unwrap().len(), 1);
    }
    // The same bytes again on the same subject, under a new dedup id.
    raw(
        &bus,
        &original.copies[0].subject,
        &format!("kcsirt.{}.replay", original.id()),
        original.copies[0].bytes.to_vec(),
    )
    .await;

    // Restarted: new openers, same consumers.
    let mut with_file = inbox(&bus, persistent(gj.clone(), &file), "with-file").await;
    assert!(drain(&mut with_file, QUIET).await.unwrap().is_empty());
    assert_eq!(InboxStats::get(&with_file.stats().duplicates), 1);
    let mut in_memory = inbox(&bus, Arc::new(Opener::new(gj.clone())), "in-memory").await;
    let again = drain(&mut in_memory, QUIET).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "without a replay file a restart forgets (the hole the file closes)"
    );
}

/// A member re-sends an envelope created long ago (its own, or one it kept),
/// after every reader's replay memory has moved on: refused as stale and
/// terminated, and the next message still arrives.
#[tokio::test]
async fn stale_envelope_is_refused() {
    let bus = BusFixture::start().await.unwrap();
    let lh = bus.identity("lillehammer");
    let long_ago = Timestamp::now() - SignedDuration::from_hours(24 * 8);
    let old = seal::seal_at(&lh, &bus.handle.current(), to_gjovik("old news"), long_ago).unwrap();
    transport::publish(&bus.js, &old).await.unwrap();
    bus.publish(&lh, to_gjovik("fresh")).await.unwrap();

    let mut gjovik = bus.inbox(bus.identity("gjovik"), "gjovik").await.unwrap();
    let got = drain(&mut gjovik, QUIET).await.unwrap();
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["fresh"]);
    let stats = gjovik.stats();
    assert_eq!(stats.refused_by_reason().get("stale"), Some(&1));
    assert_eq!(InboxStats::get(&stats.terminated), 1);
}

/// lillehammer publishes junk under the dedup id kcsirt's envelope would
/// have had if dedup ids were bare envelope ids, and under the one it
/// really has. The first no longer collides; the second makes the broker
/// drop kcsirt's envelope, and kcsirt is told so instead of "sent".
#[tokio::test]
async fn msg_id_squatting_is_reported() {
    let bus = BusFixture::start().await.unwrap();
    let kc = bus.identity("kcsirt");
    let dir = bus.handle.current();
    let attacker_subject = "varde.v1.lillehammer.org.gjovik.chat";

    let first = seal::seal(&kc, &dir, to_gjovik("not squatted")).unwrap();
    raw(
        &bus,
        attacker_subject,
        &first.id().to_string(),
        b"junk".to_vec(),
    )
    .await;
    let stored = transport::publish(&bus.js, &first).await.unwrap();
    assert!(!stored[0].duplicate);

    let second = seal::seal(&kc, &dir, to_gjovik("squatted")).unwrap();
    raw(&bus, attacker_subject, &second.msg_id(0), b"junk".to_vec()).await;
    let err = transport::publish(&bus.js, &second).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::DuplicateId { id, msg_id, .. }
            if *id == second.id() && *msg_id == second.msg_id(0)),
        "{err}"
    );
    assert!(err.to_string().contains("already taken"), "{err}");

    // Our own retry after a lost PubAck still counts a duplicate as stored.
    let third = bus.publish(&kc, to_gjovik("retried")).await.unwrap();
    let again = transport::confirm(transport::resend(&bus.js, &third).await.unwrap())
        .await
        .unwrap();
    assert!(again[0].duplicate);

    let mut gjovik = bus.inbox(bus.identity("gjovik"), "gjovik").await.unwrap();
    let got = drain(&mut gjovik, QUIET).await.unwrap();
    assert_eq!(
        got.iter().map(text).collect::<Vec<_>>(),
        ["not squatted", "retried"]
    );
}

/// Replaces the wrap for `victim` in the envelope `bytes` and re-signs it,
/// in its own format, as `signer`, the envelope's real sender: a validly
/// signed envelope with a hostile wrap.
fn with_wrap(
    signer: &Identity,
    bytes: &[u8],
    victim: varde_schemas::KeyId,
    wrap: &[u8],
) -> Vec<u8> {
    let f = varde_bus::envelope::parse(bytes).unwrap();
    let header: varde_schemas::Header = serde_json::from_slice(f.header).unwrap();
    let wraps: Vec<_> = f
        .wraps
        .iter()
        .map(|(k, w)| {
            (
                *k,
                if *k == victim {
                    wrap.to_vec()
                } else {
                    w.to_vec()
                },
            )
        })
        .collect();
    seal::assemble_unchecked_as(f.format, signer, &header, &wraps, f.body, true).to_vec()
}

/// lillehammer puts 9,000 X25519 stanzas in front of gjovik's genuine one
/// in an envelope of the age-file format (`VRD1`, still read; a `VRD2` wrap
/// is 64 bytes and holds one stanza): the age crate would try each (over a
/// minute of CPU per delivery). The wrap is refused before any X25519 and
/// the next message is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stanza_bomb_is_refused_cheaply() {
    let bus = BusFixture::start().await.unwrap();
    let (lh, kc, gj) = (
        bus.identity("lillehammer"),
        bus.identity("kcsirt"),
        bus.identity("gjovik"),
    );
    let draft = to_gjovik("bomb");
    let payload = draft.payload.clone();
    let sealed = seal::seal(&lh, &bus.handle.current(), draft).unwrap();
    let v1 = varde_testkit::legacy::v1(
        &lh,
        &bus.handle.current(),
        &sealed.copies[0].bytes,
        &payload,
    )
    .unwrap();
    let f = varde_bus::envelope::parse(&v1).unwrap();
    let genuine = f.wraps.iter().find(|(k, _)| *k == gj.key_id).unwrap().1;
    let intro = b"age-encryption.org/v1\n";
    assert!(genuine.starts_with(intro));
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut bomb = intro.to_vec();
    for i in 0u32..9_000 {
        let mut share = [0u8; 32];
        share[..4].copy_from_slice(&i.to_be_bytes());
        let body = [0x5au8; 32];
        bomb.extend_from_slice(
            format!("-> X25519 {}\n{}\n", b64.encode(share), b64.encode(body)).as_bytes(),
        );
    }
    bomb.extend_from_slice(&genuine[intro.len()..]);
    let forged = with_wrap(&lh, &v1, gj.key_id, &bomb);
    let size = forged.len();

    // The cost of refusing it, in CPU time of this thread (a figure, not an
    // assertion): verify, then the wrap check that runs before any X25519.
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let dir = bus.handle.current();
    let before = cpu();
    let v = seal::verify(
        &dir,
        Some(&sealed.copies[0].subject),
        &forged,
        Timestamp::now(),
    )
    .unwrap();
    let refused = seal::decrypt(&gj, v, size);
    let spent = cpu() - before;
    assert!(
        matches!(refused, Err(seal::OpenError::WrapRefused { .. })),
        "{refused:?}"
    );
    println!("refusing the {size}-byte 9,000-stanza envelope took {spent:?} of CPU");
    raw(&bus, &sealed.copies[0].subject, &sealed.msg_id(0), forged).await;
    bus.publish(&kc, to_gjovik("after the bomb")).await.unwrap();

    let started = std::time::Instant::now();
    let mut gjovik = bus.inbox(gj, "gjovik").await.unwrap();
    let got = drain(&mut gjovik, QUIET).await.unwrap();
    println!(
        "a {size}-byte envelope with a 9,000-stanza wrap and the next message took {:?} (including {QUIET:?} of quiet)",
        started.elapsed()
    );
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["after the bomb"]);
    let stats = gjovik.stats();
    assert_eq!(stats.refused_by_reason().get("wrap_refused"), Some(&1));
    assert_eq!(InboxStats::get(&stats.terminated), 1);
}

/// A compromised member fills the shared store (all members share one NATS
/// account, so nats-server bounds only the total): the operator finds it
/// as the top sender, with the streams it filled, and purges exactly its
/// messages; every other org's stay and are still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_filling_the_store_is_found_and_only_its_messages_are_purged() {
    let bus = BusFixture::start().await.unwrap();
    let (lh, kc) = (bus.identity("lillehammer"), bus.identity("kcsirt"));
    for i in 0..12 {
        let community = Draft::new(
            &chat(&format!("flood {i}")),
            Tlp::Green,
            Audience::community(),
        );
        bus.publish(&lh, community).await.unwrap();
        bus.publish(&lh, to_gjovik(&format!("flood {i}")))
            .await
            .unwrap();
    }
    bus.publish(&kc, to_gjovik("genuine")).await.unwrap();

    let usage = varde_bus::usage::usage(&bus.js).await.unwrap();
    assert_eq!(usage[0].org, "lillehammer", "{usage:?}");
    assert_eq!(usage[0].messages, 24);
    assert_eq!(usage[0].streams["VARDE_COMMUNITY"], 12);
    assert_eq!(usage[0].streams["VARDE_O_gjovik"], 12);
    assert_eq!(usage[1].org, "kcsirt");
    assert_eq!(usage[1].messages, 1);

    let purged = varde_bus::usage::purge_sender(&bus.js, &org("lillehammer"))
        .await
        .unwrap();
    assert_eq!(
        purged,
        [
            ("VARDE_COMMUNITY".to_string(), 12),
            ("VARDE_O_gjovik".to_string(), 12)
        ]
    );
    let usage = varde_bus::usage::usage(&bus.js).await.unwrap();
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0].org, "kcsirt");
    let mut gjovik = bus.inbox(bus.identity("gjovik"), "gjovik").await.unwrap();
    let got = drain(&mut gjovik, QUIET).await.unwrap();
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["genuine"]);
}
