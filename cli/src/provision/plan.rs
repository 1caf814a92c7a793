//! Who the broker lets in and what each may touch, derived from the signed
//! directory: one NATS user per org, per active bridge key and for the
//! CSIRT's hub, each with its own durable consumer, of the same name, on
//! every scope stream it reads (the community's, its groups', its org's).
//!
//! The subject permissions are the smallest set async-nats 0.51 needs for
//! what a member does (publish under its own prefix and await the PubAck,
//! bind and pull its durable, read and watch the directory bucket); every
//! subject below is listed with the client call that needs it.

use std::collections::BTreeSet;

use jiff::Timestamp;
use varde_schemas::directory::KeyRole;
use varde_schemas::{KeyId, Kind, OrgId};

use varde_bus::directory::VerifiedDirectory;
use varde_bus::subject;
use varde_bus::transport::DIRECTORY_BUCKET;

/// The operator's seed file stem and the name in reports. The operator is
/// the only user without subject restrictions: it creates the stream, the
/// bucket and every consumer, and pushes the directory.
pub const OPERATOR: &str = "operator";

/// Why a provisioned user exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The organisation itself: its people's tools and automation.
    Org,
    /// One `varde-bridge` holding a bridge key of the org.
    Bridge { key: KeyId },
    /// The CSIRT's hub (`varde hub run`), reading sightings sent to it.
    Hub,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Org => f.write_str("org"),
            Role::Bridge { key } => write!(f, "bridge key {key}"),
            Role::Hub => f.write_str("hub"),
        }
    }
}

/// One provisioned (restricted) NATS user and its durable consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The user's name: also its durable consumer's name and the stem of
    /// its seed file. Org users are named by the org id; other names hold
    /// a character (`_`) or suffix no org id can, so they never collide.
    pub name: String,
    pub org: OrgId,
    pub role: Role,
    /// Subject filters of its durable consumer.
    pub filters: Vec<String>,
}

/// Subjects a user may publish to and subscribe to (allow lists; anything
/// else is refused by the server with a "Permissions Violation").
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The durable consumer a bridge holding `key` of `org` reads. A bridge
/// gets its own durable so it does not compete with the org's other
/// readers for messages (a shared pull consumer hands each message to one).
pub fn bridge_durable(org: &OrgId, key: &KeyId) -> String {
    format!("{org}_bridge_{key}")
}

/// The hub's durable consumer (the name `varde hub run` binds by default).
pub fn hub_durable(csirt: &OrgId) -> String {
    format!("{csirt}-hub")
}

/// The subject filters of the hub's durable (one definition, the hub's).
pub use varde_hub::run::hub_filters;

pub use varde_bus::subject::inbox_prefix;

impl Member {
    pub fn durable(&self) -> &str {
        &self.name
    }

    pub fn inbox_prefix(&self) -> String {
        inbox_prefix(&self.org)
    }

    /// The consumer provisioning makes for this user on each stream it
    /// reads, by stream name: the same settings the member's `Inbox` asks
    /// for. Filters come from `readable_filters` and the hub's filter, all
    /// of which name a scope.
    pub fn consumers(&self) -> Vec<(String, async_nats::jetstream::consumer::pull::Config)> {
        varde_bus::inbox::InboxConfig::durable(self.durable(), self.filters.clone())
            .consumer_configs()
            .unwrap_or_default()
    }

    /// Names of the streams this user reads.
    pub fn streams(&self) -> Vec<String> {
        self.consumers().into_iter().map(|(s, _)| s).collect()
    }

    /// The user's subject permissions.
    pub fn permissions(&self) -> Permissions {
        let org = &self.org;
        let durable = self.durable();
        let kv_stream = format!("KV_{DIRECTORY_BUCKET}");
        let kv_subjects = format!("$KV.{DIRECTORY_BUCKET}");
        // Its own envelopes, of the known kinds only; the PubAck comes back
        // on its inbox. Naming the kinds bounds what it can store: each
        // stream keeps at most `max_per_sender_kind` envelopes per subject,
        // and with any last token allowed every made-up kind would be a new
        // subject with a limit of its own.
        let mut publish: Vec<String> = Kind::ALL
            .iter()
            .map(|kind| format!("{}.{org}.*.*.{kind}", subject::PREFIX))
            .collect();
        for stream in self.streams() {
            publish.extend([
                // Inbox::open with `create = false`: get_consumer_from_stream.
                format!("$JS.API.CONSUMER.INFO.{stream}.{durable}"),
                // The pull requests of its consumer's message stream.
                format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"),
                // ack, nak, in-progress and term replies of its messages.
                format!("$JS.ACK.{stream}.{durable}.>"),
            ]);
        }
        publish.extend([
            // Directory bucket, read only: get_key_value (stream info) ...
            format!("$JS.API.STREAM.INFO.{kv_stream}"),
            // ... and get (direct get of the last value by subject).
            format!("$JS.API.DIRECT.GET.{kv_stream}.{kv_subjects}.>"),
            // No `$JS.API.CONSUMER.CREATE.KV_…` at all: the create subjects
            // do not say whether the consumer is durable (a `durable_name`
            // in the request body makes it so), so allowing the ephemeral
            // watch would also allow durable consumers that stay on the
            // broker. `directory_kv::watch` needs none (see below).
        ]);
        let subscribe = vec![
            format!("{}.>", self.inbox_prefix()),
            // directory_kv::watch: a plain subscription to the key's
            // subject sees every put as it happens (read only: publishing
            // to `$KV.…` stays refused).
            varde_bus::directory_kv::directory_subject(),
        ];
        Permissions { publish, subscribe }
    }
}

/// Everything provisioning derives from one directory version.
#[derive(Clone, Debug)]
pub struct Plan {
    pub directory_version: u64,
    /// Sorted by name, so the generated config is stable.
    pub members: Vec<Member>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the directory's CSIRT org `{csirt}` has no entry in the directory; add it (varde directory add-org --kind csirt) before provisioning"
    )]
    NoCsirt { csirt: OrgId },
    #[error(
        "NATS user name `{name}` is used twice ({first} and {second}); rename one org: the hub's consumer is named `<csirt>-hub`"
    )]
    Collision {
        name: String,
        first: String,
        second: String,
    },
    #[error("user `{name}`: {source}")]
    Filter {
        name: String,
        #[source]
        source: varde_bus::subject::SubjectError,
    },
}

impl Plan {
    /// Users and consumers for `dir` at `now` (revoked and expired bridge
    /// keys get no user).
    pub fn from_directory(dir: &VerifiedDirectory, now: Timestamp) -> Result<Plan, PlanError> {
        let csirt = dir.doc.csirt.clone();
        if dir.org(csirt.as_str()).is_none() {
            return Err(PlanError::NoCsirt { csirt });
        }
        let mut members = Vec::new();
        for org in dir.orgs() {
            let filters = subject::readable_filters(dir, &org.id);
            members.push(Member {
                name: org.id.to_string(),
                org: org.id.clone(),
                role: Role::Org,
                filters: filters.clone(),
            });
            for k in dir.active_keys_of(org, now) {
                if k.key.role == KeyRole::Bridge {
                    members.push(Member {
                        name: bridge_durable(&org.id, &k.key.id),
                        org: org.id.clone(),
                        role: Role::Bridge { key: k.key.id },
                        filters: filters.clone(),
                    });
                }
            }
        }
        members.push(Member {
            name: hub_durable(&csirt),
            org: csirt.clone(),
            role: Role::Hub,
            filters: hub_filters(&csirt),
        });
        members.sort_by(|a, b| a.name.cmp(&b.name));
        for m in &members {
            varde_bus::inbox::InboxConfig::durable(m.durable(), m.filters.clone())
                .consumer_configs()
                .map_err(|source| PlanError::Filter {
                    name: m.name.clone(),
                    source,
                })?;
        }
        for pair in members.windows(2) {
            if let [a, b] = pair
                && a.name == b.name
            {
                return Err(PlanError::Collision {
                    name: a.name.clone(),
                    first: format!("{} of {}", a.role, a.org),
                    second: format!("{} of {}", b.role, b.org),
                });
            }
        }
        Ok(Plan {
            directory_version: dir.version(),
            members,
        })
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn names(&self) -> BTreeSet<&str> {
        self.members.iter().map(|m| m.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use varde_testkit::synthetic::Synthetic;

    #[test]
    fn one_user_per_org_bridge_key_and_hub() {
        let mut world = Synthetic::demo();
        let bridge = world.add_key("gjovik", KeyRole::Bridge, "bridge");
        let revoked = world.add_key("lillehammer", KeyRole::Bridge, "old bridge");
        let now = Timestamp::now();
        for o in &mut world.dir.orgs {
            for k in &mut o.keys {
                if k.id == revoked.key_id {
                    k.revoked = Some(now - jiff::SignedDuration::from_hours(1));
                }
            }
        }
        let plan = Plan::from_directory(&world.handle().unwrap().current(), now).unwrap();
        let names: Vec<&str> = plan.members.iter().map(|m| m.name.as_str()).collect();
        let gjovik_bridge = format!("gjovik_bridge_{}", bridge.key_id);
        let mut want = vec![
            "gjovik",
            gjovik_bridge.as_str(),
            "innlandet-fk",
            "kcsirt",
            "kcsirt-hub",
            "lillehammer",
        ];
        want.sort();
        assert_eq!(names, want);

        let gjovik = plan.member("gjovik").unwrap();
        let p = gjovik.permissions();
        assert!(
            p.publish
                .contains(&"varde.v1.gjovik.*.*.advisory".to_string())
        );
        // Known kinds only, each by name: no `>` and no `*` as the kind.
        assert!(
            !p.publish
                .iter()
                .any(|s| s.starts_with("varde.v1.") && (s.ends_with(".>") || s.ends_with(".*")))
        );
        assert!(
            p.publish
                .contains(&"$JS.API.CONSUMER.MSG.NEXT.VARDE_O_gjovik.gjovik".to_string())
        );
        // Its durable on each stream it reads: the community's, its
        // groups', its own; on no other org's.
        let streams = gjovik.streams();
        assert!(streams.contains(&"VARDE_COMMUNITY".to_string()));
        assert!(streams.contains(&"VARDE_O_gjovik".to_string()));
        assert!(
            streams
                .iter()
                .all(|s| !s.starts_with("VARDE_O_") || s == "VARDE_O_gjovik")
        );
        for s in &streams {
            assert!(p.publish.contains(&format!("$JS.ACK.{s}.gjovik.>")), "{s}");
        }
        assert_eq!(
            p.subscribe,
            vec![
                "_INBOX.gjovik.>".to_string(),
                "$KV.varde-directory.signed".to_string()
            ]
        );
        // No consumer of its own on the directory bucket, in any form.
        assert!(
            !p.publish
                .iter()
                .any(|s| s.starts_with("$JS.API.CONSUMER.") && s.contains("KV_")),
            "{:?}",
            p.publish
        );
        // No stream administration, nothing of other orgs, no KV writes.
        for s in &p.publish {
            assert!(!s.starts_with("$JS.API.STREAM.CREATE"), "{s}");
            assert!(!s.contains("lillehammer"), "{s}");
            assert!(!s.starts_with("$KV."), "{s}");
            assert!(!s.contains("DELETE"), "{s}");
            assert_ne!(s, ">");
        }
        let b = plan.member(&gjovik_bridge).unwrap();
        assert_eq!(b.filters, gjovik.filters);
        assert!(
            b.permissions()
                .publish
                .contains(&format!("$JS.ACK.VARDE_O_gjovik.{gjovik_bridge}.>"))
        );
        let hub = plan.member("kcsirt-hub").unwrap();
        assert_eq!(
            hub.filters,
            [
                "varde.v1.*.org.kcsirt.sighting",
                "varde.v1.*.org.kcsirt.status",
                "varde.v1.*.org.kcsirt.incident"
            ]
        );
        assert!(
            hub.permissions()
                .publish
                .contains(&"varde.v1.kcsirt.*.*.campaign".to_string())
        );
    }

    #[test]
    fn a_name_clash_with_the_hub_is_refused() {
        let mut world = Synthetic::demo();
        world.add_org(
            "kcsirt-hub",
            "Confusing",
            varde_schemas::directory::OrgKind::Partner,
            &[],
        );
        let e =
            Plan::from_directory(&world.handle().unwrap().current(), Timestamp::now()).unwrap_err();
        assert!(matches!(e, PlanError::Collision { .. }), "{e}");
        assert!(e.to_string().contains("kcsirt-hub"), "{e}");
    }
}
