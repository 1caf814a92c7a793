//! Subject layout (docs/ARCHITECTURE.md "The journey of one message"). The sender comes first so broker
//! permissions can pin each org to `varde.v1.<org>.*.*.<kind>`:
//!
//! ```text
//! varde.v1.<sender-org>.community.all.<kind>
//! varde.v1.<sender-org>.group.<group>.<kind>
//! varde.v1.<sender-org>.org.<target-org>.<kind>
//! ```
//!
//! Each scope has its own stream: `VARDE_COMMUNITY`, `VARDE_G_<group>` and
//! `VARDE_O_<org>`. One stream for everything made a member's catch-up a
//! filtered read of every org's traffic: nats-server walks a stream block
//! once per matching subject for each message a multi-filter consumer
//! delivers, and at national size one org read its backlog at 0.015 of the
//! unfiltered rate. With a stream per scope every stream a member reads
//! holds only what it may read, and it reads each one unfiltered
//! (`varde bench national`, README "National scale").

use varde_schemas::{GroupId, Kind, OrgId};

use crate::directory::VerifiedDirectory;

pub const PREFIX: &str = "varde.v1";
/// Every envelope subject, of every scope's stream.
pub const ALL: &str = "varde.v1.>";
/// Name of the community's stream; groups' and orgs' streams are named by
/// [`stream_name`].
pub const COMMUNITY_STREAM: &str = "VARDE_COMMUNITY";
/// Every scope stream's name starts with this.
pub const STREAM_PREFIX: &str = "VARDE_";
/// The one stream of every scope, before a stream per scope. Refused at
/// `varde bus init`: its subjects overlap every scope stream's.
pub const LEGACY_STREAM: &str = "VARDE";

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

/// The stream holding a scope's envelopes.
pub fn stream_name(t: &Target) -> String {
    match t {
        Target::Community => COMMUNITY_STREAM.to_string(),
        Target::Group(g) => format!("{STREAM_PREFIX}G_{g}"),
        Target::Org(o) => format!("{STREAM_PREFIX}O_{o}"),
    }
}

/// The subjects of a scope's stream (from any sender, of any kind).
pub fn stream_subject(t: &Target) -> String {
    match t {
        Target::Community => format!("{PREFIX}.*.community.all.*"),
        Target::Group(g) => format!("{PREFIX}.*.group.{g}.*"),
        Target::Org(o) => format!("{PREFIX}.*.org.{o}.*"),
    }
}

/// The stream an envelope published on `subject` lands in.
pub fn stream_of(subject: &str) -> Result<String, SubjectError> {
    parse(subject).map(|p| stream_name(&p.target))
}

/// Every scope of `dir`: the community, each group (defined or named by an
/// org) and each org, each of which gets a stream.
pub fn scopes(dir: &VerifiedDirectory) -> Vec<Target> {
    let mut groups: std::collections::BTreeSet<GroupId> =
        dir.doc.groups.iter().map(|g| g.id.clone()).collect();
    for o in dir.orgs() {
        groups.extend(o.groups.iter().cloned());
    }
    std::iter::once(Target::Community)
        .chain(groups.into_iter().map(Target::Group))
        .chain(dir.orgs().iter().map(|o| Target::Org(o.id.clone())))
        .collect()
}

/// Where one of a reader's filters reads from: the scope's stream, and the
/// filter to apply on it, `None` when the filter is the whole stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRead {
    pub stream: String,
    pub filter: Option<String>,
}

/// Maps a reader's filter (`varde.v1.*.<scope>.<target>.<kind or *>`, as
/// [`readable_filters`] and the hub make them) to its scope's stream.
pub fn stream_read(filter: &str) -> Result<StreamRead, SubjectError> {
    let err = |reason| SubjectError {
        subject: filter.chars().take(200).collect(),
        reason,
    };
    let t: Vec<&str> = filter.split('.').collect();
    let [_, _, sender, scope, target, kind] = t.as_slice() else {
        return Err(err("expected 6 tokens"));
    };
    // Parse it as a concrete subject to check every token, then map.
    let concrete = format!(
        "{PREFIX}.{}.{scope}.{target}.{}",
        if *sender == "*" { "x" } else { sender },
        if *kind == "*" { "chat" } else { kind }
    );
    if !filter.starts_with(&format!("{PREFIX}.")) {
        return Err(err("expected prefix varde.v1"));
    }
    let p = parse(&concrete).map_err(|e| err(e.reason))?;
    let whole = stream_subject(&p.target);
    Ok(StreamRead {
        stream: stream_name(&p.target),
        filter: (filter != whole).then(|| filter.to_string()),
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

    #[test]
    fn each_scope_has_its_stream_and_filters_map_to_it() {
        let s = org(
            &OrgId::new("kcsirt").unwrap(),
            &OrgId::new("gjovik").unwrap(),
            Kind::Alert,
        );
        assert_eq!(stream_of(&s).unwrap(), "VARDE_O_gjovik");
        assert_eq!(
            stream_of("varde.v1.gjovik.group.innlandet.chat").unwrap(),
            "VARDE_G_innlandet"
        );
        assert_eq!(
            stream_of("varde.v1.gjovik.community.all.alert").unwrap(),
            COMMUNITY_STREAM
        );
        let whole = stream_read("varde.v1.*.org.gjovik.*").unwrap();
        assert_eq!(whole.stream, "VARDE_O_gjovik");
        assert_eq!(whole.filter, None);
        let narrow = stream_read("varde.v1.*.org.kcsirt.sighting").unwrap();
        assert_eq!(narrow.stream, "VARDE_O_kcsirt");
        assert_eq!(
            narrow.filter.as_deref(),
            Some("varde.v1.*.org.kcsirt.sighting")
        );
        for bad in [
            "varde.v1.>",
            "varde.v1.*.team.x.*",
            "nats.v1.*.org.x.*",
            "varde.v1.*.org.X.*",
        ] {
            assert!(stream_read(bad).is_err(), "{bad}");
        }
    }
}
