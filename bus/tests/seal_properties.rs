//! Property tests of `seal` and `open` (issue 11): for any label, any
//! audience (valid or not), any sender and any payload,
//!
//! (a) `seal` succeeds exactly when the sender may sign and the label and
//!     audience obey the TLP rules and resolve to keys; otherwise it fails
//!     with the typed error the rules name;
//! (b) every key opens a sealed envelope iff it is among the audience's
//!     usable keys (everyone, for CLEAR), and gets back exactly what was
//!     sealed; any other key gets `NotARecipient`;
//! (c) flipping any bit pattern of any byte makes every open fail before
//!     anything is parsed or decrypted;
//! (d) a second open by the same opener is a `Duplicate`.
//!
//! The expectations come from a small model of the directory kept next to
//! it (`Actor`, `ORGS`), not from `audience.rs`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use uuid::Uuid;
use varde_bus::audience::AudienceError;
use varde_bus::directory::VerifiedDirectory;
use varde_bus::keys::Identity;
use varde_bus::seal::{self, Draft, OpenError, Opener, SealError};
use varde_schemas::directory::{KeyRole, OrgKind};
use varde_schemas::payload::{Ack, Alert, Chat, ChatAction, Person, Severity};
use varde_schemas::{Audience, GroupId, KeyId, Kind, OrgId, Payload, Tlp};
use varde_testkit::synthetic::Synthetic;

/// The directory's orgs: id, kind, groups. `partner-x` is no community
/// member but is in `health`.
const ORGS: &[(&str, OrgKind, &[&str])] = &[
    ("kcsirt", OrgKind::Csirt, &[]),
    ("gjovik", OrgKind::Kommune, &["admin", "school"]),
    ("lillehammer", OrgKind::Kommune, &["admin", "health"]),
    (
        "innlandet-fk",
        OrgKind::Fylkeskommune,
        &["dental", "transport"],
    ),
    ("vann-iks", OrgKind::Iks, &["owned", "ot-water"]),
    ("partner-x", OrgKind::Partner, &["health"]),
];
/// Standard groups nobody is in: valid names that resolve to no org.
const EMPTY_GROUPS: &[&str] = &["sports", "culture"];
const UNKNOWN_GROUP: &str = "no-such-group";
const UNKNOWN_ORG: &str = "nowhere";

/// A key holder: who it is in the model, and its private keys.
struct Actor {
    name: &'static str,
    identity: Arc<Identity>,
    /// The org the directory registers the key to; None: not in it.
    dir_org: Option<&'static str>,
    /// Not revoked, not expired.
    usable: bool,
}

struct World {
    dir: Arc<VerifiedDirectory>,
    /// Every key: the six org keys, person/device/bridge keys, a revoked
    /// and an expired key, and one key the directory does not know.
    actors: Vec<Actor>,
    /// A directory key whose identity claims another org than its own.
    liar: Arc<Identity>,
}

impl World {
    fn actor(&self, key: &KeyId) -> Option<&Actor> {
        self.actors.iter().find(|a| a.identity.key_id == *key)
    }
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let mut s = Synthetic::with_orgs(0);
    let mut actors = Vec::new();
    // `with_orgs(0)` holds only kcsirt; add the rest of the model.
    actors.push(Actor {
        name: "kcsirt",
        identity: s.identity("kcsirt"),
        dir_org: Some("kcsirt"),
        usable: true,
    });
    for &(id, kind, groups) in &ORGS[1..] {
        let identity = s.add_org(id, id, kind, groups);
        actors.push(Actor {
            name: id,
            identity,
            dir_org: Some(id),
            usable: true,
        });
    }
    let yesterday = Timestamp::now() - SignedDuration::from_hours(24);
    for (name, org, role, revoked, expired) in [
        ("kari", "gjovik", KeyRole::Person, false, false),
        ("ola", "lillehammer", KeyRole::Person, false, false),
        ("mallory", "lillehammer", KeyRole::Person, false, false),
        ("fk-laptop", "innlandet-fk", KeyRole::Device, false, false),
        ("csirt-bridge", "kcsirt", KeyRole::Bridge, false, false),
        ("pat", "partner-x", KeyRole::Person, false, false),
        ("revoked", "gjovik", KeyRole::Person, true, false),
        ("expired", "vann-iks", KeyRole::Person, false, true),
    ] {
        let identity = s.add_key(org, role, name);
        if revoked || expired {
            let o = s.org_mut(org).unwrap();
            let k = o.keys.iter_mut().find(|k| k.id == identity.key_id).unwrap();
            if revoked {
                k.revoked = Some(yesterday);
            } else {
                k.not_after = Some(yesterday);
            }
        }
        actors.push(Actor {
            name,
            identity,
            dir_org: Some(org),
            usable: !revoked && !expired,
        });
    }
    actors.push(Actor {
        name: "outsider",
        identity: Arc::new(Identity::generate(OrgId::new(UNKNOWN_ORG).unwrap())),
        dir_org: None,
        usable: true,
    });
    let mallory = &actors
        .iter()
        .find(|a| a.name == "mallory")
        .unwrap()
        .identity;
    let liar = Arc::new(Identity::from_parts(
        OrgId::new("gjovik").unwrap(),
        mallory.age.clone(),
        mallory.signing.clone(),
    ));
    World {
        dir: s.handle().unwrap().current(),
        actors,
        liar,
    }
});

// ---------------------------------------------------------------- model

fn org_kind(org: &str) -> Option<OrgKind> {
    ORGS.iter().find(|(id, ..)| *id == org).map(|(_, k, _)| *k)
}

fn in_group(org: &str, group: &str) -> bool {
    ORGS.iter()
        .any(|(id, _, gs)| *id == org && gs.contains(&group))
}

fn group_known(group: &str) -> bool {
    EMPTY_GROUPS.contains(&group) || ORGS.iter().any(|(_, _, gs)| gs.contains(&group))
}

/// The TLP 2.0 table as the forms of audience each label may name
/// (README "TLP 2.0: who can read what"): GREEN anything but "nobody", AMBER no community,
/// AMBER+STRICT only orgs and people, RED only people. CLEAR anything.
fn table(label: Tlp, a: &Audience) -> Result<(), AudienceError> {
    let community = a.community;
    let groups = !a.groups.is_empty();
    let orgs = !a.orgs.is_empty();
    let people = !a.people.is_empty();
    let (may_community, may_groups, may_orgs) = match label {
        Tlp::Clear => return Ok(()),
        Tlp::Green => (true, true, true),
        Tlp::Amber => (false, true, true),
        Tlp::AmberStrict => (false, false, true),
        Tlp::Red => (false, false, false),
    };
    if !(community || groups || orgs || people) {
        return Err(AudienceError::Empty(label));
    }
    if label == Tlp::Red && (community || groups || orgs) {
        return Err(AudienceError::RedNeedsPeople);
    }
    if community && !may_community {
        return Err(AudienceError::CommunityNotAllowed(label));
    }
    if (groups && !may_groups) || (orgs && !may_orgs) {
        return Err(AudienceError::GroupsNotAllowed(label));
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
enum Expect {
    /// Sealed, wrapped for exactly these keys (none for CLEAR).
    Sealed(BTreeSet<KeyId>),
    SenderUnknown,
    SenderOrgMismatch,
    SenderInactive,
    Audience(AudienceError),
}

fn expect(w: &World, sender: &Identity, label: Tlp, a: &Audience) -> Expect {
    match w.actor(&sender.key_id) {
        Some(Actor {
            dir_org: Some(org),
            usable,
            ..
        }) => {
            if *org != sender.org.as_str() {
                return Expect::SenderOrgMismatch;
            }
            if !usable {
                return Expect::SenderInactive;
            }
        }
        _ => return Expect::SenderUnknown,
    }
    if let Err(e) = table(label, a) {
        return Expect::Audience(e);
    }
    if let Some(o) = a.orgs.iter().find(|o| org_kind(o.as_str()).is_none()) {
        return Expect::Audience(AudienceError::UnknownOrg(o.clone()));
    }
    if let Some(g) = a.groups.iter().find(|g| !group_known(g.as_str())) {
        return Expect::Audience(AudienceError::UnknownGroup(g.to_string()));
    }
    let named = |k: &KeyId| w.actor(k).filter(|a| a.dir_org.is_some());
    if let Some(k) = a.people.iter().find(|k| named(k).is_none()) {
        return Expect::Audience(AudienceError::UnknownKey(*k));
    }
    if label == Tlp::Clear {
        return Expect::Sealed(BTreeSet::new());
    }
    if let Some(k) = a
        .people
        .iter()
        .find(|k| named(k).is_some_and(|a| !a.usable))
    {
        return Expect::Audience(AudienceError::InactiveKey(*k));
    }
    let covered = |org: &str| {
        (a.community && org_kind(org).is_some_and(|k| k != OrgKind::Partner))
            || a.groups.iter().any(|g| in_group(org, g.as_str()))
            || a.orgs.iter().any(|o| o.as_str() == org)
    };
    let keys: BTreeSet<KeyId> = w
        .actors
        .iter()
        .filter(|x| x.usable && x.dir_org.is_some_and(covered))
        .map(|x| x.identity.key_id)
        .chain(a.people.iter().copied())
        .collect();
    if keys.is_empty() {
        return Expect::Audience(AudienceError::NoRecipients);
    }
    Expect::Sealed(keys)
}

fn outcome(r: &Result<seal::Sealed, SealError>) -> Expect {
    match r {
        // The recipients of the message are those of all its copies.
        Ok(s) => Expect::Sealed(
            s.copies
                .iter()
                .flat_map(|c| {
                    varde_bus::envelope::parse(&c.bytes)
                        .unwrap()
                        .wraps
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                })
                .collect(),
        ),
        Err(SealError::SenderUnknown { .. }) => Expect::SenderUnknown,
        Err(SealError::SenderOrgMismatch { .. }) => Expect::SenderOrgMismatch,
        Err(SealError::SenderInactive { .. }) => Expect::SenderInactive,
        Err(SealError::Audience(e)) => Expect::Audience(e.clone()),
        Err(e) => panic!("unexpected seal error: {e}"),
    }
}

// ----------------------------------------------------------- strategies

#[derive(Clone, Debug)]
enum Body {
    Typed(Box<Payload>),
    /// Arbitrary bytes under a kind: sealed as they are.
    Raw(Kind, Vec<u8>),
}

impl Body {
    fn draft(&self, label: Tlp, audience: Audience) -> Draft {
        match self {
            Body::Typed(p) => Draft::new(p, label, audience),
            Body::Raw(k, b) => Draft::raw(*k, label, audience, b.clone()),
        }
    }
    /// What a recipient must get out of it.
    fn opened(&self) -> Option<Payload> {
        match self {
            Body::Typed(p) => Some((**p).clone()),
            Body::Raw(k, b) => Payload::from_json(*k, b).ok(),
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn person() -> impl Strategy<Value = Person> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(select(ORGS.iter().map(|o| o.0).collect::<Vec<_>>())),
    )
        .prop_map(|(matrix_user, display_name, org)| Person {
            matrix_user,
            display_name,
            org: org.map(|o| OrgId::new(o).unwrap()),
        })
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn payload() -> impl Strategy<Value = Payload> {
    let severity = select(vec![
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]);
    let alert = (
        text(),
        text(),
        severity,
        any::<bool>(),
        proptest::collection::vec(text(), 0..3),
        proptest::option::of(text()),
    )
        .prop_map(|(title, body, severity, urgent, references, advisory_id)| {
            Payload::Alert(Alert {
                title,
                body,
                severity,
                urgent,
                references,
                indicators: vec![],
                advisory_id,
            })
        });
    let chat = (
        text(),
        select(vec![
            ChatAction::Message,
            ChatAction::Edit,
            ChatAction::Redact,
        ]),
        person(),
        text(),
        proptest::option::of(text()),
        proptest::option::of(uuid()),
        proptest::option::of(uuid()),
    )
        .prop_map(
            |(conversation, action, author, text, html, reply_to, target)| {
                Payload::Chat(Chat {
                    conversation,
                    action,
                    author,
                    text,
                    html,
                    reply_to,
                    target,
                    attachment: None,
                    origin_room: None,
                    origin_event: None,
                })
            },
        );
    let ack = (
        uuid(),
        proptest::option::of(person()),
        proptest::option::of(text()),
    )
        .prop_map(|(of, by, note)| Payload::Ack(Ack { of, by, note }));
    prop_oneof![alert, chat, ack]
}

fn body() -> impl Strategy<Value = Body> {
    // Kinds whose label and audience the sender picks; status and campaign
    // have theirs fixed by `kind_rules` (tests/tests/campaign.rs).
    let free: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| !k.has_fixed_audience())
        .collect();
    let kind = select(free);
    prop_oneof![
        4 => payload().prop_map(|p| Body::Typed(Box::new(p))),
        // Valid JSON of one kind under another, or any bytes at all.
        1 => (kind.clone(), payload()).prop_map(|(k, p)| Body::Raw(k, p.to_json())),
        1 => (kind, proptest::collection::vec(any::<u8>(), 0..48))
            .prop_map(|(k, b)| Body::Raw(k, b)),
    ]
}

fn label() -> impl Strategy<Value = Tlp> {
    select(Tlp::ALL.to_vec())
}

fn gid(s: &str) -> GroupId {
    GroupId::new(s).unwrap()
}

fn oid(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

/// Any audience over the model's names, unknown ones included.
fn any_audience() -> impl Strategy<Value = Audience> {
    let w = &*WORLD;
    let mut groups: Vec<GroupId> = ORGS
        .iter()
        .flat_map(|o| o.2.iter().copied())
        .chain(EMPTY_GROUPS.iter().copied())
        .chain([UNKNOWN_GROUP])
        .map(gid)
        .collect();
    groups.sort();
    groups.dedup();
    let orgs: Vec<OrgId> = ORGS
        .iter()
        .map(|o| o.0)
        .chain([UNKNOWN_ORG])
        .map(oid)
        .collect();
    let keys: Vec<KeyId> = w.actors.iter().map(|a| a.identity.key_id).collect();
    (
        any::<bool>(),
        proptest::collection::vec(select(groups), 0..3),
        proptest::collection::vec(select(orgs), 0..3),
        proptest::collection::vec(select(keys), 0..3),
    )
        .prop_map(|(community, groups, orgs, people)| Audience {
            community,
            groups,
            orgs,
            people,
        })
}

/// An audience of only the forms `label` allows, with known names and
/// usable keys (it may still resolve to nobody, e.g. an empty group).
fn fitting_audience(label: Tlp) -> impl Strategy<Value = Audience> {
    let w = &*WORLD;
    let mut groups: Vec<GroupId> = ORGS
        .iter()
        .flat_map(|o| o.2.iter().copied())
        .chain(EMPTY_GROUPS.iter().copied())
        .map(gid)
        .collect();
    groups.sort();
    groups.dedup();
    let orgs: Vec<OrgId> = ORGS.iter().map(|o| oid(o.0)).collect();
    let keys: Vec<KeyId> = w
        .actors
        .iter()
        .filter(|a| a.usable && a.dir_org.is_some())
        .map(|a| a.identity.key_id)
        .collect();
    let n = |allowed: bool| if allowed { 0..3usize } else { 0..1 };
    let (c, g, o) = match label {
        Tlp::Clear | Tlp::Green => (true, true, true),
        Tlp::Amber => (false, true, true),
        Tlp::AmberStrict => (false, false, true),
        Tlp::Red => (false, false, false),
    };
    (
        any::<bool>().prop_map(move |b| b && c),
        proptest::collection::vec(select(groups), n(g)),
        proptest::collection::vec(select(orgs), n(o)),
        proptest::collection::vec(select(keys), 0..3),
    )
        .prop_map(|(community, groups, orgs, people)| Audience {
            community,
            groups,
            orgs,
            people,
        })
}

/// Exactly one target of any form, unknown and empty ones included (a
/// lone empty group is how a valid audience resolves to nobody).
fn single_target() -> impl Strategy<Value = Audience> {
    let groups: Vec<&str> = ORGS
        .iter()
        .flat_map(|o| o.2.iter().copied())
        .chain(EMPTY_GROUPS.iter().copied())
        .chain(EMPTY_GROUPS.iter().copied())
        .chain([UNKNOWN_GROUP])
        .collect();
    let orgs: Vec<&str> = ORGS.iter().map(|o| o.0).chain([UNKNOWN_ORG]).collect();
    let keys: Vec<KeyId> = WORLD.actors.iter().map(|a| a.identity.key_id).collect();
    prop_oneof![
        Just(Audience::community()),
        select(groups).prop_map(|g| Audience::groups([gid(g)])),
        select(orgs).prop_map(|o| Audience::orgs([oid(o)])),
        select(keys).prop_map(|k| Audience::people([k])),
    ]
}

fn case() -> impl Strategy<Value = (Tlp, Audience)> {
    label().prop_flat_map(|l| {
        (
            Just(l),
            prop_oneof![
                4 => fitting_audience(l),
                2 => any_audience(),
                1 => single_target(),
            ],
        )
    })
}

/// Index into `actors`, or `actors.len()` for the liar.
fn sender() -> impl Strategy<Value = usize> {
    let n = WORLD.actors.len();
    prop_oneof![
        // Mostly keys that may sign, so that most cases seal.
        6 => 0..n - 1,
        1 => 0..=n,
    ]
}

// ----------------------------------------------------------- properties

fn sender_identity(w: &World, i: usize) -> Arc<Identity> {
    w.actors
        .get(i)
        .map(|a| a.identity.clone())
        .unwrap_or_else(|| w.liar.clone())
}

/// Only errors that `open` raises before it trusts a single byte.
fn refused_before_parse(e: &OpenError) -> bool {
    matches!(
        e,
        OpenError::Malformed(_)
            | OpenError::TooManyRecipients { .. }
            | OpenError::UnknownSender { .. }
            | OpenError::BadSignature { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn seal_open_and_tamper(
        (label, audience) in case(),
        sender in sender(),
        body in body(),
        subject in any::<Index>(),
        flip_at in any::<Index>(),
        flip_mask in 1u8..=255,
    ) {
        let w = &*WORLD;
        let sender = sender_identity(w, sender);
        let expected = expect(w, &sender, label, &audience);
        let sealed = seal::seal(&sender, &w.dir, body.draft(label, audience.clone()));
        prop_assert_eq!(outcome(&sealed), expected);
        let Ok(sealed) = sealed else { return Ok(()) };
        let copy = subject.get(&sealed.copies);
        let subject = copy.subject.as_str();
        let bytes = &copy.bytes;
        let recipients: BTreeSet<KeyId> = varde_bus::envelope::parse(bytes)
            .unwrap()
            .wraps
            .iter()
            .map(|(k, _)| *k)
            .collect();
        let part: varde_schemas::Header =
            serde_json::from_slice(varde_bus::envelope::parse(bytes).unwrap().header).unwrap();
        // (e) a copy names a part of the audience and holds wraps for that
        // part only: on an org's subject, only that org's keys.
        prop_assert!(part.audience.groups.iter().all(|g| audience.groups.contains(g)));
        prop_assert!(part.audience.orgs.iter().all(|o| audience.orgs.contains(o)));
        prop_assert!(part.audience.people.iter().all(|k| audience.people.contains(k)));
        prop_assert!(!part.audience.community || audience.community);
        if let Ok(varde_bus::subject::Parsed { target: varde_bus::subject::Target::Org(o), .. }) =
            varde_bus::subject::parse(subject)
        {
            for k in &recipients {
                let org = w.dir.key(k).map(|e| w.dir.org_at(e.org).id.clone());
                prop_assert_eq!(org.as_ref(), Some(&o), "a wrap of another org on {}", subject);
            }
        }

        // (a) + (b): each key opens iff it is a recipient (all, for CLEAR).
        let want = body.opened();
        for a in &w.actors {
            let reads = label == Tlp::Clear || recipients.contains(&a.identity.key_id);
            let opener = Opener::new(a.identity.clone());
            match opener.open(&w.dir, subject, bytes) {
                Ok(o) => {
                    prop_assert!(reads, "{} opened {label} to {audience}", a.name);
                    prop_assert_eq!(Some(&o.payload), want.as_ref());
                    prop_assert_eq!(o.header.label, label);
                    prop_assert_eq!(&o.header.audience, &part.audience);
                    prop_assert_eq!(&o.header.sender.org, &sender.org);
                    prop_assert_eq!(o.header.sender.key, sender.key_id);
                    // (d) the same opener refuses a second copy.
                    let again = opener.open(&w.dir, subject, bytes);
                    prop_assert!(
                        matches!(again, Err(OpenError::Duplicate { .. })),
                        "{}: second open: {:?}", a.name, again
                    );
                }
                Err(OpenError::NotARecipient { key, .. }) => {
                    prop_assert!(!reads, "{} is a recipient but was refused", a.name);
                    prop_assert_eq!(key, a.identity.key_id);
                }
                Err(OpenError::Payload(_)) => {
                    prop_assert!(reads, "{}: payload error without a wrap", a.name);
                    prop_assert!(want.is_none(), "{}: a good payload refused", a.name);
                }
                Err(e) => prop_assert!(false, "{}: unexpected {e}", a.name),
            }
        }

        // (c) one altered byte: refused by every key, before parsing.
        let mut bad = bytes.to_vec();
        let at = flip_at.index(bad.len());
        bad[at] ^= flip_mask;
        let f = varde_bus::envelope::parse(bytes).unwrap();
        let header = 17..17 + f.header.len();
        let tail = bad.len() - 64 - f.body.len()..bad.len();
        for a in &w.actors {
            let e = Opener::new(a.identity.clone())
                .open(&w.dir, subject, &bad)
                .unwrap_err();
            prop_assert!(refused_before_parse(&e), "{}: byte {at}: {e}", a.name);
            // Header, body and signature bytes are only ever caught by
            // the signature.
            if header.contains(&at) || tail.contains(&at) {
                prop_assert!(
                    matches!(e, OpenError::BadSignature { .. }),
                    "{}: byte {at}: {e}", a.name
                );
            }
        }
    }
}

/// The model's names match the directory built from them.
#[test]
fn model_matches_directory() {
    let w = &*WORLD;
    assert_eq!(w.dir.orgs().len(), ORGS.len());
    for a in &w.actors {
        let entry = w.dir.key(&a.identity.key_id);
        assert_eq!(
            entry.map(|e| w.dir.org_at(e.org).id.as_str()),
            a.dir_org,
            "{}",
            a.name
        );
        if let Some(e) = entry {
            assert_eq!(
                e.unusable(Timestamp::now()).is_none(),
                a.usable,
                "{}",
                a.name
            );
        }
    }
    for g in EMPTY_GROUPS {
        assert!(w.dir.group_exists(&gid(g)) && w.dir.group_members(&gid(g)).is_empty());
    }
    assert!(!w.dir.group_exists(&gid(UNKNOWN_GROUP)));
}
