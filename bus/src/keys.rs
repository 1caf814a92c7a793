//! Key material: an identity is an age X25519 identity (for decryption) and
//! an ed25519 signing key, held in two files that must be private (0600).
//!
//! The age file is a standard age identity file, so one made by `age-keygen`
//! can be imported; the signing key file is Varde's own one-line format.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use varde_schemas::directory::{Key, KeyRole};
use varde_schemas::{KeyId, OrgId};
use zeroize::Zeroizing;

const SIGNING_PREFIX: &str = "VARDE-ED25519-SECRET-KEY-";
const ED25519_PUB_PREFIX: &str = "ed25519:";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "key file {path} is readable or writable by group or others (mode {mode:o}); run `chmod 600 {path}` and rotate the key if others may have read it"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path} already exists; remove it first or pick another --out")]
    Exists { path: PathBuf },
    #[error("{path} holds no age identity (expected a line starting with AGE-SECRET-KEY-1)")]
    NoAgeIdentity { path: PathBuf },
    #[error("{path} holds {count} age identities; a Varde identity file must hold exactly one")]
    ManyAgeIdentities { path: PathBuf, count: usize },
    #[error("{path}: invalid age identity: {reason}")]
    BadAgeIdentity { path: PathBuf, reason: String },
    #[error("{path} holds no Varde signing key (expected a line starting with {SIGNING_PREFIX})")]
    NoSigningKey { path: PathBuf },
    #[error("{path}: invalid signing key: {reason}")]
    BadSigningKey { path: PathBuf, reason: String },
    #[error("`{value}` is not an ed25519 public key (expected `ed25519:` + base64 of 32 bytes)")]
    BadVerifyingKey { value: String },
    #[error("`{value}` is not an age X25519 recipient (expected `age1…`)")]
    BadRecipient { value: String },
}

/// Key id of an `age1…` recipient: first 16 hex digits of its SHA-256.
pub fn key_id_of(age_recipient: &str) -> KeyId {
    let digest = Sha256::digest(age_recipient.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    KeyId(id)
}

pub fn encode_verifying_key(vk: &VerifyingKey) -> String {
    format!(
        "{ED25519_PUB_PREFIX}{}",
        STANDARD_NO_PAD.encode(vk.as_bytes())
    )
}

pub fn parse_verifying_key(s: &str) -> Result<VerifyingKey, KeyError> {
    let bad = || KeyError::BadVerifyingKey {
        value: s.chars().take(80).collect(),
    };
    let b64 = s.trim().strip_prefix(ED25519_PUB_PREFIX).ok_or_else(bad)?;
    let bytes = STANDARD_NO_PAD
        .decode(b64.trim_end_matches('='))
        .map_err(|_| bad())?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
    VerifyingKey::from_bytes(&arr).map_err(|_| bad())
}

pub fn parse_recipient(s: &str) -> Result<age::x25519::Recipient, KeyError> {
    age::x25519::Recipient::from_str(s.trim()).map_err(|_| KeyError::BadRecipient {
        value: s.chars().take(80).collect(),
    })
}

/// Refuses a key file that group or others can read or write.
pub fn check_private(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

/// Reads a key file after checking its permissions.
fn read_private(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    check_private(path)?;
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes a new private file with mode 0600 from the start (never a window
/// where it is world-readable), refusing to overwrite.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            KeyError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Loads the single X25519 identity from a standard age identity file.
pub fn load_age_identity(path: &Path) -> Result<age::x25519::Identity, KeyError> {
    let text = read_private(path)?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .collect();
    match lines.as_slice() {
        [] => Err(KeyError::NoAgeIdentity {
            path: path.to_path_buf(),
        }),
        [one] => age::x25519::Identity::from_str(one).map_err(|e| KeyError::BadAgeIdentity {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        many => Err(KeyError::ManyAgeIdentities {
            path: path.to_path_buf(),
            count: many.len(),
        }),
    }
}

pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = read_private(path)?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(SIGNING_PREFIX))
        .ok_or_else(|| KeyError::NoSigningKey {
            path: path.to_path_buf(),
        })?;
    let b64 = &line[SIGNING_PREFIX.len()..];
    let bytes =
        Zeroizing::new(
            STANDARD_NO_PAD
                .decode(b64)
                .map_err(|e| KeyError::BadSigningKey {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?,
        );
    let seed: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::BadSigningKey {
            path: path.to_path_buf(),
            reason: format!("expected 32 bytes, found {}", bytes.len()),
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Text of a signing key file.
pub fn signing_key_file(sk: &SigningKey, comment: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# {comment}\n# public key: {}\n{SIGNING_PREFIX}{}\n",
        encode_verifying_key(&sk.verifying_key()),
        STANDARD_NO_PAD.encode(sk.to_bytes())
    ))
}

/// Text of an age identity file, in the layout `age-keygen` writes.
pub fn age_identity_file(id: &age::x25519::Identity) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# created: {}\n# public key: {}\n{}\n",
        Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or(Timestamp::now()),
        id.to_public(),
        id.to_string().expose_secret()
    ))
}

pub fn generate_signing_key() -> SigningKey {
    SigningKey::generate(&mut rand_core::OsRng)
}

/// A loaded identity: what a process needs to sign and to open.
pub struct Identity {
    pub org: OrgId,
    pub key_id: KeyId,
    pub recipient: String,
    pub age: age::x25519::Identity,
    pub signing: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("org", &self.org)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn from_parts(org: OrgId, age: age::x25519::Identity, signing: SigningKey) -> Self {
        let recipient = age.to_public().to_string();
        Identity {
            org,
            key_id: key_id_of(&recipient),
            recipient,
            age,
            signing,
        }
    }

    /// Loads both key files, refusing either if it is not private.
    pub fn load(org: OrgId, age_path: &Path, signing_path: &Path) -> Result<Self, KeyError> {
        let age = load_age_identity(age_path)?;
        let signing = load_signing_key(signing_path)?;
        Ok(Identity::from_parts(org, age, signing))
    }

    /// A fresh identity, in memory only (tests, benches).
    pub fn generate(org: OrgId) -> Self {
        Identity::from_parts(
            org,
            age::x25519::Identity::generate(),
            generate_signing_key(),
        )
    }

    /// A UUID derived from `parts` and this identity's signing secret: the
    /// same every time this identity does the same thing (a delivery
    /// receipt for one advisory), so the broker's dedup window and the
    /// receiver keep one, and no one without the key can compute it first
    /// (and have the broker drop the real one as a duplicate).
    pub fn derived_id(&self, parts: &[&str]) -> uuid::Uuid {
        let key = blake3::derive_key(
            "varde 2026-12 derived envelope ids",
            self.signing.as_bytes(),
        );
        let mut h = blake3::Hasher::new_keyed(&key);
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        let mut b = [0u8; 16];
        b.copy_from_slice(&h.finalize().as_bytes()[..16]);
        uuid::Builder::from_custom_bytes(b).into_uuid()
    }

    /// The directory entry describing this key's public half.
    pub fn public_key(&self, role: KeyRole, name: Option<String>) -> Key {
        Key {
            id: self.key_id,
            role,
            name,
            age: self.recipient.clone(),
            ed25519: encode_verifying_key(&self.signing.verifying_key()),
            not_after: None,
            revoked: None,
            matrix_user: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_per_identity_and_differ_between_identities() {
        let a = Identity::generate(OrgId::new("gjovik").unwrap());
        let b = Identity::generate(OrgId::new("gjovik").unwrap());
        let id = a.derived_id(&["delivered", "KCSIRT-2026-0042"]);
        assert_eq!(id, a.derived_id(&["delivered", "KCSIRT-2026-0042"]));
        assert_ne!(id, a.derived_id(&["delivered", "KCSIRT-2026-0043"]));
        assert_ne!(id, a.derived_id(&["deliveredKCSIRT-2026-0042"]));
        assert_ne!(id, b.derived_id(&["delivered", "KCSIRT-2026-0042"]));
    }

    #[test]
    fn refuses_readable_key_files_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate(OrgId::new("gjovik").unwrap());
        let age_path = dir.path().join("k.age");
        let sig_path = dir.path().join("k.sign");
        write_private(&age_path, age_identity_file(&id.age).as_bytes()).unwrap();
        write_private(&sig_path, signing_key_file(&id.signing, "test").as_bytes()).unwrap();
        let back = Identity::load(id.org.clone(), &age_path, &sig_path).unwrap();
        assert_eq!(back.key_id, id.key_id);
        assert_eq!(back.signing.verifying_key(), id.signing.verifying_key());

        assert!(matches!(
            write_private(&age_path, b"x"),
            Err(KeyError::Exists { .. })
        ));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&age_path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let err = Identity::load(id.org.clone(), &age_path, &sig_path).unwrap_err();
            assert!(
                matches!(err, KeyError::Permissions { mode: 0o640, .. }),
                "{err}"
            );
            assert!(err.to_string().contains("chmod 600"));
        }
    }

    #[test]
    fn verifying_key_text_round_trips() {
        let sk = generate_signing_key();
        let s = encode_verifying_key(&sk.verifying_key());
        assert_eq!(parse_verifying_key(&s).unwrap(), sk.verifying_key());
        assert!(parse_verifying_key("ed25519:abc").is_err());
        assert!(parse_verifying_key("nope").is_err());
    }

    #[test]
    fn key_id_is_sha256_prefix_of_recipient() {
        // echo -n age1... | sha256sum, first 16 hex digits
        let r = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let want = hex::encode(&Sha256::digest(r.as_bytes())[..8]);
        assert_eq!(key_id_of(r).to_hex(), want);
    }
}
