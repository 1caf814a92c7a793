//! The room check of the TLP table (README "TLP 2.0: who can read what"): may a message with this label
//! and audience be posted into a room with these members and this
//! encryption? Pure functions over a [`RoomView`] and the verified
//! directory, run before every post (and again at `release`).
//!
//! | label | room requirement |
//! |---|---|
//! | CLEAR | none |
//! | GREEN | every member belongs to the audience (a community org when it is the community) |
//! | AMBER | encrypted; every member belongs to an audience org (or is a named person) |
//! | AMBER+STRICT | encrypted; every member belongs to *one* audience org |
//! | RED | `red = true`; encrypted; every member is a named recipient |
//!
//! "Members" are joined and invited users other than the bot: an invited
//! user can join and read what follows at any moment. A user belongs to an
//! org when the directory lists the user id or the user's homeserver.
//!
//! Above CLEAR the room must also be closed to strangers: a join rule
//! that needs an invite (`invite`, `knock`, `private`; `public` and
//! `restricted` let people in without one) and a history visibility other
//! than `world_readable`. Otherwise the member list is only true until
//! someone walks in, and the history is readable by anyone.

use std::collections::BTreeSet;
use std::fmt;

use varde_bus::audience::Members;
use varde_bus::directory::VerifiedDirectory;
use varde_schemas::{Audience, OrgId, Tlp};

/// The live state of a room that the check needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomView {
    pub encrypted: bool,
    /// Joined and invited users, without the bot itself.
    pub members: Vec<String>,
    /// Anyone may join without an invite (`public` or `restricted` join
    /// rule).
    pub open_to_join: bool,
    /// Anyone may read the history without joining.
    pub world_readable: bool,
}

/// Why a post is refused. Carries user ids and org ids, never content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    AboveCeiling {
        label: Tlp,
        ceiling: Tlp,
    },
    NotEncrypted {
        label: Tlp,
    },
    UnknownMember {
        user: String,
    },
    OutsideCommunity {
        user: String,
        org: OrgId,
    },
    OutsideAudience {
        user: String,
        org: OrgId,
    },
    SeveralOrgs {
        orgs: Vec<OrgId>,
    },
    RedNotAllowed,
    NotNamedRecipient {
        user: String,
    },
    OpenToJoin {
        label: Tlp,
    },
    WorldReadable {
        label: Tlp,
    },
    /// Not a rule of the table: the homeserver refused the event itself
    /// for good (too large, malformed, forbidden).
    RefusedByHomeserver {
        status: u16,
    },
}

impl Violation {
    /// Stable short name for metrics labels and the store.
    pub fn reason(&self) -> &'static str {
        match self {
            Violation::AboveCeiling { .. } => "above_ceiling",
            Violation::NotEncrypted { .. } => "not_encrypted",
            Violation::UnknownMember { .. } => "unknown_member",
            Violation::OutsideCommunity { .. } => "outside_community",
            Violation::OutsideAudience { .. } => "outside_audience",
            Violation::SeveralOrgs { .. } => "several_orgs",
            Violation::RedNotAllowed => "red_not_allowed",
            Violation::NotNamedRecipient { .. } => "not_named_recipient",
            Violation::OpenToJoin { .. } => "open_to_join",
            Violation::WorldReadable { .. } => "world_readable",
            Violation::RefusedByHomeserver { .. } => "refused_by_homeserver",
        }
    }

    pub const REASONS: [&'static str; 11] = [
        "above_ceiling",
        "not_encrypted",
        "unknown_member",
        "outside_community",
        "outside_audience",
        "several_orgs",
        "red_not_allowed",
        "not_named_recipient",
        "open_to_join",
        "world_readable",
        "refused_by_homeserver",
    ];
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::AboveCeiling { label, ceiling } => {
                write!(f, "{label} is above the room's ceiling {ceiling}")
            }
            Violation::NotEncrypted { label } => {
                write!(f, "{label} needs an end-to-end encrypted room")
            }
            Violation::UnknownMember { user } => {
                write!(
                    f,
                    "{user} is not a user of any organisation in the directory"
                )
            }
            Violation::OutsideCommunity { user, org } => write!(
                f,
                "{user} ({org}) is outside the community and not named in the audience"
            ),
            Violation::OutsideAudience { user, org } => {
                write!(f, "{user} ({org}) is outside the message's audience")
            }
            Violation::SeveralOrgs { orgs } => {
                let list: Vec<&str> = orgs.iter().map(OrgId::as_str).collect();
                write!(
                    f,
                    "TLP:AMBER+STRICT needs members of one organisation; the room has {}",
                    list.join(", ")
                )
            }
            Violation::RedNotAllowed => write!(f, "the room is not configured for TLP:RED"),
            Violation::NotNamedRecipient { user } => {
                write!(f, "{user} is not a named recipient of this TLP:RED message")
            }
            Violation::OpenToJoin { label } => write!(
                f,
                "{label} needs a room that only invited users can join (its join rule lets anyone in)"
            ),
            Violation::WorldReadable { label } => write!(
                f,
                "{label} needs a room whose history is not world-readable"
            ),
            Violation::RefusedByHomeserver { status } => {
                write!(f, "the homeserver refused the post (HTTP {status})")
            }
        }
    }
}

/// What the check needs to know about the room's configuration.
#[derive(Clone, Copy, Debug)]
pub struct RoomRules {
    pub ceiling: Tlp,
    pub red: bool,
}

/// Whether a message with `label` and `audience` may be posted into the
/// room. The first violation found is returned.
pub fn check(
    dir: &VerifiedDirectory,
    rules: RoomRules,
    view: &RoomView,
    label: Tlp,
    audience: &Audience,
) -> Result<(), Violation> {
    // RED first: for a room without `red = true` it is the real reason,
    // whatever its ceiling.
    if label == Tlp::Red && !rules.red {
        return Err(Violation::RedNotAllowed);
    }
    if label > rules.ceiling {
        return Err(Violation::AboveCeiling {
            label,
            ceiling: rules.ceiling,
        });
    }
    if label == Tlp::Clear {
        return Ok(());
    }
    closed_to_strangers(view, label)?;
    if label >= Tlp::Amber && !view.encrypted {
        return Err(Violation::NotEncrypted { label });
    }
    let members = Members::new(dir, audience);
    let named = named_users(dir, audience);
    let mut orgs = BTreeSet::new();
    for user in &view.members {
        if label == Tlp::Red {
            if !named.contains(user.as_str()) {
                return Err(Violation::NotNamedRecipient { user: user.clone() });
            }
            continue;
        }
        let Some(org) = dir.org_of_matrix_user(user) else {
            return Err(Violation::UnknownMember { user: user.clone() });
        };
        let idx = dir.org_index(org.id.as_str());
        let in_audience = idx.is_some_and(|i| members.has_org(i));
        match label {
            // The audience, not just the community: GREEN to a group is
            // for that group's members.
            Tlp::Green => {
                if !in_audience && !named.contains(user.as_str()) {
                    return Err(if audience.community {
                        Violation::OutsideCommunity {
                            user: user.clone(),
                            org: org.id.clone(),
                        }
                    } else {
                        Violation::OutsideAudience {
                            user: user.clone(),
                            org: org.id.clone(),
                        }
                    });
                }
            }
            Tlp::Amber => {
                if !in_audience && !named.contains(user.as_str()) {
                    return Err(Violation::OutsideAudience {
                        user: user.clone(),
                        org: org.id.clone(),
                    });
                }
            }
            Tlp::AmberStrict => {
                if !in_audience {
                    return Err(Violation::OutsideAudience {
                        user: user.clone(),
                        org: org.id.clone(),
                    });
                }
                orgs.insert(org.id.clone());
            }
            Tlp::Clear | Tlp::Red => {}
        }
    }
    if label == Tlp::AmberStrict && orgs.len() > 1 {
        return Err(Violation::SeveralOrgs {
            orgs: orgs.into_iter().collect(),
        });
    }
    Ok(())
}

/// Above CLEAR: nobody gets in, or reads the history, without an invite.
fn closed_to_strangers(view: &RoomView, label: Tlp) -> Result<(), Violation> {
    if view.open_to_join {
        return Err(Violation::OpenToJoin { label });
    }
    if view.world_readable {
        return Err(Violation::WorldReadable { label });
    }
    Ok(())
}

/// Matrix users of the person keys named in the audience.
fn named_users<'d>(dir: &'d VerifiedDirectory, audience: &Audience) -> BTreeSet<&'d str> {
    audience
        .people
        .iter()
        .filter_map(|k| dir.key(k))
        .filter_map(|k| k.key.matrix_user.as_deref())
        .collect()
}

/// Whether the room could carry `label` for the most favourable audience
/// (its own members' orgs, or its members as named people): what
/// `check-config` compares with a room's ceiling.
pub fn room_supports(
    dir: &VerifiedDirectory,
    view: &RoomView,
    red: bool,
    label: Tlp,
) -> Result<(), Violation> {
    if label == Tlp::Clear {
        return Ok(());
    }
    closed_to_strangers(view, label)?;
    if label == Tlp::Red {
        if !red {
            return Err(Violation::RedNotAllowed);
        }
        if !view.encrypted {
            return Err(Violation::NotEncrypted { label });
        }
        let people: BTreeSet<&str> = dir
            .keys()
            .filter(|k| k.key.role == varde_schemas::directory::KeyRole::Person)
            .filter_map(|k| k.key.matrix_user.as_deref())
            .collect();
        return match view.members.iter().find(|u| !people.contains(u.as_str())) {
            Some(user) => Err(Violation::NotNamedRecipient { user: user.clone() }),
            None => Ok(()),
        };
    }
    let mut orgs = BTreeSet::new();
    for user in &view.members {
        match dir.org_of_matrix_user(user) {
            Some(org) => {
                orgs.insert(org.id.clone());
            }
            None => return Err(Violation::UnknownMember { user: user.clone() }),
        }
    }
    if label >= Tlp::Amber && !view.encrypted {
        return Err(Violation::NotEncrypted { label });
    }
    if label == Tlp::AmberStrict && orgs.len() > 1 {
        return Err(Violation::SeveralOrgs {
            orgs: orgs.into_iter().collect(),
        });
    }
    Ok(())
}

/// The highest label [`room_supports`] allows.
pub fn highest_supported(dir: &VerifiedDirectory, view: &RoomView, red: bool) -> Tlp {
    Tlp::ALL
        .into_iter()
        .rev()
        .find(|&l| room_supports(dir, view, red, l).is_ok())
        .unwrap_or(Tlp::Clear)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use varde_schemas::KeyId;
    use varde_schemas::directory::{KeyRole, OrgKind};
    use varde_testkit::synthetic::Synthetic;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    struct World {
        dir: std::sync::Arc<VerifiedDirectory>,
        kari: KeyId,
    }

    fn world() -> World {
        let mut s = Synthetic::demo();
        s.add_org("partner-x", "Partner", OrgKind::Partner, &[]);
        let kari = s.add_key("gjovik", KeyRole::Person, "Kari").key_id;
        for o in &mut s.dir.orgs {
            if o.id.as_str() == "gjovik" {
                o.matrix.users = vec!["@kari:hs".into(), "@ola:hs".into()];
                for k in &mut o.keys {
                    if k.id == kari {
                        k.matrix_user = Some("@kari:hs".into());
                    }
                }
            }
            if o.id.as_str() == "lillehammer" {
                o.matrix.servers = vec!["lillehammer.hs".into()];
            }
            if o.id.as_str() == "innlandet-fk" {
                o.matrix.users = vec!["@eve:hs".into()];
            }
            if o.id.as_str() == "partner-x" {
                o.matrix.users = vec!["@pat:hs".into()];
            }
        }
        World {
            dir: s.handle().unwrap().current(),
            kari,
        }
    }

    fn view(encrypted: bool, members: &[&str]) -> RoomView {
        RoomView {
            encrypted,
            members: members.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    const AMBER_ROOM: RoomRules = RoomRules {
        ceiling: Tlp::Amber,
        red: false,
    };
    const RED_ROOM: RoomRules = RoomRules {
        ceiling: Tlp::Red,
        red: true,
    };

    #[test]
    fn the_table() {
        let w = world();
        let d = &w.dir;
        let to_gjovik = Audience::orgs([org("gjovik")]);
        let community = Audience::community();
        let gjovik_room = view(true, &["@kari:hs", "@ola:hs"]);

        // CLEAR goes anywhere, even with strangers.
        assert!(
            check(
                d,
                AMBER_ROOM,
                &view(false, &["@x:y"]),
                Tlp::Clear,
                &community
            )
            .is_ok()
        );
        // GREEN: all members in member orgs.
        assert!(check(d, AMBER_ROOM, &gjovik_room, Tlp::Green, &community).is_ok());
        assert_eq!(
            check(
                d,
                AMBER_ROOM,
                &view(false, &["@kari:hs", "@x:y"]),
                Tlp::Green,
                &community
            ),
            Err(Violation::UnknownMember {
                user: "@x:y".into()
            })
        );
        assert_eq!(
            check(
                d,
                AMBER_ROOM,
                &view(false, &["@pat:hs"]),
                Tlp::Green,
                &community
            )
            .unwrap_err()
            .reason(),
            "outside_community"
        );
        // AMBER: encrypted, all in the audience.
        assert!(check(d, AMBER_ROOM, &gjovik_room, Tlp::Amber, &to_gjovik).is_ok());
        assert_eq!(
            check(
                d,
                AMBER_ROOM,
                &view(false, &["@kari:hs"]),
                Tlp::Amber,
                &to_gjovik
            ),
            Err(Violation::NotEncrypted { label: Tlp::Amber })
        );
        assert_eq!(
            check(
                d,
                AMBER_ROOM,
                &view(true, &["@kari:hs", "@eve:hs"]),
                Tlp::Amber,
                &to_gjovik
            ),
            Err(Violation::OutsideAudience {
                user: "@eve:hs".into(),
                org: org("innlandet-fk")
            })
        );
        // Server-wide membership counts too.
        let two = Audience::orgs([org("gjovik"), org("lillehammer")]);
        assert!(
            check(
                d,
                AMBER_ROOM,
                &view(true, &["@kari:hs", "@a:lillehammer.hs"]),
                Tlp::Amber,
                &two
            )
            .is_ok()
        );
        // Groups resolve to their orgs.
        let health = Audience::groups([varde_schemas::GroupId::new("health").unwrap()]);
        assert!(
            check(
                d,
                AMBER_ROOM,
                &view(true, &["@a:lillehammer.hs"]),
                Tlp::Amber,
                &health
            )
            .is_ok()
        );
        assert!(check(d, AMBER_ROOM, &gjovik_room, Tlp::Amber, &health).is_err());
        // Above the ceiling.
        let strict_room = RoomRules {
            ceiling: Tlp::AmberStrict,
            red: false,
        };
        assert_eq!(
            check(d, AMBER_ROOM, &gjovik_room, Tlp::AmberStrict, &to_gjovik)
                .unwrap_err()
                .reason(),
            "above_ceiling"
        );
        // AMBER+STRICT: one org only.
        assert!(check(d, strict_room, &gjovik_room, Tlp::AmberStrict, &to_gjovik).is_ok());
        assert_eq!(
            check(
                d,
                strict_room,
                &view(true, &["@kari:hs", "@a:lillehammer.hs"]),
                Tlp::AmberStrict,
                &two
            ),
            Err(Violation::SeveralOrgs {
                orgs: vec![org("gjovik"), org("lillehammer")]
            })
        );
        // RED: opted in, encrypted, named people only.
        let to_kari = Audience::people([w.kari]);
        assert_eq!(
            check(
                d,
                RoomRules {
                    ceiling: Tlp::Red,
                    red: false
                },
                &view(true, &["@kari:hs"]),
                Tlp::Red,
                &to_kari
            ),
            Err(Violation::RedNotAllowed)
        );
        assert!(check(d, RED_ROOM, &view(true, &["@kari:hs"]), Tlp::Red, &to_kari).is_ok());
        assert_eq!(
            check(d, RED_ROOM, &gjovik_room, Tlp::Red, &to_kari),
            Err(Violation::NotNamedRecipient {
                user: "@ola:hs".into()
            })
        );
        assert_eq!(
            check(d, RED_ROOM, &view(false, &["@kari:hs"]), Tlp::Red, &to_kari)
                .unwrap_err()
                .reason(),
            "not_encrypted"
        );
    }

    #[test]
    fn rooms_open_to_strangers_carry_clear_only() {
        let w = world();
        let d = &w.dir;
        let community = Audience::community();
        let public = RoomView {
            open_to_join: true,
            ..view(true, &["@kari:hs"])
        };
        let readable = RoomView {
            world_readable: true,
            ..view(true, &["@kari:hs"])
        };
        assert!(check(d, AMBER_ROOM, &public, Tlp::Clear, &community).is_ok());
        assert_eq!(
            check(d, AMBER_ROOM, &public, Tlp::Green, &community),
            Err(Violation::OpenToJoin { label: Tlp::Green })
        );
        assert_eq!(
            check(d, AMBER_ROOM, &readable, Tlp::Green, &community),
            Err(Violation::WorldReadable { label: Tlp::Green })
        );
        assert_eq!(highest_supported(d, &public, false), Tlp::Clear);
    }

    #[test]
    fn green_to_a_group_is_for_the_group() {
        let w = world();
        let d = &w.dir;
        let health = Audience::groups([varde_schemas::GroupId::new("health").unwrap()]);
        // gjovik is a community member but not in `health`.
        assert_eq!(
            check(
                d,
                AMBER_ROOM,
                &view(false, &["@kari:hs"]),
                Tlp::Green,
                &health
            )
            .unwrap_err()
            .reason(),
            "outside_audience"
        );
        assert!(
            check(
                d,
                AMBER_ROOM,
                &view(false, &["@a:lillehammer.hs"]),
                Tlp::Green,
                &health
            )
            .is_ok()
        );
    }

    #[test]
    fn what_a_room_supports() {
        let w = world();
        let d = &w.dir;
        assert_eq!(
            highest_supported(d, &view(false, &["@kari:hs"]), false),
            Tlp::Green
        );
        assert_eq!(
            highest_supported(d, &view(true, &["@kari:hs", "@ola:hs"]), false),
            Tlp::AmberStrict
        );
        assert_eq!(
            highest_supported(d, &view(true, &["@kari:hs", "@eve:hs"]), false),
            Tlp::Amber
        );
        assert_eq!(
            highest_supported(d, &view(true, &["@kari:hs", "@x:y"]), false),
            Tlp::Clear
        );
        assert_eq!(
            highest_supported(d, &view(true, &["@kari:hs"]), true),
            Tlp::Red
        );
        assert!(room_supports(d, &view(true, &["@ola:hs"]), true, Tlp::Red).is_err());
    }
}
