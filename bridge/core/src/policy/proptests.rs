//! Property tests of the room check (issue 11): the TLP table of
//! `policy.rs` stated as independent properties over arbitrary rooms,
//! labels and audiences, against a small model of the directory kept here
//! (`ORGS`, `PEOPLE`), not against `Members` or `org_of_matrix_user`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use proptest::sample::select;
use varde_schemas::directory::{KeyRole, OrgKind};
use varde_schemas::{GroupId, KeyId};
use varde_testkit::synthetic::Synthetic;

use super::*;

/// id, kind, groups, Matrix user ids, homeservers.
type OrgModel = (
    &'static str,
    OrgKind,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const ORGS: &[OrgModel] = &[
    ("kcsirt", OrgKind::Csirt, &[], &[], &["csirt.hs"]),
    (
        "gjovik",
        OrgKind::Kommune,
        &["admin", "school"],
        &["@kari:hs", "@ola:hs"],
        &[],
    ),
    (
        "lillehammer",
        OrgKind::Kommune,
        &["admin", "health"],
        &[],
        &["lillehammer.hs"],
    ),
    (
        "innlandet-fk",
        OrgKind::Fylkeskommune,
        &["dental"],
        &["@eve:hs"],
        &[],
    ),
    ("vann-iks", OrgKind::Iks, &["ot-water"], &[], &["iks.hs"]),
    // Not in the community, but in `health`.
    (
        "partner-x",
        OrgKind::Partner,
        &["health"],
        &["@pat:hs"],
        &[],
    ),
];

/// Person keys: name, org, Matrix user. `ghost`'s user is listed by no
/// org; `ola-key` has no Matrix user.
const PEOPLE: &[(&str, &str, Option<&str>)] = &[
    ("kari", "gjovik", Some("@kari:hs")),
    ("ola-key", "gjovik", None),
    ("anne", "lillehammer", Some("@anne:lillehammer.hs")),
    ("pat", "partner-x", Some("@pat:hs")),
    ("ghost", "kcsirt", Some("@ghost:elsewhere.hs")),
];

/// Room members to draw from: listed users, users of owned homeservers,
/// a named person no org lists, and strangers.
const USERS: &[&str] = &[
    "@kari:hs",
    "@ola:hs",
    "@anne:lillehammer.hs",
    "@bob:lillehammer.hs",
    "@eve:hs",
    "@x:iks.hs",
    "@analyst:csirt.hs",
    "@pat:hs",
    "@ghost:elsewhere.hs",
    "@stranger:hs",
    "@stranger:evil.hs",
];

struct World {
    dir: Arc<VerifiedDirectory>,
    /// Every key in the directory, with its Matrix user (person keys).
    keys: Vec<(KeyId, Option<&'static str>)>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let mut s = Synthetic::with_orgs(0);
    let mut keys = vec![(s.identity("kcsirt").key_id, None)];
    for &(id, kind, groups, _, _) in &ORGS[1..] {
        keys.push((s.add_org(id, id, kind, groups).key_id, None));
    }
    for &(id, _, _, users, servers) in ORGS {
        let o = s.org_mut(id).unwrap();
        o.matrix.users = users.iter().map(|u| u.to_string()).collect();
        o.matrix.servers = servers.iter().map(|u| u.to_string()).collect();
    }
    for &(name, org, user) in PEOPLE {
        let k = s.add_key(org, KeyRole::Person, name).key_id;
        let o = s.org_mut(org).unwrap();
        o.keys.iter_mut().find(|x| x.id == k).unwrap().matrix_user = user.map(str::to_string);
        keys.push((k, user));
    }
    World {
        dir: s.handle().unwrap().current(),
        keys,
    }
});

// ---------------------------------------------------------------- model

fn model(org: &str) -> Option<&'static OrgModel> {
    ORGS.iter().find(|o| o.0 == org)
}

/// The org a user belongs to: listed by user id, else by homeserver.
fn org_of(user: &str) -> Option<&'static str> {
    if let Some(o) = ORGS.iter().find(|o| o.3.contains(&user)) {
        return Some(o.0);
    }
    let server = user.split_once(':')?.1;
    ORGS.iter().find(|o| o.4.contains(&server)).map(|o| o.0)
}

/// Whether the audience covers an org: community (not partners), one of
/// its groups, or named.
fn covered(a: &Audience, org: &str) -> bool {
    let Some(&(_, kind, groups, _, _)) = model(org) else {
        return false;
    };
    (a.community && kind != OrgKind::Partner)
        || a.groups
            .iter()
            .any(|g| groups.iter().any(|x| *x == g.as_str()))
        || a.orgs.iter().any(|o| o.as_str() == org)
}

/// Whether the user is the Matrix user of a key named in the audience.
fn named(w: &World, a: &Audience, user: &str) -> bool {
    w.keys
        .iter()
        .any(|(k, u)| *u == Some(user) && a.people.contains(k))
}

/// May this one member see a message with `label` and `a`?
fn member_ok(w: &World, label: Tlp, a: &Audience, user: &str) -> bool {
    match label {
        Tlp::Clear => true,
        Tlp::Red => named(w, a, user),
        Tlp::Green | Tlp::Amber => org_of(user).is_some_and(|o| covered(a, o) || named(w, a, user)),
        Tlp::AmberStrict => org_of(user).is_some_and(|o| covered(a, o)),
    }
}

fn member_orgs(view: &RoomView) -> BTreeSet<&'static str> {
    view.members.iter().filter_map(|u| org_of(u)).collect()
}

/// The table, straight from README "TLP 2.0: who can read what".
fn oracle(w: &World, rules: RoomRules, view: &RoomView, label: Tlp, a: &Audience) -> bool {
    if label == Tlp::Clear {
        return true;
    }
    label <= rules.ceiling
        && (label != Tlp::Red || rules.red)
        && !view.open_to_join
        && !view.world_readable
        && (label < Tlp::Amber || view.encrypted)
        && view.members.iter().all(|u| member_ok(w, label, a, u))
        && (label != Tlp::AmberStrict || member_orgs(view).len() <= 1)
}

/// Whether the reason given for a refusal is true of the inputs.
fn truthful(
    w: &World,
    rules: RoomRules,
    view: &RoomView,
    label: Tlp,
    a: &Audience,
    v: &Violation,
) -> bool {
    let member = |u: &String| view.members.contains(u);
    match v {
        Violation::RedNotAllowed => label == Tlp::Red && !rules.red,
        Violation::AboveCeiling { label: l, ceiling } => {
            *l == label && *ceiling == rules.ceiling && label > rules.ceiling
        }
        Violation::OpenToJoin { label: l } => {
            *l == label && label > Tlp::Clear && view.open_to_join
        }
        Violation::WorldReadable { label: l } => {
            *l == label && label > Tlp::Clear && view.world_readable
        }
        Violation::NotEncrypted { label: l } => {
            *l == label && label >= Tlp::Amber && !view.encrypted
        }
        Violation::UnknownMember { user } => {
            member(user) && label != Tlp::Red && org_of(user).is_none()
        }
        Violation::OutsideCommunity { user, org } => {
            member(user)
                && a.community
                && label == Tlp::Green
                && org_of(user) == Some(org.as_str())
                && !covered(a, org.as_str())
                && !named(w, a, user)
        }
        Violation::OutsideAudience { user, org } => {
            member(user)
                && matches!(label, Tlp::Green | Tlp::Amber | Tlp::AmberStrict)
                && org_of(user) == Some(org.as_str())
                && !covered(a, org.as_str())
                && (label == Tlp::AmberStrict || !named(w, a, user))
        }
        Violation::SeveralOrgs { orgs } => {
            let have: Vec<&str> = orgs.iter().map(OrgId::as_str).collect();
            label == Tlp::AmberStrict
                && have.len() > 1
                && have == member_orgs(view).into_iter().collect::<Vec<_>>()
        }
        Violation::NotNamedRecipient { user } => {
            member(user) && label == Tlp::Red && !named(w, a, user)
        }
        Violation::RefusedByHomeserver { .. } => false,
    }
}

// ----------------------------------------------------------- strategies

fn label() -> impl Strategy<Value = Tlp> {
    select(Tlp::ALL.to_vec())
}

fn rules() -> impl Strategy<Value = RoomRules> {
    // Mostly high ceilings, so that the rest of the table is reached.
    let ceiling = prop_oneof![1 => label(), 2 => Just(Tlp::Red)];
    (ceiling, any::<bool>()).prop_map(|(ceiling, red)| RoomRules { ceiling, red })
}

fn view() -> impl Strategy<Value = RoomView> {
    (
        proptest::bool::weighted(0.8),
        proptest::collection::vec(select(USERS), 0..4),
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.15),
    )
        .prop_map(
            |(encrypted, members, open_to_join, world_readable)| RoomView {
                encrypted,
                members: members.into_iter().map(str::to_string).collect(),
                open_to_join,
                world_readable,
            },
        )
}

/// Any audience over the model's names (an unknown org and group too);
/// not filtered by the label: the check must hold for whatever arrives.
fn audience() -> impl Strategy<Value = Audience> {
    let mut groups: Vec<&str> = ORGS
        .iter()
        .flat_map(|o| o.2.iter().copied())
        .chain(["sports", "no-such-group"])
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let orgs: Vec<&str> = ORGS.iter().map(|o| o.0).chain(["nowhere"]).collect();
    let keys: Vec<KeyId> = WORLD.keys.iter().map(|k| k.0).collect();
    (
        proptest::bool::weighted(0.3),
        proptest::collection::vec(select(groups), 0..3),
        proptest::collection::vec(select(orgs), 0..3),
        proptest::collection::vec(select(keys), 0..3),
    )
        .prop_map(|(community, groups, orgs, people)| Audience {
            community,
            groups: groups
                .into_iter()
                .map(|g| GroupId::new(g).unwrap())
                .collect(),
            orgs: orgs.into_iter().map(|o| OrgId::new(o).unwrap()).collect(),
            people,
        })
}

// ----------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Each rule of the table on its own, then the whole table against
    /// the oracle, then the reason given for a refusal.
    #[test]
    fn policy_table(
        rules in rules(),
        view in view(),
        label in label(),
        a in audience(),
    ) {
        let w = &*WORLD;
        let got = check(&w.dir, rules, &view, label, &a);
        let ok = got.is_ok();

        // CLEAR goes anywhere.
        if label == Tlp::Clear {
            prop_assert!(ok, "CLEAR refused: {got:?}");
        }
        // Never above the room's ceiling.
        if label > rules.ceiling {
            prop_assert!(!ok);
        }
        // RED only into rooms configured for it.
        if label == Tlp::Red && !rules.red {
            prop_assert_eq!(&got, &Err(Violation::RedNotAllowed));
        }
        // AMBER and up only into encrypted rooms.
        if label >= Tlp::Amber && !view.encrypted {
            prop_assert!(!ok);
        }
        // Above CLEAR only into rooms closed to strangers.
        if label > Tlp::Clear && (view.open_to_join || view.world_readable) {
            prop_assert!(!ok);
        }
        if ok {
            // Every member may see it.
            for u in &view.members {
                prop_assert!(member_ok(w, label, &a, u), "{u} may not see {label} to {a}");
            }
            // AMBER+STRICT: one org.
            if label == Tlp::AmberStrict {
                prop_assert!(member_orgs(&view).len() <= 1);
            }
            // What check-config reports is never below what is posted.
            prop_assert!(room_supports(&w.dir, &view, rules.red, label).is_ok());
            prop_assert!(highest_supported(&w.dir, &view, rules.red) >= label);
        }

        // The whole table: Ok exactly when no rule is broken.
        prop_assert_eq!(
            ok,
            oracle(w, rules, &view, label, &a),
            "check says {:?} for {} to {} in {:?} {:?}", got, label, a, rules, view
        );
        // A refusal names a rule that is really broken.
        if let Err(v) = &got {
            prop_assert!(
                truthful(w, rules, &view, label, &a, v),
                "untrue reason {v:?} for {label} to {a} in {rules:?} {view:?}"
            );
        }
    }
}

/// The model's Matrix users resolve as the directory resolves them.
#[test]
fn policy_model_matches_directory() {
    let w = &*WORLD;
    for u in USERS {
        assert_eq!(
            w.dir.org_of_matrix_user(u).map(|o| o.id.as_str()),
            org_of(u),
            "{u}"
        );
    }
}
