//! `open` against every kind of bad input, without a broker (the same paths
//! through a real nats-server are in tests/tests/bus.rs).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use varde_bus::audience::AudienceError;
use varde_bus::seal::{self, Draft, OpenError, Opener};
use varde_schemas::directory::KeyRole;
use varde_schemas::payload::{Advisory, Alert, Severity};
use varde_schemas::{Audience, GroupId, Header, Kind, OrgId, Payload, Tlp};
use varde_testkit::synthetic::Synthetic;

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

fn alert() -> Payload {
    Payload::Alert(Alert {
        title: "Phishing wave".into(),
        body: "Block idporten-fornyelse.example".into(),
        severity: Severity::High,
        urgent: true,
        references: vec![],
        indicators: vec![],
        advisory_id: None,
    })
}

fn advisory() -> Payload {
    Payload::Advisory(Advisory {
        advisory_id: "KCSIRT-2026-0001".into(),
        revision: 1,
        title: "NetScaler".into(),
        summary: "Patch now".into(),
        severity: Severity::Critical,
        cves: vec!["CVE-2026-12345".into()],
        affected: vec![],
        actions: vec![],
        references: vec![],
        sectors: vec![],
        published: "2026-11-27T09:00:00Z".parse().unwrap(),
        changes: None,
        matched_assets: vec![],
    })
}

struct World {
    s: Synthetic,
}

impl World {
    fn new() -> Self {
        World {
            s: Synthetic::demo(),
        }
    }
    fn dir(&self) -> Arc<varde_bus::directory::VerifiedDirectory> {
        self.s.handle().unwrap().current()
    }
    fn seal_as(&self, sender: &str, d: Draft) -> seal::Sealed {
        seal::seal(&self.s.identity(sender), &self.dir(), d).unwrap()
    }
    fn opener(&self, who: &str) -> Opener {
        Opener::new(self.s.identity(who))
    }
}

fn amber_to_gjovik(w: &World) -> seal::Sealed {
    w.seal_as(
        "kcsirt",
        Draft::new(&advisory(), Tlp::Amber, Audience::orgs([org("gjovik")])),
    )
}

#[test]
fn amber_opens_for_recipient_only() {
    let w = World::new();
    let dir = w.dir();
    let s = amber_to_gjovik(&w);
    assert_eq!(s.subjects(), ["varde.v1.kcsirt.org.gjovik.advisory"]);
    let opened = w
        .opener("gjovik")
        .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap();
    assert_eq!(opened.payload, advisory());
    assert_eq!(opened.header.label, Tlp::Amber);
    // A valid directory member outside the audience cannot open it.
    let err = w
        .opener("lillehammer")
        .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap_err();
    assert!(matches!(err, OpenError::NotARecipient { .. }), "{err}");
}

#[test]
fn clear_is_signed_not_encrypted_and_readable_by_all() {
    let w = World::new();
    let dir = w.dir();
    let s = w.seal_as(
        "kcsirt",
        Draft::new(&alert(), Tlp::Clear, Audience::community()),
    );
    // the plaintext is visible in the bytes: CLEAR is not encrypted
    assert!(s.copies[0].bytes.windows(13).any(|x| x == b"Phishing wave"));
    for who in ["gjovik", "lillehammer", "innlandet-fk", "kcsirt"] {
        w.opener(who)
            .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
            .unwrap();
    }
    // AMBER is not visible in the bytes
    let a = amber_to_gjovik(&w);
    assert!(!a.copies[0].bytes.windows(9).any(|x| x == b"NetScaler"));
}

#[test]
fn every_label_refuses_a_wider_audience_at_seal_time() {
    let w = World::new();
    let id = w.s.identity("kcsirt");
    let dir = w.dir();
    let red_to_group = Draft::new(
        &alert(),
        Tlp::Red,
        Audience::groups([GroupId::new("admin").unwrap()]),
    );
    assert!(matches!(
        seal::seal(&id, &dir, red_to_group),
        Err(seal::SealError::Audience(AudienceError::RedNeedsPeople))
    ));
    let amber_community = Draft::new(&alert(), Tlp::Amber, Audience::community());
    assert!(matches!(
        seal::seal(&id, &dir, amber_community),
        Err(seal::SealError::Audience(
            AudienceError::CommunityNotAllowed(Tlp::Amber)
        ))
    ));
    let strict_group = Draft::new(
        &alert(),
        Tlp::AmberStrict,
        Audience::groups([GroupId::new("admin").unwrap()]),
    );
    assert!(matches!(
        seal::seal(&id, &dir, strict_group),
        Err(seal::SealError::Audience(AudienceError::GroupsNotAllowed(
            Tlp::AmberStrict
        )))
    ));
}

#[test]
fn red_goes_to_named_people_only() {
    let mut w = World::new();
    let kari = w.s.add_key("gjovik", KeyRole::Person, "Kari Nordmann");
    let dir = w.dir();
    let s = w.seal_as(
        "kcsirt",
        Draft::new(&alert(), Tlp::Red, Audience::people([kari.key_id])),
    );
    assert_eq!(s.subjects(), ["varde.v1.kcsirt.org.gjovik.alert"]);
    Opener::new(kari.clone())
        .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap();
    // gjovik's org key gets the subject but is not a recipient
    let err = w
        .opener("gjovik")
        .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap_err();
    assert!(matches!(err, OpenError::NotARecipient { .. }));
}

#[test]
fn open_cost_is_one_wrap_whatever_the_audience() {
    // Structural check of "one X25519 per open": a 370-org community
    // message has 371 wraps and opens for any member, with the member's wrap
    // found by id (the timing ratio is printed by `varde bench`).
    let s = Synthetic::with_orgs(370);
    let dir = s.handle().unwrap().current();
    let sealed = seal::seal(
        &s.identity("kcsirt"),
        &dir,
        Draft::new(&alert(), Tlp::Green, Audience::community()),
    )
    .unwrap();
    let f = varde_bus::envelope::parse(&sealed.copies[0].bytes).unwrap();
    assert_eq!(f.wraps.len(), 371);
    Opener::new(s.identity("kommune-369"))
        .open(&dir, &sealed.copies[0].subject, &sealed.copies[0].bytes)
        .unwrap();
}

#[test]
fn altered_messages_are_refused() {
    let w = World::new();
    let dir = w.dir();
    let s = amber_to_gjovik(&w);
    let subj = &s.copies[0].subject;
    let f = varde_bus::envelope::parse(&s.copies[0].bytes).unwrap();
    let header_at = 4 + 1 + 8 + 4;
    let keys_at = header_at + f.header.len() + 4;
    let body_at = s.copies[0].bytes.len() - 64 - f.body.len();
    let sig_at = s.copies[0].bytes.len() - 64;
    for (what, at) in [
        ("header", header_at + 10),
        ("key list", keys_at + 20),
        ("ciphertext", body_at + 30),
        ("signature", sig_at + 5),
    ] {
        let mut b = s.copies[0].bytes.to_vec();
        b[at] ^= 0x01;
        let err = w.opener("gjovik").open(&dir, subj, &b).unwrap_err();
        assert!(
            matches!(err, OpenError::BadSignature { .. }),
            "{what}: {err}"
        );
    }
    // truncated anywhere
    for cut in [0, 3, 10, header_at + 2, keys_at + 5, sig_at + 10] {
        let err = w
            .opener("gjovik")
            .open(&dir, subj, &s.copies[0].bytes[..cut])
            .unwrap_err();
        assert!(matches!(err, OpenError::Malformed(_)), "cut {cut}: {err}");
    }
}

/// A recipient knows the content key; it tries to re-address or relabel a
/// message it received while keeping the original sender.
#[test]
fn a_recipient_cannot_rewrap_under_the_original_sender() {
    let w = World::new();
    let dir = w.dir();
    let s = w.seal_as(
        "kcsirt",
        Draft::new(
            &advisory(),
            Tlp::AmberStrict,
            Audience::orgs([org("gjovik")]),
        ),
    );
    let f = varde_bus::envelope::parse(&s.copies[0].bytes).unwrap();
    let original: Header = serde_json::from_slice(f.header).unwrap();
    let wraps: Vec<_> = f.wraps.iter().map(|(k, w)| (*k, w.to_vec())).collect();

    let mut wider = original.clone();
    wider.audience = Audience::orgs([org("gjovik"), org("lillehammer")]);
    let mut lower = original.clone();
    lower.label = Tlp::Green;
    let mut other_kind = original.clone();
    other_kind.kind = Kind::Alert;

    for (what, h) in [
        ("audience", &wider),
        ("label", &lower),
        ("kind", &other_kind),
    ] {
        // 1. splice the new header into the original bytes: the signature breaks
        let mut b = Vec::new();
        varde_bus::envelope::write_signed(
            &mut b,
            true,
            f.signer,
            &serde_json::to_vec(h).unwrap(),
            &wraps,
            f.body,
        );
        b.extend_from_slice(&f.signature);
        let err = w
            .opener("gjovik")
            .open(&dir, &s.copies[0].subject, &b)
            .unwrap_err();
        assert!(
            matches!(err, OpenError::BadSignature { .. }),
            "{what}: {err}"
        );

        // 2. re-sign with the recipient's own key, still claiming kcsirt
        let forged = seal::assemble_unchecked(&w.s.identity("gjovik"), h, &wraps, f.body, true);
        let err = w
            .opener("gjovik")
            .open(&dir, &s.copies[0].subject, &forged)
            .unwrap_err();
        assert!(
            matches!(err, OpenError::SenderMismatch { .. }),
            "{what}: {err}"
        );
    }

    // 3. claim another sender in the header
    let mut other_sender = original.clone();
    other_sender.sender.org = org("lillehammer");
    let forged =
        seal::assemble_unchecked(&w.s.identity("gjovik"), &other_sender, &wraps, f.body, true);
    let err = w
        .opener("gjovik")
        .open(&dir, &s.copies[0].subject, &forged)
        .unwrap_err();
    assert!(matches!(err, OpenError::SenderMismatch { .. }), "{err}");

    // 4. swap key-list entries: the signature covers the list
    let mut s2 = w.seal_as(
        "kcsirt",
        Draft::new(
            &advisory(),
            Tlp::Amber,
            Audience::groups([GroupId::new("admin").unwrap()]),
        ),
    );
    let f2 = varde_bus::envelope::parse(&s2.copies[0].bytes).unwrap();
    let mut swapped: Vec<_> = f2.wraps.iter().map(|(k, w)| (*k, w.to_vec())).collect();
    let (a, b) = (swapped[0].1.clone(), swapped[1].1.clone());
    swapped[0].1 = b;
    swapped[1].1 = a;
    let mut bytes = Vec::new();
    varde_bus::envelope::write_signed(&mut bytes, true, f2.signer, f2.header, &swapped, f2.body);
    bytes.extend_from_slice(&f2.signature);
    s2.copies[0].bytes = bytes.into();
    let err = w
        .opener("gjovik")
        .open(&dir, &s2.copies[0].subject, &s2.copies[0].bytes)
        .unwrap_err();
    assert!(matches!(err, OpenError::BadSignature { .. }), "{err}");

    // 5. the recipient re-wraps under its own name: that is now gjovik's
    // message, never kcsirt's
    let mut own = original.clone();
    own.sender.org = org("gjovik");
    own.sender.key = w.s.identity("gjovik").key_id;
    let forged = seal::assemble_unchecked(&w.s.identity("gjovik"), &own, &wraps, f.body, true);
    // the AEAD binds the header: re-using the ciphertext under a new header fails
    let err = w
        .opener("gjovik")
        .open(&dir, "varde.v1.gjovik.org.gjovik.advisory", &forged)
        .unwrap_err();
    assert!(matches!(err, OpenError::Decrypt), "{err}");
}

#[test]
fn sender_and_key_state_errors() {
    let mut w = World::new();
    let dir_before = w.dir();
    let s = amber_to_gjovik(&w);
    let subj = s.copies[0].subject.clone();

    // unknown sender: a key not in the directory
    let stranger = Arc::new(varde_bus::keys::Identity::generate(org("kcsirt")));
    let mut h: Header = serde_json::from_slice(
        varde_bus::envelope::parse(&s.copies[0].bytes)
            .unwrap()
            .header,
    )
    .unwrap();
    h.sender.key = stranger.key_id;
    let forged = seal::assemble_unchecked(&stranger, &h, &[], b"{}", true);
    let err = w
        .opener("gjovik")
        .open(&dir_before, &subj, &forged)
        .unwrap_err();
    assert!(matches!(err, OpenError::UnknownSender { .. }), "{err}");
    assert!(err.may_succeed_later());

    // revoked and expired keys
    let kid = w.s.identity("kcsirt").key_id;
    let past = Timestamp::now() - SignedDuration::from_hours(1);
    w.s.bump();
    w.s.org_mut("kcsirt").unwrap().keys[0].revoked = Some(past);
    let err = w
        .opener("gjovik")
        .open(&w.dir(), &subj, &s.copies[0].bytes)
        .unwrap_err();
    assert!(
        matches!(err, OpenError::RevokedKey { key, .. } if key == kid),
        "{err}"
    );
    w.s.org_mut("kcsirt").unwrap().keys[0].revoked = None;
    w.s.org_mut("kcsirt").unwrap().keys[0].not_after = Some(past);
    let err = w
        .opener("gjovik")
        .open(&w.dir(), &subj, &s.copies[0].bytes)
        .unwrap_err();
    assert!(matches!(err, OpenError::ExpiredKey { .. }), "{err}");
    // and a revoked key cannot seal either
    let e = seal::seal(
        &w.s.identity("kcsirt"),
        &w.dir(),
        Draft::new(&alert(), Tlp::Clear, Audience::community()),
    )
    .unwrap_err();
    assert!(matches!(e, seal::SealError::SenderInactive { .. }), "{e}");
}

#[test]
fn subject_duplicate_label_and_expiry_errors() {
    let w = World::new();
    let dir = w.dir();
    let s = amber_to_gjovik(&w);
    let op = w.opener("gjovik");

    // wrong sender token in the subject
    let err = op
        .open(
            &dir,
            "varde.v1.lillehammer.org.gjovik.advisory",
            &s.copies[0].bytes,
        )
        .unwrap_err();
    assert!(matches!(err, OpenError::SubjectMismatch { .. }), "{err}");
    // a subject the audience does not route to
    let err = op
        .open(
            &dir,
            "varde.v1.kcsirt.group.admin.advisory",
            &s.copies[0].bytes,
        )
        .unwrap_err();
    assert!(matches!(err, OpenError::SubjectMismatch { .. }), "{err}");

    // duplicate id
    op.open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap();
    let err = op
        .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap_err();
    assert!(
        matches!(err, OpenError::Duplicate { id, .. } if id == s.id()),
        "{err}"
    );

    // label/audience mismatch, validly signed by the real sender
    let kc = w.s.identity("kcsirt");
    let mut h: Header = serde_json::from_slice(
        varde_bus::envelope::parse(&s.copies[0].bytes)
            .unwrap()
            .header,
    )
    .unwrap();
    h.id = uuid::Uuid::now_v7();
    h.label = Tlp::Red;
    let forged = seal::assemble_unchecked(&kc, &h, &[], b"x", true);
    let err = op.open(&dir, &s.copies[0].subject, &forged).unwrap_err();
    assert!(
        matches!(err, OpenError::LabelAudience(AudienceError::RedNeedsPeople)),
        "{err}"
    );

    // wrapped to a key outside the audience (sender bug or leak)
    let s3 = w.seal_as(
        "kcsirt",
        Draft::new(&alert(), Tlp::Amber, Audience::orgs([org("lillehammer")])),
    );
    let f3 = varde_bus::envelope::parse(&s3.copies[0].bytes).unwrap();
    let mut h3: Header = serde_json::from_slice(f3.header).unwrap();
    h3.audience = Audience::orgs([org("gjovik")]);
    let leak: Vec<_> = f3.wraps.iter().map(|(k, w)| (*k, w.to_vec())).collect();
    let forged = seal::assemble_unchecked(&kc, &h3, &leak, f3.body, true);
    let err = op
        .open(&dir, "varde.v1.kcsirt.org.gjovik.alert", &forged)
        .unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::LabelAudience(AudienceError::WrappedOutsideAudience(_))
        ),
        "{err}"
    );

    // expired message
    let past = Timestamp::now() - SignedDuration::from_secs(1);
    let s4 = w.seal_as(
        "kcsirt",
        Draft::new(&alert(), Tlp::Amber, Audience::orgs([org("gjovik")])).expires(past),
    );
    let err = op
        .open(&dir, &s4.copies[0].subject, &s4.copies[0].bytes)
        .unwrap_err();
    assert!(matches!(err, OpenError::Expired { .. }), "{err}");
}

#[test]
fn size_and_payload_errors() {
    let w = World::new();
    let dir = w.dir();
    let op = w.opener("gjovik");
    let subj = "varde.v1.kcsirt.org.gjovik.chat";

    // oversize is refused at seal time and at open time
    let big = vec![b'a'; 1 << 20];
    let e = seal::seal(
        &w.s.identity("kcsirt"),
        &dir,
        Draft::raw(
            Kind::Chat,
            Tlp::Amber,
            Audience::orgs([org("gjovik")]),
            big.clone(),
        ),
    )
    .unwrap_err();
    assert!(matches!(e, seal::SealError::Oversized { .. }), "{e}");
    let mut huge = amber_to_gjovik(&w).copies[0].bytes.to_vec();
    huge.resize((1 << 20) + 1, 0);
    assert!(matches!(
        op.open(&dir, subj, &huge),
        Err(OpenError::Oversized { .. })
    ));

    // > 2,000 recipients: refused by the framing before any crypto
    let mut b = Vec::new();
    let fake: Vec<_> = (0..2001u32)
        .map(|i| {
            let mut k = [0u8; 8];
            k[..4].copy_from_slice(&i.to_be_bytes());
            (varde_schemas::KeyId(k), vec![0u8; 1])
        })
        .collect();
    varde_bus::envelope::write_signed(
        &mut b,
        true,
        w.s.identity("kcsirt").key_id,
        b"{}",
        &fake,
        b"",
    );
    b.extend_from_slice(&[0u8; 64]);
    assert!(matches!(
        op.open(&dir, subj, &b),
        Err(OpenError::TooManyRecipients { count: 2001 })
    ));

    // invalid UTF-8 and deeply nested JSON inside a validly sealed payload
    for (what, payload) in [
        ("invalid utf-8", b"{\"text\":\"\xff\xfe\xfd\"}".to_vec()),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        ),
    ] {
        let s = w.seal_as(
            "kcsirt",
            Draft::raw(
                Kind::Chat,
                Tlp::Amber,
                Audience::orgs([org("gjovik")]),
                payload,
            ),
        );
        let err = op
            .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
            .unwrap_err();
        assert!(matches!(err, OpenError::Payload(_)), "{what}: {err}");
    }

    // more than 5,000 indicators
    let many = serde_json::json!({"indicators": (0..5001).map(|i| serde_json::json!({"type":"asn","value":format!("AS{i}")})).collect::<Vec<_>>()});
    let s = w.seal_as(
        "kcsirt",
        Draft::raw(
            Kind::Indicator,
            Tlp::Amber,
            Audience::orgs([org("gjovik")]),
            many.to_string().into_bytes(),
        ),
    );
    let err = op
        .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Payload(varde_schemas::payload::PayloadError::TooManyIndicators {
                count: 5001
            })
        ),
        "{err}"
    );
}

#[test]
fn multi_target_audience_publishes_one_copy_per_subject_naming_its_part() {
    let w = World::new();
    let dir = w.dir();
    let s = w.seal_as(
        "kcsirt",
        Draft::new(
            &advisory(),
            Tlp::Amber,
            Audience {
                groups: vec![GroupId::new("health").unwrap()],
                orgs: vec![org("gjovik")],
                ..Default::default()
            },
        ),
    );
    assert_eq!(
        s.subjects(),
        [
            "varde.v1.kcsirt.group.health.advisory",
            "varde.v1.kcsirt.org.gjovik.advisory"
        ]
    );
    // Broker dedup ids carry the sender org (ids are per sender).
    assert_eq!(s.msg_id(0), format!("kcsirt.{}", s.id()));
    assert_eq!(s.msg_id(1), format!("kcsirt.{}.1", s.id()));
    let (health, named) = (&s.copies[0], &s.copies[1]);
    // lillehammer is in health, gjovik is named: each opens its own copy,
    // which names only its part of the audience.
    let l = w
        .opener("lillehammer")
        .open(&dir, &health.subject, &health.bytes)
        .unwrap();
    assert_eq!(
        l.header.audience,
        Audience::groups([GroupId::new("health").unwrap()])
    );
    let g = w
        .opener("gjovik")
        .open(&dir, &named.subject, &named.bytes)
        .unwrap();
    assert_eq!(g.header.audience, Audience::orgs([org("gjovik")]));
    assert_eq!((l.header.id, g.header.id), (s.id(), s.id()));
    // Each copy holds its part's wraps only.
    for (who, copy) in [("gjovik", health), ("lillehammer", named)] {
        assert!(matches!(
            w.opener(who).open(&dir, &copy.subject, &copy.bytes),
            Err(OpenError::NotARecipient { .. })
        ));
    }
    // A copy is bound to its subject: gjovik's copy on health's subject is
    // refused.
    assert!(matches!(
        w.opener("lillehammer")
            .open(&dir, &health.subject, &named.bytes),
        Err(OpenError::SubjectMismatch { .. })
    ));
    // innlandet-fk is neither
    assert!(matches!(
        w.opener("innlandet-fk")
            .open(&dir, &health.subject, &health.bytes),
        Err(OpenError::NotARecipient { .. })
    ));
}

#[test]
fn another_senders_reuse_of_an_id_is_not_a_replay() {
    let w = World::new();
    let dir = w.dir();
    let genuine = amber_to_gjovik(&w);
    // lillehammer names kcsirt's id in its own, validly signed envelope.
    let squat = w.seal_as(
        "lillehammer",
        Draft::new(&alert(), Tlp::Amber, Audience::orgs([org("gjovik")])).id(genuine.id()),
    );
    assert_ne!(squat.msg_id(0), genuine.msg_id(0));
    let op = w.opener("gjovik");
    op.open(&dir, &squat.copies[0].subject, &squat.copies[0].bytes)
        .unwrap();
    let opened = op
        .open(&dir, &genuine.copies[0].subject, &genuine.copies[0].bytes)
        .unwrap();
    assert_eq!(opened.header.sender.org, org("kcsirt"));
    // A real replay of either is still refused, naming its signer.
    let err = op
        .open(&dir, &genuine.copies[0].subject, &genuine.copies[0].bytes)
        .unwrap_err();
    assert!(
        matches!(err, OpenError::Duplicate { id, key } if id == genuine.id() && key == genuine.header.sender.key),
        "{err}"
    );
}

#[test]
fn stale_envelopes_are_refused_for_good_but_verify_still_reads_them() {
    let w = World::new();
    let dir = w.dir();
    let kc = w.s.identity("kcsirt");
    let draft = || Draft::new(&alert(), Tlp::Amber, Audience::orgs([org("gjovik")]));
    let old = seal::seal_at(
        &kc,
        &dir,
        draft(),
        Timestamp::now() - SignedDuration::from_hours(24 * 8),
    )
    .unwrap();
    let err = w
        .opener("gjovik")
        .open(&dir, &old.copies[0].subject, &old.copies[0].bytes)
        .unwrap_err();
    assert!(
        matches!(err, OpenError::Stale { id, .. } if id == old.id()),
        "{err}"
    );
    assert_eq!(err.reason(), "stale");
    assert!(!err.may_succeed_later());
    // A reader re-opening what it stored earlier uses verify + decrypt,
    // which do not judge age.
    let v = seal::verify(
        &dir,
        Some(&old.copies[0].subject),
        &old.copies[0].bytes,
        Timestamp::now(),
    )
    .unwrap();
    seal::decrypt(&w.s.identity("gjovik"), v, old.copies[0].bytes.len()).unwrap();

    // Within the window (6 days old) it opens; a shorter stream max age
    // makes it stale.
    let recent = seal::seal_at(
        &kc,
        &dir,
        draft(),
        Timestamp::now() - SignedDuration::from_hours(24 * 6),
    )
    .unwrap();
    w.opener("gjovik")
        .open(&dir, &recent.copies[0].subject, &recent.copies[0].bytes)
        .unwrap();
    let err = w
        .opener("gjovik")
        .max_age(SignedDuration::from_hours(24))
        .open(&dir, &recent.copies[0].subject, &recent.copies[0].bytes)
        .unwrap_err();
    assert!(matches!(err, OpenError::Stale { .. }), "{err}");
}

#[test]
fn replay_memory_in_a_file_survives_a_restart() {
    let w = World::new();
    let dir = w.dir();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("gjovik.replay");
    let s = amber_to_gjovik(&w);
    let gjovik = w.s.identity("gjovik");
    Opener::persistent(gjovik.clone(), &path)
        .unwrap()
        .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap();
    let restarted = Opener::persistent(gjovik.clone(), &path).unwrap();
    let err = restarted
        .open(&dir, &s.copies[0].subject, &s.copies[0].bytes)
        .unwrap_err();
    assert!(matches!(err, OpenError::Duplicate { .. }), "{err}");
    // Held by a consumer and never settled (a crash before the ack): the
    // broker's redelivery after a restart must open.
    let held = amber_to_gjovik(&w);
    restarted
        .open_held(&dir, &held.copies[0].subject, &held.copies[0].bytes)
        .unwrap();
    drop(restarted);
    let again = Opener::persistent(gjovik, &path).unwrap();
    again
        .open_held(&dir, &held.copies[0].subject, &held.copies[0].bytes)
        .unwrap();
    again.settle_key(&seal::ReplayKey::of(&held.header));
    assert!(matches!(
        again.open(&dir, &held.copies[0].subject, &held.copies[0].bytes),
        Err(OpenError::Duplicate { .. })
    ));
}

/// Replaces the wrap for `victim` in the envelope `bytes` by `wrap` and
/// re-signs it, in its own format, as `signer` (its real sender): a validly
/// signed hostile wrap.
fn with_wrap(
    signer: &varde_bus::keys::Identity,
    bytes: &[u8],
    victim: varde_schemas::KeyId,
    wrap: Vec<u8>,
) -> Vec<u8> {
    let f = varde_bus::envelope::parse(bytes).unwrap();
    let header: Header = serde_json::from_slice(f.header).unwrap();
    let wraps: Vec<_> = f
        .wraps
        .iter()
        .map(|(k, w)| {
            (
                *k,
                if *k == victim {
                    wrap.clone()
                } else {
                    w.to_vec()
                },
            )
        })
        .collect();
    seal::assemble_unchecked_as(f.format, signer, &header, &wraps, f.body, true).to_vec()
}

/// The envelope of `amber_to_gjovik` in the format of before (`VRD1`).
fn amber_to_gjovik_v1(w: &World) -> (seal::Sealed, Vec<u8>) {
    let s = amber_to_gjovik(w);
    let payload = Draft::new(&advisory(), Tlp::Amber, Audience::orgs([org("gjovik")])).payload;
    let v1 = varde_testkit::legacy::v1(
        &w.s.identity("kcsirt"),
        &w.dir(),
        &s.copies[0].bytes,
        &payload,
    )
    .unwrap();
    (s, v1)
}

#[test]
fn an_envelope_of_the_age_file_format_still_opens() {
    let w = World::new();
    let dir = w.dir();
    let (s, v1) = amber_to_gjovik_v1(&w);
    let f = varde_bus::envelope::parse(&v1).unwrap();
    assert_eq!(f.format, varde_bus::envelope::WrapFormat::AgeFile);
    assert!(f.wraps[0].1.starts_with(b"age-encryption.org/v1\n"));
    let opened = w
        .opener("gjovik")
        .open(&dir, &s.copies[0].subject, &v1)
        .unwrap();
    assert_eq!(opened.header.id, s.id());
    assert_eq!(opened.payload, advisory());
    // Its signature covers the magic: relabelled as VRD2 it is refused.
    let mut relabelled = v1.clone();
    relabelled[..4].copy_from_slice(varde_bus::envelope::MAGIC);
    let err = w
        .opener("gjovik")
        .open(&dir, &s.copies[0].subject, &relabelled)
        .unwrap_err();
    assert!(matches!(err, OpenError::BadSignature { .. }), "{err}");
}

#[test]
fn a_stanza_wrap_of_another_length_is_refused_before_any_x25519() {
    let w = World::new();
    let dir = w.dir();
    let kc = w.s.identity("kcsirt");
    let gjovik = w.s.identity("gjovik");
    let s = amber_to_gjovik(&w);
    let f = varde_bus::envelope::parse(&s.copies[0].bytes).unwrap();
    assert_eq!(f.format, varde_bus::envelope::WrapFormat::Stanza);
    let genuine = f.wraps.iter().find(|(k, _)| *k == gjovik.key_id).unwrap().1;
    assert_eq!(genuine.len(), varde_bus::wrap::LEN);
    for wrap in [
        genuine[..63].to_vec(),
        [genuine, genuine].concat(),
        Vec::new(),
    ] {
        let size = wrap.len();
        let forged = with_wrap(&kc, &s.copies[0].bytes, gjovik.key_id, wrap);
        let err = w
            .opener("gjovik")
            .open(&dir, &s.copies[0].subject, &forged)
            .unwrap_err();
        assert!(
            matches!(
                err,
                OpenError::WrapRefused {
                    reason: varde_bus::envelope::WrapError::StanzaLength { size: s },
                    ..
                } if s == size
            ),
            "{err}"
        );
    }
    // A 64-byte wrap that is not gjovik's fails in age, after one X25519.
    let mut flipped = genuine.to_vec();
    flipped[40] ^= 1;
    let forged = with_wrap(&kc, &s.copies[0].bytes, gjovik.key_id, flipped);
    let err = w
        .opener("gjovik")
        .open(&dir, &s.copies[0].subject, &forged)
        .unwrap_err();
    assert!(matches!(err, OpenError::Unwrap(_)), "{err}");
}

#[test]
fn a_wrap_with_many_x25519_stanzas_is_refused_before_any_x25519() {
    let w = World::new();
    let dir = w.dir();
    let kc = w.s.identity("kcsirt");
    let gjovik = w.s.identity("gjovik");
    // Only the age-file format (VRD1) has room for more than one stanza.
    let (s, v1) = amber_to_gjovik_v1(&w);
    let f = varde_bus::envelope::parse(&v1).unwrap();
    let genuine = f.wraps.iter().find(|(k, _)| *k == gjovik.key_id).unwrap().1;
    // The genuine stanza behind 40 others: age would try all 41.
    let text = std::str::from_utf8(&genuine[..22]).unwrap();
    assert_eq!(text, "age-encryption.org/v1\n");
    let mut bomb = genuine[..22].to_vec();
    for _ in 0..40 {
        bomb.extend_from_slice(
            b"-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\nMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI\n",
        );
    }
    bomb.extend_from_slice(&genuine[22..]);
    let forged = with_wrap(&kc, &v1, gjovik.key_id, bomb);
    let err = w
        .opener("gjovik")
        .open(&dir, &s.copies[0].subject, &forged)
        .unwrap_err();
    assert!(matches!(err, OpenError::WrapRefused { .. }), "{err}");
    assert_eq!(err.reason(), "wrap_refused");
    assert!(!err.may_succeed_later());
    // The untouched envelope still opens.
    w.opener("gjovik")
        .open(&dir, &s.copies[0].subject, &v1)
        .unwrap();
}

/// Issue 13's acceptance: a message to 120 named orgs is readable by
/// exactly those 120 (each through its own copy) and costs the stream
/// bytes linear in N, not N copies of an N-wrap envelope.
#[test]
fn a_message_to_120_named_orgs_reaches_exactly_those_in_linear_bytes() {
    let s = Synthetic::national_sized(140, 0, 0);
    let dir = s.handle().unwrap().current();
    let csirt = s.identity("kcsirt");
    let named: Vec<OrgId> = (0..120).map(|i| org(&format!("kommune-{i:03}"))).collect();
    let draft = |a: Audience| Draft::new(&advisory(), Tlp::Amber, a);
    let sealed = seal::seal(&csirt, &dir, draft(Audience::orgs(named.clone()))).unwrap();
    assert_eq!(sealed.copies.len(), 120);
    for o in dir.orgs() {
        let opener = Opener::new(s.identity(o.id.as_str()));
        let opened = sealed
            .copies
            .iter()
            .filter(|c| opener.open(&dir, &c.subject, &c.bytes).is_ok())
            .count();
        let want = usize::from(named.contains(&o.id));
        assert_eq!(opened, want, "{} opened {opened} copies", o.id);
    }
    let linear: usize = named
        .iter()
        .map(|o| {
            seal::seal(&csirt, &dir, draft(Audience::orgs([o.clone()])))
                .unwrap()
                .stored_bytes()
        })
        .sum();
    let ratio = sealed.stored_bytes() as f64 / linear as f64;
    assert!(
        ratio <= 1.5,
        "{} bytes, {ratio:.3} × linear",
        sealed.stored_bytes()
    );
}
