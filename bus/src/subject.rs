//! Subject layout (docs/ARCHITECTURE.md "The journey of one message"). The sender comes first so broker
//! permissions can pin each org to `varde.v1.<org>.>`:
//!
//! ```text
//! varde.v1.<sender-org>.community.all.<kind>
//! varde.v1.<sender-org>.group.<group>.<kind>
//! varde.v1.<sender-org>.org.<target-org>.<kind>
//! ```

use varde_schemas::{GroupId, Kind, OrgId};

use crate::directory::VerifiedDirectory;

pub const PREFIX: &str = "varde.v1";
/// Everything the `VARDE` stream holds.
pub const ALL: &str = "varde.v1.>";

pub fn community(sender: &OrgId, kind: Kind) -> String {
    format!("{PREFIX}.{sender}.community.all.{kind}")
}

pub fn group(sender: &OrgId, group: &GroupId, kind: Kind) -> String {
    format!("{PREFIX}.{sender}.group.{group}.{kind}")
}

pub fn org(sender: &OrgId, target: &OrgId, kind: Kind) -> String {
    format!("{PREFIX}.{sender}.org.{target}.{kind}")
}

/// Reply subjects of every connection of `org` start with this (set as the
/// client's inbox prefix), so an org may subscribe to its own replies but
/// never to another org's PubAcks or pulled messages. The broker's
/// permissions (`varde nats provision`) allow exactly this prefix.
pub fn inbox_prefix(org: &OrgId) -> String {
    format!("_INBOX.{org}")
}

/// What a subject addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Community,
    Group(GroupId),
    Org(OrgId),
}

/// A parsed subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub sender: OrgId,
    pub target: Target,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{subject}` is not a Varde subject: {reason}")]
pub struct SubjectError {
    pub subject: String,
    pub reason: &'static str,
}

pub fn parse(subject: &str) -> Result<Parsed, SubjectError> {
    let err = |reason| SubjectError {
        subject: subject.chars().take(200).collect(),
        reason,
    };
    let t: Vec<&str> = subject.split('.').collect();
    let [v, ver, sender, scope, target, kind] = t.as_slice() else {
        return Err(err("expected 6 tokens"));
    };
    if *v != "varde" || *ver != "v1" {
        return Err(err("expected prefix varde.v1"));
    }
    let sender = OrgId::new(*sender).map_err(|_| err("bad sender token"))?;
    let kind: Kind = kind.parse().map_err(|_| err("unknown kind"))?;
    let target = match *scope {
        "community" if *target == "all" => Target::Community,
        "group" => Target::Group(GroupId::new(*target).map_err(|_| err("bad group token"))?),
        "org" => Target::Org(OrgId::new(*target).map_err(|_| err("bad org token"))?),
        _ => return Err(err("scope must be community.all, group.<g> or org.<o>")),
    };
    Ok(Parsed {
        sender,
        target,
        kind,
    })
}

/// Subject filters for everything `org` may read: community traffic, its
/// groups' traffic and traffic addressed to it, from any sender.
pub fn readable_filters(dir: &VerifiedDirectory, org: &OrgId) -> Vec<String> {
    let mut out = Vec::new();
    let community_member = dir.org(org.as_str()).is_some_and(|o| o.kind.in_community());
    // Partners receive community traffic only when named; CLEAR community
    // messages still reach them through their org subject if addressed.
    if community_member {
        out.push(format!("{PREFIX}.*.community.all.*"));
    }
    if let Some(o) = dir.org(org.as_str()) {
        for g in &o.groups {
            out.push(format!("{PREFIX}.*.group.{g}.*"));
        }
    }
    out.push(format!("{PREFIX}.*.org.{org}.*"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = org(
            &OrgId::new("kcsirt").unwrap(),
            &OrgId::new("gjovik").unwrap(),
            Kind::Alert,
        );
        assert_eq!(s, "varde.v1.kcsirt.org.gjovik.alert");
        let p = parse(&s).unwrap();
        assert_eq!(p.sender.as_str(), "kcsirt");
        assert_eq!(p.target, Target::Org(OrgId::new("gjovik").unwrap()));
        assert_eq!(p.kind, Kind::Alert);
        assert!(parse("varde.v1.kcsirt.community.all.chat").is_ok());
        for bad in [
            "varde.v1.kcsirt.community.some.chat",
            "varde.v2.kcsirt.org.gjovik.alert",
            "varde.v1.KCSIRT.org.gjovik.alert",
            "varde.v1.kcsirt.org.gjovik.spam",
            "varde.v1.kcsirt.org.gjovik",
            "varde.v1.kcsirt.team.gjovik.alert",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
