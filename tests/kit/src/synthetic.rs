//! Synthetic directories with freshly generated keys, for the demo stack,
//! benchmarks and tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use varde_schemas::directory::{
    Constituency, Directory, Group, KeyRole, Matrix, Org, OrgKind, STANDARD_GROUPS,
};
use varde_schemas::{GroupId, KeyId, OrgId};

use varde_bus::directory::{self, DirectoryError, DirectoryHandle};
use varde_bus::keys::{Identity, generate_signing_key};

/// A directory plus every private key in it.
pub struct Synthetic {
    pub root: SigningKey,
    pub dir: Directory,
    /// Identities by org id (the org key), plus extra keys by key id.
    pub orgs: BTreeMap<OrgId, Arc<Identity>>,
    pub extra: BTreeMap<KeyId, Arc<Identity>>,
}

// Synthetic ids are literals or formatted ASCII: a bad one is a bug here.
fn slug(s: &str) -> OrgId {
    OrgId::new(s).expect("synthetic org ids are valid slugs")
}

fn group(s: &str) -> GroupId {
    GroupId::new(s).expect("synthetic group ids are valid slugs")
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().expect("synthetic CIDRs are valid")
}

fn standard_groups() -> Vec<Group> {
    STANDARD_GROUPS
        .iter()
        .map(|(id, name)| Group {
            id: group(id),
            name: (*name).to_string(),
        })
        .collect()
}

impl Synthetic {
    fn empty(csirt: &str) -> Self {
        Synthetic {
            root: generate_signing_key(),
            dir: Directory {
                version: 1,
                issued: Timestamp::now(),
                expires: None,
                csirt: slug(csirt),
                groups: standard_groups(),
                orgs: Vec::new(),
            },
            orgs: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Adds an org with one org key and returns its identity.
    pub fn add_org(
        &mut self,
        id: &str,
        name: &str,
        kind: OrgKind,
        groups: &[&str],
    ) -> Arc<Identity> {
        let identity = Arc::new(Identity::generate(slug(id)));
        self.dir.orgs.push(Org {
            id: slug(id),
            name: name.to_string(),
            kind,
            groups: groups.iter().map(|g| group(g)).collect(),
            keys: vec![identity.public_key(KeyRole::Org, None)],
            matrix: Matrix::default(),
            constituency: Constituency::default(),
            assets: Vec::new(),
        });
        self.orgs.insert(slug(id), identity.clone());
        identity
    }

    /// Adds another key (person, device, bridge) to an existing org.
    pub fn add_key(&mut self, org: &str, role: KeyRole, name: &str) -> Arc<Identity> {
        let identity = Arc::new(Identity::generate(slug(org)));
        if let Some(o) = self.dir.orgs.iter_mut().find(|o| o.id.as_str() == org) {
            o.keys
                .push(identity.public_key(role, Some(name.to_string())));
        }
        self.extra.insert(identity.key_id, identity.clone());
        identity
    }

    pub fn org_mut(&mut self, id: &str) -> Option<&mut Org> {
        self.dir.orgs.iter_mut().find(|o| o.id.as_str() == id)
    }

    /// The four demo orgs of the quickstart.
    pub fn demo() -> Self {
        let mut s = Synthetic::empty("kcsirt");
        s.add_org("kcsirt", "KommuneCSIRT", OrgKind::Csirt, &[]);
        s.add_org(
            "gjovik",
            "Gjøvik kommune",
            OrgKind::Kommune,
            &["admin", "school", "ot-water"],
        );
        s.add_org(
            "lillehammer",
            "Lillehammer kommune",
            OrgKind::Kommune,
            &["admin", "health"],
        );
        s.add_org(
            "innlandet-fk",
            "Innlandet fylkeskommune",
            OrgKind::Fylkeskommune,
            &["admin", "dental", "upper-secondary", "transport"],
        );
        if let Some(o) = s.org_mut("gjovik") {
            o.constituency.cidrs = vec![net("10.20.0.0/16")];
            o.constituency.domains = vec!["gjovik.kommune.example".into()];
            o.assets = vec!["citrix netscaler".into()];
        }
        if let Some(o) = s.org_mut("lillehammer") {
            o.constituency.cidrs = vec![net("10.30.0.0/16")];
            o.assets = vec!["fortinet fortigate".into(), "visma enterprise".into()];
        }
        s
    }

    /// `n` kommuner (plus the CSIRT), each with one org key, spread over the
    /// standard groups.
    pub fn with_orgs(n: usize) -> Self {
        let mut s = Synthetic::empty("kcsirt");
        s.add_org("kcsirt", "KommuneCSIRT", OrgKind::Csirt, &[]);
        let gs = ["admin", "health", "school", "culture", "ot-water"];
        for i in 0..n {
            let id = format!("kommune-{i:03}");
            s.add_org(
                &id,
                &format!("Kommune {i}"),
                OrgKind::Kommune,
                &[gs[i % gs.len()]],
            );
        }
        s
    }

    /// The national constituency: 357 kommuner, 15 fylkeskommuner, the
    /// CSIRT and 3 partners (376 orgs), each with its org key, one bridge
    /// key and 1–3 person keys (1,500 keys), kommuner in 1–3 of the
    /// standard groups, fylkeskommuner in the county groups.
    pub fn national() -> Self {
        Self::national_sized(357, 15, 3)
    }

    /// [`Synthetic::national`] with other counts (quick runs).
    pub fn national_sized(kommuner: usize, fylker: usize, partners: usize) -> Self {
        let mut s = Synthetic::empty("kcsirt");
        s.add_org("kcsirt", "KommuneCSIRT", OrgKind::Csirt, &[]);
        let kg = [
            "admin", "health", "school", "culture", "sports", "ot-water", "owned",
        ];
        for i in 0..kommuner {
            let groups: Vec<&str> = (0..1 + i % 3).map(|j| kg[(i + 3 * j) % kg.len()]).collect();
            s.add_org(
                &format!("kommune-{i:03}"),
                &format!("Kommune {i}"),
                OrgKind::Kommune,
                &groups,
            );
        }
        for i in 0..fylker {
            s.add_org(
                &format!("fylke-{i:02}"),
                &format!("Fylkeskommune {i}"),
                OrgKind::Fylkeskommune,
                &["admin", "dental", "upper-secondary", "transport"],
            );
        }
        for i in 0..partners {
            s.add_org(
                &format!("partner-{i}"),
                &format!("Partner {i}"),
                OrgKind::Partner,
                &[],
            );
        }
        let ids: Vec<String> = s.dir.orgs.iter().map(|o| o.id.to_string()).collect();
        for (i, id) in ids.iter().enumerate() {
            s.add_key(id, KeyRole::Bridge, "bridge");
            for p in 0..1 + i % 3 {
                s.add_key(id, KeyRole::Person, &format!("person {p}"));
            }
        }
        s
    }

    pub fn identity(&self, org: &str) -> Arc<Identity> {
        self.orgs
            .get(org)
            .cloned()
            .unwrap_or_else(|| panic!("no synthetic org {org}"))
    }

    pub fn signed(&self) -> Result<Vec<u8>, DirectoryError> {
        directory::sign(&self.dir, &self.root)
    }

    pub fn handle(&self) -> Result<DirectoryHandle, DirectoryError> {
        DirectoryHandle::new(&self.signed()?, vec![self.root.verifying_key()], None)
    }

    /// Bumps the version, as every change to a real directory must.
    pub fn bump(&mut self) {
        self.dir.version += 1;
        self.dir.issued = Timestamp::now();
    }
}
