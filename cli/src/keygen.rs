//! `varde keygen`: a new identity (or an imported `age-keygen` identity)
//! plus the public card the CSIRT adds to the directory.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use varde_schemas::OrgId;
use varde_schemas::directory::{Key, KeyRole};

use varde_bus::keys::{self, Identity};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Organisation id (slug), e.g. `gjovik`.
    #[arg(long)]
    pub org: String,
    /// What the key is for.
    #[arg(long, value_enum, default_value = "org")]
    pub role: Role,
    /// Human name (person's name, host, "bridge"); also part of file names.
    #[arg(long)]
    pub name: Option<String>,
    /// Person keys: the person's Matrix user id, for RED room checks.
    #[arg(long)]
    pub matrix_user: Option<String>,
    /// Directory to write the files into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Import an existing age identity file (e.g. made by `age-keygen`)
    /// instead of generating one; only the signing key is generated.
    #[arg(long)]
    pub age_identity: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Role {
    Org,
    Person,
    Device,
    Bridge,
}

impl From<Role> for KeyRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Org => KeyRole::Org,
            Role::Person => KeyRole::Person,
            Role::Device => KeyRole::Device,
            Role::Bridge => KeyRole::Bridge,
        }
    }
}

/// A key's public half with its org: what a member sends to the CSIRT.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub org: OrgId,
    pub key: Key,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let org = OrgId::new(&a.org)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let role: KeyRole = a.role.into();
    let stem = file_stem(&org, a.role, a.name.as_deref());
    let age_path = a.out.join(format!("{stem}.age"));
    let sign_path = a.out.join(format!("{stem}.sign"));
    let card_path = a.out.join(format!("{stem}.pub.json"));

    let age = match &a.age_identity {
        Some(p) => keys::load_age_identity(p)?,
        None => age::x25519::Identity::generate(),
    };
    let signing = keys::generate_signing_key();
    let id = Identity::from_parts(org.clone(), age, signing);
    if a.age_identity.is_none() {
        keys::write_private(&age_path, keys::age_identity_file(&id.age).as_bytes())?;
    }
    keys::write_private(
        &sign_path,
        keys::signing_key_file(
            &id.signing,
            &format!("varde signing key, org {org}, key {}", id.key_id),
        )
        .as_bytes(),
    )?;
    let mut key = id.public_key(role, a.name.clone());
    key.matrix_user = a.matrix_user.clone();
    let card = Card { org, key };
    let mut text = serde_json::to_string_pretty(&card)?;
    text.push('\n');
    std::fs::write(&card_path, text).with_context(|| format!("writing {}", card_path.display()))?;

    let age_shown = a
        .age_identity
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| age_path.display().to_string());
    println!("key id       {}", id.key_id);
    println!("age identity {age_shown} (0600)");
    println!("signing key  {} (0600)", sign_path.display());
    println!(
        "public card  {} (send this to the CSIRT)",
        card_path.display()
    );
    Ok(())
}

fn file_stem(org: &OrgId, role: Role, name: Option<&str>) -> String {
    let role = format!("{role:?}").to_lowercase();
    let name: Option<String> = name.map(|n| {
        n.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    });
    match name {
        Some(n) if !n.is_empty() => format!("{org}-{role}-{n}"),
        _ => format!("{org}-{role}"),
    }
}
