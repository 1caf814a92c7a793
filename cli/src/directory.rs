//! `varde directory …`: edit the draft directory (plain JSON), sign it with
//! the root key, verify, show, and push it to the KV bucket.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jiff::Timestamp;
use varde_schemas::directory::{
    Constituency, Directory, Group, Matrix, Org, OrgKind, STANDARD_GROUPS,
};
use varde_schemas::{GroupId, KeyId, OrgId};

use super::keygen::Card;
use crate::settings::Settings;
use varde_bus::directory::{self as dirlib, VerifiedDirectory};
use varde_bus::keys;
use varde_bus::settings::Loaded;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Make a root signing key (keep it offline) and print the public key
    /// every process pins in `directory.root_keys`.
    RootKeygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Start a draft directory with the CSIRT org and the standard groups.
    Init {
        /// Draft file to create.
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "kcsirt")]
        csirt: String,
        #[arg(long, default_value = "KommuneCSIRT")]
        csirt_name: String,
    },
    /// Add (or replace) an organisation in the draft.
    AddOrg(AddOrg),
    /// Add a key from a member's public card (`varde keygen` wrote it).
    AddKey {
        #[arg(long)]
        file: PathBuf,
        /// The card (`<org>-<role>.pub.json`).
        #[arg(long)]
        card: PathBuf,
        /// Key expiry (RFC 3339), e.g. 2027-12-31T00:00:00Z.
        #[arg(long)]
        not_after: Option<Timestamp>,
    },
    /// Revoke a key (from now, or from --at).
    Revoke {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        key: KeyId,
        #[arg(long)]
        at: Option<Timestamp>,
    },
    /// Sign the draft with the root key. The version is raised above the
    /// previously signed one, so no signed file ever repeats a version.
    /// Give `--root-key` twice (old and new) to sign the hand-over version
    /// of a root rotation with both keys.
    Sign {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, required = true)]
        root_key: Vec<PathBuf>,
        /// Signed output; its current version (if any) is the floor.
        #[arg(long)]
        out: PathBuf,
        /// Days until the signed directory expires.
        #[arg(long, default_value_t = 180)]
        valid_days: i64,
    },
    /// Verify a signed directory against the pinned root keys.
    Verify {
        file: PathBuf,
        /// Root key(s) to trust; defaults to `directory.root_keys` of the config.
        #[arg(long = "root")]
        roots: Vec<String>,
    },
    /// Show a signed directory (verified) or a draft (unsigned, marked so).
    Show {
        file: PathBuf,
        #[arg(long = "root")]
        roots: Vec<String>,
    },
    /// Publish a signed directory to the KV bucket `varde-directory`.
    Push { file: PathBuf },
}

#[derive(clap::Args, Debug)]
pub struct AddOrg {
    #[arg(long)]
    pub file: PathBuf,
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum, default_value = "kommune")]
    pub kind: Kind,
    #[arg(long = "group")]
    pub groups: Vec<String>,
    #[arg(long = "cidr")]
    pub cidrs: Vec<ipnet::IpNet>,
    #[arg(long = "asn")]
    pub asns: Vec<u32>,
    #[arg(long = "domain")]
    pub domains: Vec<String>,
    /// Vendor/product the org runs, e.g. "citrix netscaler".
    #[arg(long = "asset")]
    pub assets: Vec<String>,
    #[arg(long = "matrix-user")]
    pub matrix_users: Vec<String>,
    #[arg(long = "matrix-server")]
    pub matrix_servers: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Kind {
    Kommune,
    Fylkeskommune,
    Iks,
    Csirt,
    Partner,
}

impl From<Kind> for OrgKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Kommune => OrgKind::Kommune,
            Kind::Fylkeskommune => OrgKind::Fylkeskommune,
            Kind::Iks => OrgKind::Iks,
            Kind::Csirt => OrgKind::Csirt,
            Kind::Partner => OrgKind::Partner,
        }
    }
}

fn read_draft(path: &Path) -> anyhow::Result<Directory> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a draft directory", path.display()))
}

fn write_draft(path: &Path, d: &Directory) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(d)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn roots_from(args: &[String], config: &Path) -> anyhow::Result<Vec<ed25519_dalek::VerifyingKey>> {
    if !args.is_empty() {
        return Ok(dirlib::parse_roots(args)?);
    }
    let s: Loaded<Settings> = Loaded::read(config)
        .context("no --root given, so the pinned keys are read from the configuration")?;
    Ok(s.roots()?)
}

pub async fn run(c: Command, config: &Path) -> anyhow::Result<()> {
    match c {
        Command::RootKeygen { out } => {
            let sk = keys::generate_signing_key();
            keys::write_private(
                &out,
                keys::signing_key_file(&sk, "varde directory ROOT key: keep offline").as_bytes(),
            )?;
            println!("root key written to {} (0600)", out.display());
            println!("pin this in every configuration under directory.root_keys:");
            println!("{}", keys::encode_verifying_key(&sk.verifying_key()));
        }
        Command::Init {
            file,
            csirt,
            csirt_name,
        } => {
            if file.exists() {
                bail!("{} exists; refusing to overwrite a draft", file.display());
            }
            let csirt = OrgId::new(csirt)?;
            let d = Directory {
                version: 0,
                issued: Timestamp::now(),
                expires: None,
                csirt: csirt.clone(),
                groups: STANDARD_GROUPS
                    .iter()
                    .map(|(id, name)| -> anyhow::Result<Group> {
                        Ok(Group {
                            id: GroupId::new(*id)?,
                            name: (*name).into(),
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
                orgs: vec![Org {
                    id: csirt,
                    name: csirt_name,
                    kind: OrgKind::Csirt,
                    groups: vec![],
                    keys: vec![],
                    matrix: Matrix::default(),
                    constituency: Constituency::default(),
                    assets: vec![],
                }],
            };
            write_draft(&file, &d)?;
            println!("draft directory written to {}", file.display());
        }
        Command::AddOrg(a) => {
            let mut d = read_draft(&a.file)?;
            let id = OrgId::new(&a.id)?;
            let groups = a
                .groups
                .iter()
                .map(|g| GroupId::new(g.as_str()))
                .collect::<Result<Vec<_>, _>>()?;
            for g in &groups {
                if !d.groups.iter().any(|x| &x.id == g) {
                    bail!("group `{g}` is not defined in {}", a.file.display());
                }
            }
            let keep_keys = d
                .orgs
                .iter()
                .find(|o| o.id == id)
                .map(|o| o.keys.clone())
                .unwrap_or_default();
            d.orgs.retain(|o| o.id != id);
            d.orgs.push(Org {
                id: id.clone(),
                name: a.name,
                kind: a.kind.into(),
                groups,
                keys: keep_keys,
                matrix: Matrix {
                    users: a.matrix_users,
                    servers: a.matrix_servers,
                },
                constituency: Constituency {
                    cidrs: a.cidrs.iter().map(|c| c.trunc()).collect(),
                    asns: a.asns,
                    domains: a.domains.iter().map(|s| s.trim().to_lowercase()).collect(),
                },
                assets: a.assets.iter().map(|s| s.trim().to_lowercase()).collect(),
            });
            write_draft(&a.file, &d)?;
            println!("org `{id}` written to {}", a.file.display());
        }
        Command::AddKey {
            file,
            card,
            not_after,
        } => {
            let mut d = read_draft(&file)?;
            let text = std::fs::read_to_string(&card)
                .with_context(|| format!("reading {}", card.display()))?;
            let Card { org, mut key } = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a public card", card.display()))?;
            keys::parse_recipient(&key.age)?;
            keys::parse_verifying_key(&key.ed25519)?;
            if keys::key_id_of(&key.age) != key.id {
                bail!(
                    "card {}: key id does not match its age recipient",
                    card.display()
                );
            }
            key.not_after = not_after.or(key.not_after);
            let o = d.orgs.iter_mut().find(|o| o.id == org).with_context(|| {
                format!("org `{org}` is not in {}; add-org first", file.display())
            })?;
            o.keys.retain(|k| k.id != key.id);
            let id = key.id;
            o.keys.push(key);
            write_draft(&file, &d)?;
            println!("key {id} added to `{org}`");
        }
        Command::Revoke { file, key, at } => {
            let mut d = read_draft(&file)?;
            let at = at.unwrap_or_else(Timestamp::now);
            let k = d
                .orgs
                .iter_mut()
                .flat_map(|o| o.keys.iter_mut())
                .find(|k| k.id == key)
                .with_context(|| format!("key {key} is not in {}", file.display()))?;
            k.revoked = Some(at);
            write_draft(&file, &d)?;
            println!("key {key} revoked from {at}; sign and push the directory to take effect");
        }
        Command::Sign {
            file,
            root_key,
            out,
            valid_days,
        } => {
            let mut d = read_draft(&file)?;
            let roots = root_key
                .iter()
                .map(|p| keys::load_signing_key(p))
                .collect::<Result<Vec<_>, _>>()?;
            // The previous output's version counts whoever signed it: after
            // a root rotation the new root must continue the numbering, or
            // every process would refuse its first directory as a rollback.
            let floor = std::fs::read(&out)
                .ok()
                .and_then(|b| dirlib::peek_version(&b).ok())
                .map(|(v, _)| v)
                .unwrap_or(0);
            d.version = d.version.max(floor + 1);
            d.issued = Timestamp::now();
            d.expires = Some(d.issued + jiff::SignedDuration::from_hours(24 * valid_days));
            let signed = dirlib::sign_all(&d, &roots)?;
            // Fail here, not in every member's process: each key alone
            // must accept it.
            for root in &roots {
                dirlib::verify(&signed, &[root.verifying_key()])?;
            }
            write_draft(&file, &d)?;
            std::fs::write(&out, &signed).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "signed directory version {} ({} orgs) written to {}",
                d.version,
                d.orgs.len(),
                out.display()
            );
        }
        Command::Verify { file, roots } => {
            let roots = roots_from(&roots, config)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let v = dirlib::verify(&bytes, &roots)?;
            println!(
                "OK: directory version {}, {} orgs, {} keys, issued {}{}",
                v.version(),
                v.orgs().len(),
                v.keys().count(),
                v.doc.issued,
                v.doc
                    .expires
                    .map(|e| format!(", expires {e}"))
                    .unwrap_or_default()
            );
        }
        Command::Show { file, roots } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if let Ok(d) = serde_json::from_slice::<Directory>(&bytes) {
                println!("UNSIGNED DRAFT {}", file.display());
                show(&d);
            } else {
                let roots = roots_from(&roots, config)?;
                let v: VerifiedDirectory = dirlib::verify(&bytes, &roots)?;
                println!("signed directory {} (verified)", file.display());
                show(&v.doc);
            }
        }
        Command::Push { file } => {
            let settings: Loaded<Settings> = Loaded::read(config)?;
            let roots = settings.roots()?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let client = settings.nats().connect().await?;
            let js = varde_bus::transport::jetstream(client);
            let v = varde_bus::directory_kv::push(&js, &bytes, &roots).await?;
            println!(
                "directory version {v} pushed to KV bucket {}",
                varde_bus::transport::DIRECTORY_BUCKET
            );
        }
    }
    Ok(())
}

fn show(d: &Directory) {
    println!(
        "version {}  issued {}  expires {}  csirt {}",
        d.version,
        d.issued,
        d.expires
            .map(|e| e.to_string())
            .unwrap_or_else(|| "never".into()),
        d.csirt
    );
    println!(
        "groups: {}",
        d.groups
            .iter()
            .map(|g| g.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{:<16} {:<14} {:<30} {:>4} {:>6}  groups",
        "org", "kind", "name", "keys", "cidrs"
    );
    for o in &d.orgs {
        println!(
            "{:<16} {:<14} {:<30} {:>4} {:>6}  {}",
            o.id,
            format!("{:?}", o.kind).to_lowercase(),
            super::render::safe(o.name.chars().take(30).collect::<String>()),
            o.keys.len(),
            o.constituency.cidrs.len(),
            o.groups
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        for k in &o.keys {
            let state = match (k.revoked, k.not_after) {
                (Some(at), _) => format!("REVOKED {at}"),
                (None, Some(na)) => format!("until {na}"),
                _ => String::new(),
            };
            println!(
                "    key {} {:<7} {} {}",
                k.id,
                format!("{:?}", k.role).to_lowercase(),
                super::render::safe(k.name.as_deref().unwrap_or("")),
                state
            );
        }
    }
}
