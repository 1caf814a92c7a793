//! The bus through a real nats-server: every kind under every label reaches
//! exactly its audience; bad envelopes are terminated and counted while the
//! consumer keeps going; the directory travels through the KV bucket.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use jiff::{SignedDuration, Timestamp};
use varde_bus::inbox::InboxStats;
use varde_bus::seal::{self, Draft};
use varde_bus::transport;
use varde_schemas::directory::KeyRole;
use varde_schemas::payload::*;
use varde_schemas::{Audience, Header, Kind, OrgId, Payload, Tlp};
use varde_tests::{BusFixture, drain};

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

fn person(name: &str) -> Person {
    Person {
        matrix_user: None,
        display_name: Some(name.into()),
        org: Some(org("kcsirt")),
    }
}

/// The kinds whose sender picks label and audience (status and campaign
/// have theirs fixed by `kind_rules`: tests/tests/campaign.rs).
fn free_kinds() -> impl Iterator<Item = Kind> {
    Kind::ALL.into_iter().filter(|k| !k.has_fixed_audience())
}

fn payload(kind: Kind) -> Payload {
    let now = Timestamp::now();
    match kind {
        Kind::Indicator => Payload::Indicator(IndicatorBatch {
            source: Some("test".into()),
            description: None,
            indicators: vec![Indicator::new(IndicatorType::Ipv4, "198.51.100.7").unwrap()],
        }),
        Kind::Advisory => Payload::Advisory(Advisory {
            advisory_id: "KCSIRT-2026-0100".into(),
            revision: 1,
            title: "t".into(),
            summary: "s".into(),
            severity: Severity::High,
            cves: vec![],
            affected: vec![],
            actions: vec![],
            references: vec![],
            sectors: vec![],
            published: now,
            changes: None,
            matched_assets: vec![],
        }),
        Kind::Alert => Payload::Alert(Alert {
            title: "a".into(),
            body: "b".into(),
            severity: Severity::High,
            urgent: false,
            references: vec![],
            indicators: vec![],
            advisory_id: None,
        }),
        Kind::Sighting => Payload::Sighting(Sighting {
            kind: IndicatorType::Domain,
            value: "evil.example".into(),
            seen_at: now,
            note: None,
            reporter: None,
            aggregate: None,
        }),
        Kind::Ack => Payload::Ack(Ack {
            of: uuid::Uuid::now_v7(),
            by: Some(person("Ola")),
            note: None,
        }),
        Kind::Chat => Payload::Chat(Chat {
            conversation: "community".into(),
            action: ChatAction::Message,
            author: person("Kari"),
            text: "hei".into(),
            html: None,
            reply_to: None,
            target: None,
            attachment: None,
            origin_room: None,
            origin_event: None,
        }),
        Kind::Incident => Payload::Incident(Incident {
            incident_id: uuid::Uuid::now_v7(),
            action: IncidentAction::Open,
            title: "x".into(),
            participants: vec![org("gjovik")],
            by: person("Ola"),
            text: None,
        }),
        Kind::Status | Kind::Campaign => {
            unreachable!("fixed label and audience: tests/tests/campaign.rs")
        }
        Kind::Notification => Payload::Notification(Notification {
            indicator: Indicator::new(IndicatorType::Ipv4, "10.20.1.1").unwrap(),
            matched: Match {
                kind: MatchKind::Cidr,
                value: "10.20.0.0/16".into(),
            },
            source: "test".into(),
            first_seen: None,
            last_seen: None,
            message: "m".into(),
            advisory_id: None,
        }),
    }
}

#[tokio::test]
async fn every_kind_and_label_reaches_exactly_its_audience() {
    let mut world = varde_testkit::synthetic::Synthetic::demo();
    let kari = world.add_key("gjovik", KeyRole::Person, "Kari Nordmann");
    let bus = BusFixture::with(world).await.unwrap();
    let kc = bus.identity("kcsirt");

    let audience = |t: Tlp| match t {
        Tlp::Clear | Tlp::Green => Audience::community(),
        Tlp::Amber => Audience::orgs([org("gjovik"), org("lillehammer")]),
        Tlp::AmberStrict => Audience::orgs([org("gjovik")]),
        Tlp::Red => Audience::people([kari.key_id]),
    };
    let mut sent = 0;
    for kind in free_kinds() {
        for label in Tlp::ALL {
            bus.publish(&kc, Draft::new(&payload(kind), label, audience(label)))
                .await
                .unwrap();
            sent += 1;
        }
    }
    assert_eq!(sent, 40);

    let readers: Vec<(&str, Arc<varde_bus::keys::Identity>, Vec<Tlp>)> = vec![
        (
            "gjovik",
            bus.identity("gjovik"),
            vec![Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict],
        ),
        (
            "lillehammer",
            bus.identity("lillehammer"),
            vec![Tlp::Clear, Tlp::Green, Tlp::Amber],
        ),
        (
            "innlandet-fk",
            bus.identity("innlandet-fk"),
            vec![Tlp::Clear, Tlp::Green],
        ),
        (
            "kari",
            kari.clone(),
            vec![
                Tlp::Clear,
                Tlp::Green,
                Tlp::Amber,
                Tlp::AmberStrict,
                Tlp::Red,
            ],
        ),
    ];
    for (name, who, labels) in readers {
        let mut inbox = bus.inbox(who, &format!("t-{name}")).await.unwrap();
        let got = drain(&mut inbox, Duration::from_secs(2)).await.unwrap();
        let seen: BTreeSet<(Kind, Tlp)> = got
            .iter()
            .map(|d| (d.opened.header.kind, d.opened.header.label))
            .collect();
        let want: BTreeSet<(Kind, Tlp)> = free_kinds()
            .flat_map(|k| labels.iter().map(move |l| (k, *l)))
            .collect();
        assert_eq!(seen, want, "{name} read the wrong set");
        assert_eq!(got.len(), want.len(), "{name}: each message exactly once");
        for d in &got {
            assert_eq!(d.opened.payload.kind(), d.opened.header.kind);
        }
        // gjovik's org key receives Kari's RED messages by subject but is
        // not a recipient: skipped and counted, not shown, not an error.
        let stats = inbox.stats();
        if name == "gjovik" {
            assert_eq!(InboxStats::get(&stats.not_for_us), 8);
        }
        assert_eq!(InboxStats::get(&stats.terminated), 0, "{name}");
    }
}

/// Publishes raw bytes on a subject, as a hostile or broken sender would.
async fn raw(bus: &BusFixture, subject: &str, bytes: Vec<u8>) {
    let msg = PublishMessage::build()
        .payload(bytes.into())
        .message_id(uuid::Uuid::now_v7().to_string());
    bus.js
        .send_publish(subject.to_string(), msg)
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_envelopes_are_terminated_counted_and_do_not_stop_the_consumer() {
    let mut world = varde_testkit::synthetic::Synthetic::demo();
    let revoked = world.add_key("kcsirt", KeyRole::Device, "old laptop");
    let expired = world.add_key("kcsirt", KeyRole::Device, "old server");
    let past = Timestamp::now() - SignedDuration::from_hours(1);
    for k in &mut world.org_mut("kcsirt").unwrap().keys {
        if k.id == revoked.key_id {
            k.revoked = Some(past);
        }
        if k.id == expired.key_id {
            k.not_after = Some(past);
        }
    }
    let bus = BusFixture::with(world).await.unwrap();
    let kc = bus.identity("kcsirt");
    let dir = bus.handle.current();
    let to_gjovik = || Audience::orgs([org("gjovik")]);
    let subj = "varde.v1.kcsirt.org.gjovik.chat";
    let good = |n: &str| {
        let mut p = payload(Kind::Chat);
        if let Payload::Chat(c) = &mut p {
            c.text = n.into();
        }
        Draft::new(&p, Tlp::Amber, to_gjovik())
    };

    let mut expect_reasons: Vec<&str> = Vec::new();
    bus.publish(&kc, good("first")).await.unwrap();

    let template = seal::seal(&kc, &dir, good("template")).unwrap();
    let b = template.copies[0].bytes.to_vec();
    let f = varde_bus::envelope::parse(&b).unwrap();
    let header_at = 4 + 1 + 8 + 4;
    let keys_at = header_at + f.header.len() + 4;
    let body_at = b.len() - 64 - f.body.len();
    let sig_at = b.len() - 64;

    // truncated
    raw(&bus, subj, b[..b.len() / 2].to_vec()).await;
    expect_reasons.push("malformed");
    // flipped byte in header / key list / ciphertext / signature
    for at in [header_at + 5, keys_at + 30, body_at + 10, sig_at + 3] {
        let mut x = b.clone();
        x[at] ^= 0x40;
        raw(&bus, subj, x).await;
        expect_reasons.push("bad_signature");
    }
    // unknown sender
    let stranger = varde_bus::keys::Identity::generate(org("kcsirt"));
    let mut h: Header = serde_json::from_slice(f.header).unwrap();
    h.id = uuid::Uuid::now_v7();
    h.sender.key = stranger.key_id;
    raw(
        &bus,
        subj,
        seal::assemble_unchecked(&stranger, &h, &[], b"x", true).to_vec(),
    )
    .await;
    expect_reasons.push("unknown_sender");
    // revoked and expired keys, otherwise valid envelopes
    for (who, reason) in [(&revoked, "revoked_key"), (&expired, "expired_key")] {
        let mut h: Header = serde_json::from_slice(f.header).unwrap();
        h.id = uuid::Uuid::now_v7();
        h.sender.key = who.key_id;
        raw(
            &bus,
            subj,
            seal::assemble_unchecked(who, &h, &[], b"x", true).to_vec(),
        )
        .await;
        expect_reasons.push(reason);
    }
    // wrong subject sender token: kcsirt's envelope under lillehammer's name
    // (only possible here because this test has no broker permissions)
    let stolen = seal::seal(&kc, &dir, good("spoof")).unwrap();
    raw(
        &bus,
        "varde.v1.lillehammer.org.gjovik.chat",
        stolen.copies[0].bytes.to_vec(),
    )
    .await;
    expect_reasons.push("subject_mismatch");
    // duplicate id: the same envelope again, past the broker's dedup window
    let dup = seal::seal(&kc, &dir, good("dup")).unwrap();
    raw(&bus, subj, dup.copies[0].bytes.to_vec()).await;
    raw(&bus, subj, dup.copies[0].bytes.to_vec()).await;
    // label/audience mismatch, validly signed
    let mut h: Header = serde_json::from_slice(f.header).unwrap();
    h.id = uuid::Uuid::now_v7();
    h.label = Tlp::Red;
    raw(
        &bus,
        subj,
        seal::assemble_unchecked(&kc, &h, &[], b"x", true).to_vec(),
    )
    .await;
    expect_reasons.push("label_audience");
    // > 2,000 recipients
    let mut many = Vec::new();
    let fake: Vec<_> = (0..2001u32)
        .map(|i| {
            let mut k = [0u8; 8];
            k[..4].copy_from_slice(&i.to_be_bytes());
            (varde_schemas::KeyId(k), vec![1u8; 4])
        })
        .collect();
    varde_bus::envelope::write_signed(&mut many, true, kc.key_id, f.header, &fake, b"");
    many.extend_from_slice(&[0u8; 64]);
    raw(&bus, subj, many).await;
    expect_reasons.push("too_many_recipients");
    // invalid UTF-8 and deeply nested JSON inside validly sealed payloads
    for body in [
        b"{\"text\":\"\xff\xfe\"}".to_vec(),
        format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)).into_bytes(),
    ] {
        bus.publish(&kc, Draft::raw(Kind::Chat, Tlp::Amber, to_gjovik(), body))
            .await
            .unwrap();
        expect_reasons.push("payload");
    }
    // oversize: the broker itself refuses it (stream max_message_size)
    let big = vec![0u8; (1 << 20) + 100];
    let refused = bus
        .js
        .send_publish(
            subj.to_string(),
            PublishMessage::build().payload(big.into()),
        )
        .await;
    let refused = match refused {
        Ok(ack) => ack.await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "the broker must refuse an envelope over 1 MiB");

    bus.publish(&kc, good("last")).await.unwrap();

    // The unknown sender is retried (our directory may lag) a few times
    // before it is terminated; short delays keep the test quick.
    let mut inbox = bus
        .inbox_with(bus.identity("gjovik"), "bad-input", |c| {
            c.unknown_sender_attempts = 3;
            c.unknown_sender_delay = Duration::from_millis(200);
        })
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let stats = inbox.stats();
    while tokio::time::Instant::now() < deadline {
        got.extend(drain(&mut inbox, Duration::from_secs(2)).await.unwrap());
        if InboxStats::get(&stats.terminated) as usize >= expect_reasons.len() {
            break;
        }
    }
    let texts: Vec<String> = got
        .iter()
        .filter_map(|d| match &d.opened.payload {
            Payload::Chat(c) => Some(c.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["first", "dup", "last"],
        "only the good ones, each once, in order"
    );
    assert_eq!(InboxStats::get(&stats.duplicates), 1);
    assert_eq!(
        InboxStats::get(&stats.retried),
        2,
        "unknown sender offered 3 times in all"
    );
    let mut want = std::collections::BTreeMap::new();
    for r in &expect_reasons {
        *want.entry(*r).or_insert(0u64) += 1;
    }
    assert_eq!(stats.refused_by_reason(), want);

    // Terminated means gone: nothing waits for redelivery.
    assert!(bus.consumers_idle("gjovik", "bad-input").await.unwrap());
}

#[tokio::test]
async fn directory_updates_through_kv_without_restart_and_bad_ones_are_refused() {
    let mut bus = BusFixture::start().await.unwrap();
    let roots = vec![bus.world.root.verifying_key()];
    // A process that started from version 1 and watches the bucket.
    let watcher = varde_bus::directory::DirectoryHandle::new(
        &bus.world.signed().unwrap(),
        roots.clone(),
        None,
    )
    .unwrap();
    let task = tokio::spawn(varde_bus::directory_kv::watch(
        bus.js.clone(),
        watcher.clone(),
    ));
    assert_eq!(watcher.current().version(), 1);

    // A new org joins; the CSIRT pushes version 2.
    let newcomer = bus.world.add_org(
        "hamar",
        "Hamar kommune",
        varde_schemas::directory::OrgKind::Kommune,
        &["admin"],
    );
    bus.republish_directory().await.unwrap();
    wait_for(|| watcher.current().version() == 2).await;
    assert!(watcher.current().org("hamar").is_some());

    // A message from the newcomer opens for gjovik under the new directory.
    let sealed = seal::seal(
        &newcomer,
        &watcher.current(),
        Draft::new(&payload(Kind::Chat), Tlp::Green, Audience::community()),
    )
    .unwrap();
    varde_bus::seal::Opener::new(bus.identity("gjovik"))
        .open(
            &watcher.current(),
            &sealed.copies[0].subject,
            &sealed.copies[0].bytes,
        )
        .unwrap();

    let kv = bus
        .js
        .get_key_value(transport::DIRECTORY_BUCKET)
        .await
        .unwrap();
    // Signed by the wrong key: refused by push and ignored by watchers.
    let mut evil = varde_testkit::synthetic::Synthetic::demo();
    evil.dir.version = 99;
    let e = varde_bus::directory_kv::push(&bus.js, &evil.signed().unwrap(), &roots)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("none of which is a pinned root key"),
        "{e}"
    );
    kv.put(transport::DIRECTORY_KEY, evil.signed().unwrap().into())
        .await
        .unwrap();
    // A lower version, properly signed: refused by push and ignored.
    let mut old = bus.world.dir.clone();
    old.version = 1;
    let old_signed = varde_bus::directory::sign(&old, &bus.world.root).unwrap();
    let e = varde_bus::directory_kv::push(&bus.js, &old_signed, &roots)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("older version 1"), "{e}");
    kv.put(transport::DIRECTORY_KEY, old_signed.into())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        watcher.current().version(),
        2,
        "bad directories must not replace the current one"
    );
    assert!(watcher.current().org("hamar").is_some());

    // And a proper version 3 is still adopted after the bad ones.
    bus.world.bump();
    bus.world.bump();
    varde_bus::directory_kv::push(&bus.js, &bus.world.signed().unwrap(), &roots)
        .await
        .unwrap();
    wait_for(|| watcher.current().version() == 4).await;
    task.abort();
}

async fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not reached in 10 s");
}

/// Redeliveries after an ack_wait: a lost ack (the first copy was handled
/// and acked, the broker never heard it, as in a fail-over) is acked as a
/// replay so the consumer drains; a nak or a delivery dropped unanswered
/// comes back out of the inbox to be handled; a copy still in hand is left
/// to its first delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_are_handled_by_what_became_of_the_first_copy() {
    use varde_bus::inbox::{Inbox, InboxConfig};
    use varde_bus::seal::Opener;

    let bus = BusFixture::start().await.unwrap();
    let kc = bus.identity("kcsirt");
    let gjovik = bus.identity("gjovik");
    let filters = varde_bus::subject::readable_filters(&bus.handle.current(), &gjovik.org);
    let mut cfg = InboxConfig::durable("gjovik-redelivery", filters);
    cfg.ack_wait = Duration::from_secs(1);
    let opener = Arc::new(Opener::new(gjovik));
    let mut inbox = Inbox::open(&bus.js, &cfg, opener.clone(), bus.handle.clone())
        .await
        .unwrap();
    let stats = inbox.stats();
    let send = |text: &str| {
        let mut p = payload(Kind::Chat);
        if let Payload::Chat(c) = &mut p {
            c.text = text.into();
        }
        Draft::new(&p, Tlp::Amber, Audience::orgs([org("gjovik")]))
    };

    // A lost ack: settled here, never sent.
    let lost = bus.publish(&kc, send("lost ack")).await.unwrap();
    let d = next_delivery(&mut inbox).await;
    assert_eq!(d.opened.header.id, lost.header.id);
    opener.settle(&d.opened.header.id);
    drop(d);
    // A nak: handed out again.
    let nakked = bus.publish(&kc, send("nak")).await.unwrap();
    let d = next_delivery(&mut inbox).await;
    assert_eq!(d.opened.header.id, nakked.header.id);
    d.nak(Duration::ZERO).await.unwrap();
    let again = next_delivery(&mut inbox).await;
    assert_eq!(again.opened.header.id, nakked.header.id);
    assert!(again.delivered_count > 1);
    again.ack().await.unwrap();
    // Dropped unanswered: handed out again after ack_wait.
    let dropped = bus.publish(&kc, send("dropped")).await.unwrap();
    let d = next_delivery(&mut inbox).await;
    assert_eq!(d.opened.header.id, dropped.header.id);
    drop(d);
    let again = next_delivery(&mut inbox).await;
    assert_eq!(again.opened.header.id, dropped.header.id);
    // Still in hand while its redelivery arrives: left alone, then acked
    // once by the holder.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    again.ack().await.unwrap();

    // The lost-ack copy was acked as a replay; nothing is left.
    let mut drained = false;
    for _ in 0..50 {
        // Keep pulling so redeliveries reach the inbox's refusal path.
        let _ = tokio::time::timeout(Duration::from_millis(200), inbox.next()).await;
        if bus
            .consumers_idle("gjovik", "gjovik-redelivery")
            .await
            .unwrap()
        {
            drained = true;
            break;
        }
    }
    assert!(drained, "every delivery settled on the broker");
    assert!(
        InboxStats::get(&stats.duplicates) >= 1,
        "the lost ack was acked as a replay"
    );
    assert!(!opener.holds(&lost.header.id));
}

async fn next_delivery(inbox: &mut varde_bus::inbox::Inbox) -> varde_bus::inbox::Delivery {
    tokio::time::timeout(Duration::from_secs(10), inbox.next())
        .await
        .expect("a delivery within 10 s")
        .unwrap()
        .unwrap()
}

/// A broker that still has the one stream of before (`VARDE`, every
/// subject) is refused at `init` with a clear error naming what to do, and
/// nothing is created beside it; once it is gone, init makes the scope
/// streams, and each copy of a message lands in its scope's stream.
#[tokio::test]
async fn the_one_stream_of_before_is_refused_and_copies_land_in_their_scope_streams() {
    let nats = varde_tests::NatsServer::start().await.unwrap();
    let client = transport::NatsSettings::with_url(nats.url())
        .connect()
        .await
        .unwrap();
    let js = transport::jetstream(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "VARDE".into(),
        subjects: vec!["varde.v1.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let world = varde_tests::Synthetic::demo();
    let handle = world.handle().unwrap();
    let e = transport::init(
        &js,
        &transport::StreamSettings::default(),
        Some(&handle.current()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, transport::TransportError::LegacyStream { messages: 0 }),
        "{e}"
    );
    assert!(e.to_string().contains("nats stream rm VARDE"), "{e}");
    assert!(js.get_stream("VARDE_COMMUNITY").await.is_err());

    js.delete_stream("VARDE").await.unwrap();
    let report = transport::init(
        &js,
        &transport::StreamSettings::default(),
        Some(&handle.current()),
    )
    .await
    .unwrap();
    assert!(
        report
            .streams
            .created
            .contains(&"VARDE_COMMUNITY".to_string())
    );
    assert!(
        report
            .streams
            .created
            .contains(&"VARDE_O_gjovik".to_string())
    );
    let kcsirt = world.identity("kcsirt");
    let to_two = seal::seal(
        &kcsirt,
        &handle.current(),
        Draft::new(
            &payload(Kind::Advisory),
            Tlp::Amber,
            Audience::orgs([org("gjovik"), org("lillehammer")]),
        ),
    )
    .unwrap();
    let stored = transport::publish(&js, &to_two).await.unwrap();
    assert_eq!(stored.len(), 2);
    for (org, stream) in [
        ("gjovik", "VARDE_O_gjovik"),
        ("lillehammer", "VARDE_O_lillehammer"),
    ] {
        let mut s = js.get_stream(stream).await.unwrap();
        assert_eq!(s.info().await.unwrap().state.messages, 1, "{org}");
    }
    assert_eq!(
        js.get_stream("VARDE_COMMUNITY")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages,
        0
    );
}
