//! nkey seed files: `operator.nk` and `users/<name>.nk`, one per NATS user,
//! each 0600, made once and kept across runs (re-provisioning must not
//! lock out members who already hold their seed). A seed is handed to its
//! org; the server config only ever holds the public key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use nkeys::KeyPair;
use zeroize::Zeroizing;

use super::ProvisionError;
use super::plan::OPERATOR;

/// The seed files under a provisioning output directory.
pub struct Seeds {
    root: PathBuf,
}

/// A user's key pair and whether this run made it.
pub struct Seed {
    pub pair: KeyPair,
    pub path: PathBuf,
    pub created: bool,
}

impl Seeds {
    pub fn new(out: &Path) -> Seeds {
        Seeds {
            root: out.to_path_buf(),
        }
    }

    pub fn users_dir(&self) -> PathBuf {
        self.root.join("users")
    }

    pub fn operator_path(&self) -> PathBuf {
        self.root.join(format!("{OPERATOR}.nk"))
    }

    pub fn member_path(&self, name: &str) -> PathBuf {
        self.users_dir().join(format!("{name}.nk"))
    }

    /// Names of the member seeds present now.
    pub fn existing_members(&self) -> Result<BTreeSet<String>, ProvisionError> {
        let dir = self.users_dir();
        let mut out = BTreeSet::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => return Err(ProvisionError::Read { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| ProvisionError::Read {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".nk")) {
                out.insert(stem.to_string());
            }
        }
        Ok(out)
    }

    pub fn operator(&self) -> Result<Seed, ProvisionError> {
        load_or_create(&self.operator_path())
    }

    pub fn member(&self, name: &str) -> Result<Seed, ProvisionError> {
        let dir = self.users_dir();
        std::fs::create_dir_all(&dir).map_err(|source| ProvisionError::Write {
            path: dir.clone(),
            source,
        })?;
        load_or_create(&self.member_path(name))
    }

    /// Removes a retired user's seed and its client settings.
    pub fn remove_member(&self, name: &str) -> Result<(), ProvisionError> {
        for path in [
            self.member_path(name),
            self.users_dir().join(format!("{name}.toml")),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ProvisionError::Write { path, source }),
            }
        }
        Ok(())
    }
}

/// Reads a user seed (refusing a file readable by others), or makes one.
pub fn load_or_create(path: &Path) -> Result<Seed, ProvisionError> {
    if path.exists() {
        return Ok(Seed {
            pair: load(path)?,
            path: path.to_path_buf(),
            created: false,
        });
    }
    let pair = KeyPair::new_user();
    let seed = Zeroizing::new(pair.seed().map_err(|e| ProvisionError::Seed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?);
    let text = Zeroizing::new(format!("{}\n", seed.as_str()));
    varde_bus::keys::write_private(path, text.as_bytes())?;
    Ok(Seed {
        pair,
        path: path.to_path_buf(),
        created: true,
    })
}

/// Loads a user nkey seed file (`SU…`).
pub fn load(path: &Path) -> Result<KeyPair, ProvisionError> {
    varde_bus::keys::check_private(path)?;
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| ProvisionError::Read {
                path: path.to_path_buf(),
                source,
            })?,
        );
    let bad = |reason: String| ProvisionError::Seed {
        path: path.to_path_buf(),
        reason,
    };
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SU"))
        .ok_or_else(|| bad("no user seed (a line starting with SU)".into()))?;
    KeyPair::from_seed(line).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn seeds_are_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let seeds = Seeds::new(d.path());
        let first = seeds.member("gjovik").unwrap();
        assert!(first.created);
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(first.pair.public_key().starts_with('U'));
        let again = seeds.member("gjovik").unwrap();
        assert!(!again.created);
        assert_eq!(again.pair.public_key(), first.pair.public_key());
        assert_eq!(
            seeds
                .existing_members()
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["gjovik".to_string()]
        );

        std::fs::set_permissions(&first.path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = seeds.member("gjovik").err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");

        std::fs::write(d.path().join("operator.nk"), "not a seed\n").unwrap();
        std::fs::set_permissions(
            d.path().join("operator.nk"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let e = seeds.operator().err().unwrap().to_string();
        assert!(e.contains("operator.nk") && e.contains("SU"), "{e}");

        seeds.remove_member("gjovik").unwrap();
        assert!(seeds.existing_members().unwrap().is_empty());
    }
}
