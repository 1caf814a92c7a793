//! TLP 2.0 audience rules (README "TLP 2.0: who can read what"): which
//! audiences a label allows, who receives a key, and which subjects carry it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use jiff::Timestamp;
use varde_schemas::{Audience, KeyId, Kind, OrgId, Tlp};

use crate::directory::{KeyEntry, VerifiedDirectory};
use crate::subject;

/// Why an audience does not fit a label, or cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudienceError {
    #[error("{0} needs an audience; name orgs, groups, people or the community")]
    Empty(Tlp),
    #[error(
        "{0} cannot go to the whole community; name the orgs or groups (GREEN is the widest label for the community)"
    )]
    CommunityNotAllowed(Tlp),
    #[error("{0} cannot go to groups; name the orgs (AMBER+STRICT) or people (RED)")]
    GroupsNotAllowed(Tlp),
    #[error("TLP:RED goes to named people only; name person keys, not orgs or groups")]
    RedNeedsPeople,
    #[error("unknown org `{0}` in the audience")]
    UnknownOrg(OrgId),
    #[error("unknown group `{0}` in the audience")]
    UnknownGroup(String),
    #[error("key {0} in the audience is not in the directory")]
    UnknownKey(KeyId),
    #[error("key {0} in the audience is revoked or expired")]
    InactiveKey(KeyId),
    #[error("the audience resolves to no usable key")]
    NoRecipients,
    #[error("{count} recipient keys; the limit is {max}")]
    TooManyRecipients { count: usize, max: usize },
    #[error("key {0} received this message but is outside its audience")]
    WrappedOutsideAudience(KeyId),
}

/// Whether `audience` may carry `label` (the rule table, without the
/// directory). An audience narrower than the label allows is always fine.
pub fn check(label: Tlp, a: &Audience) -> Result<(), AudienceError> {
    match label {
        Tlp::Clear => Ok(()),
        _ if a.is_empty() => Err(AudienceError::Empty(label)),
        Tlp::Green => Ok(()),
        Tlp::Amber if a.community => Err(AudienceError::CommunityNotAllowed(label)),
        Tlp::Amber => Ok(()),
        Tlp::AmberStrict if a.community => Err(AudienceError::CommunityNotAllowed(label)),
        Tlp::AmberStrict if !a.groups.is_empty() => Err(AudienceError::GroupsNotAllowed(label)),
        Tlp::AmberStrict => Ok(()),
        Tlp::Red if a.community || !a.groups.is_empty() || !a.orgs.is_empty() => {
            Err(AudienceError::RedNeedsPeople)
        }
        Tlp::Red => Ok(()),
    }
}

/// The audience resolved against a directory: which orgs (by index) and
/// which named keys it covers. Built once per seal or open so membership
/// tests are O(1) however large the audience is.
pub struct Members {
    orgs: Vec<bool>,
    people: HashSet<KeyId>,
}

impl Members {
    pub fn new(dir: &VerifiedDirectory, a: &Audience) -> Self {
        let mut orgs = vec![false; dir.orgs().len()];
        if a.community {
            for (i, o) in dir.orgs().iter().enumerate() {
                orgs[i] = o.kind.in_community();
            }
        }
        for g in &a.groups {
            for &i in dir.group_members(g) {
                orgs[i] = true;
            }
        }
        for o in &a.orgs {
            if let Some(i) = dir.org_index(o.as_str()) {
                orgs[i] = true;
            }
        }
        Members {
            orgs,
            people: a.people.iter().copied().collect(),
        }
    }

    /// Whether an org (by directory index) is inside the audience.
    pub fn has_org(&self, org_idx: usize) -> bool {
        self.orgs.get(org_idx).copied().unwrap_or(false)
    }

    /// Whether a key may hold a wrap: its org is in the audience, or it is
    /// named.
    pub fn has_key(&self, key: &KeyEntry) -> bool {
        self.people.contains(&key.key.id) || self.has_org(key.org)
    }
}

/// Every usable key the audience resolves to, deduplicated, in a stable
/// order. CLEAR resolves to nobody (it is signed, not encrypted).
pub fn recipients<'d>(
    dir: &'d VerifiedDirectory,
    label: Tlp,
    a: &Audience,
    now: Timestamp,
) -> Result<Vec<&'d KeyEntry>, AudienceError> {
    check(label, a)?;
    validate_names(dir, a)?;
    if label == Tlp::Clear {
        return Ok(Vec::new());
    }
    let members = Members::new(dir, a);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, org) in dir.orgs().iter().enumerate() {
        if members.has_org(i) {
            for k in dir.active_keys_of(org, now) {
                if seen.insert(k.key.id) {
                    out.push(k);
                }
            }
        }
    }
    for id in &a.people {
        let k = dir.key(id).ok_or(AudienceError::UnknownKey(*id))?;
        if k.unusable(now).is_some() {
            return Err(AudienceError::InactiveKey(*id));
        }
        if seen.insert(*id) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err(AudienceError::NoRecipients);
    }
    Ok(out)
}

fn validate_names(dir: &VerifiedDirectory, a: &Audience) -> Result<(), AudienceError> {
    for o in &a.orgs {
        if dir.org(o.as_str()).is_none() {
            return Err(AudienceError::UnknownOrg(o.clone()));
        }
    }
    for g in &a.groups {
        if !dir.group_exists(g) {
            return Err(AudienceError::UnknownGroup(g.to_string()));
        }
    }
    for k in &a.people {
        if dir.key(k).is_none() {
            return Err(AudienceError::UnknownKey(*k));
        }
    }
    Ok(())
}

/// One subject a message is published on and the part of its audience that
/// subject reaches: the audience written into that copy's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub subject: String,
    pub audience: Audience,
}

/// The copies one message is published as: one per audience target, so the
/// broker's per-org consumer filters deliver each to exactly the orgs
/// concerned, and each names only its own target. People are reached
/// through their org's subject. Sorted by subject, so copy numbers (and the
/// broker's dedup ids) are the same on every retry.
///
/// Each copy names only its part because the copies together must stay
/// linear in the audience: a copy that listed all N targets and carried all
/// N targets' wraps made a message to N orgs cost N² in the stream. It also
/// keeps the distribution list to the sender: an advisory routed to the
/// municipalities that run a vulnerable product does not tell each of them
/// who else runs it.
pub fn routes(
    dir: &VerifiedDirectory,
    sender: &OrgId,
    kind: Kind,
    a: &Audience,
) -> Result<Vec<Route>, AudienceError> {
    let mut out: BTreeMap<String, Audience> = BTreeMap::new();
    if a.community || a.is_empty() {
        // CLEAR may have no audience at all; it then goes to the community
        // subject and keeps its empty audience.
        let part = if a.community {
            Audience::community()
        } else {
            Audience::default()
        };
        out.insert(subject::community(sender, kind), part);
    }
    for g in &a.groups {
        out.insert(
            subject::group(sender, g, kind),
            Audience::groups([g.clone()]),
        );
    }
    for o in &a.orgs {
        out.entry(subject::org(sender, o, kind))
            .or_default()
            .orgs
            .push(o.clone());
    }
    for k in &a.people {
        let key = dir.key(k).ok_or(AudienceError::UnknownKey(*k))?;
        out.entry(subject::org(sender, &dir.org_at(key.org).id, kind))
            .or_default()
            .people
            .push(*k);
    }
    Ok(out
        .into_iter()
        .map(|(subject, audience)| Route { subject, audience })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use varde_schemas::GroupId;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    #[test]
    fn rule_table() {
        let community = Audience::community();
        let groups = Audience::groups([GroupId::new("health").unwrap()]);
        let orgs = Audience::orgs([org("gjovik")]);
        let people = Audience::people([KeyId([1; 8])]);
        let none = Audience::default();

        use Tlp::*;
        let ok = |t, a: &Audience| check(t, a).is_ok();
        assert!(ok(Clear, &none) && ok(Clear, &community));
        assert!(ok(Green, &community) && ok(Green, &groups) && ok(Green, &orgs));
        assert!(!ok(Green, &none));
        assert!(!ok(Amber, &community) && ok(Amber, &groups) && ok(Amber, &orgs));
        assert!(!ok(AmberStrict, &community) && !ok(AmberStrict, &groups));
        assert!(ok(AmberStrict, &orgs) && ok(AmberStrict, &people));
        assert_eq!(check(Red, &groups), Err(AudienceError::RedNeedsPeople));
        assert_eq!(check(Red, &orgs), Err(AudienceError::RedNeedsPeople));
        assert!(ok(Red, &people));
        assert_eq!(check(Red, &none), Err(AudienceError::Empty(Red)));
    }
}
