//! The signed member directory: signing, verification against pinned root
//! keys, rollback protection, and the lookup index every seal and open uses.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jiff::Timestamp;
use varde_schemas::directory::{Directory, Key, Org, RootSignature, SignedDirectory};
use varde_schemas::{GroupId, KeyId, OrgId};

use crate::keys::{self, encode_verifying_key, key_id_of};

/// Domain separation: a directory signature can never be confused with an
/// envelope signature made by the same key.
const SIGNING_CONTEXT: &[u8] = b"varde/v1/directory\n";

/// Largest directory accepted (370 orgs with 50,000 CIDRs is ~2 MiB).
pub const MAX_DIRECTORY_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory is {size} bytes; the limit is {MAX_DIRECTORY_BYTES}")]
    TooLarge { size: usize },
    #[error("directory is not valid signed-directory JSON: {0}")]
    Malformed(String),
    #[error("directory is unsigned; only a directory signed by a pinned root key is accepted")]
    Unsigned,
    #[error(
        "directory is signed by {keys:?}, none of which is a pinned root key; check `directory.root_keys` in your configuration"
    )]
    WrongKey { keys: Vec<String> },
    #[error("directory signature by pinned root key {key} does not verify: the file was altered")]
    BadSignature { key: String },
    #[error(
        "directory version {got} is older than version {have} already accepted; refusing a rollback"
    )]
    RolledBack { have: u64, got: u64 },
    #[error(
        "directory version {version} differs from the version {version} already accepted; a root key signed two different directories with one version number"
    )]
    Equivocation { version: u64 },
    #[error("directory version {version} expired at {expires}; ask the CSIRT for a fresh one")]
    Expired { version: u64, expires: Timestamp },
    #[error("directory is inconsistent: {0}")]
    Invalid(String),
    #[error("no pinned root key configured; set `directory.root_keys`")]
    NoRootKeys,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state file {path} records directory version {version}, signed by root key(s) {keys:?}, none of which is pinned in `directory.root_keys` any more; the directory offered now (version {offered}) is not newer, so it is refused. If the CSIRT rotated its root key: get the newest directory signed by the new root (its version continues above every version the old root signed) and point `directory.file` at it; do not delete the state file, it is your rollback protection"
    )]
    StateRootNotPinned {
        path: PathBuf,
        version: u64,
        keys: Vec<String>,
        offered: u64,
    },
    #[error(
        "the state file {path} records directory version {version}, signed by root key(s) {keys:?}, none of which is pinned in `directory.root_keys` any more, and no other directory was offered. If the CSIRT rotated its root key: point `directory.file` at the newest directory signed by the new root; do not delete the state file, it is your rollback protection"
    )]
    StateOnlyUnpinned {
        path: PathBuf,
        version: u64,
        keys: Vec<String>,
    },
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}

/// Serialises and signs `dir` with `root`, appending to any signatures that
/// `also` carries for the same bytes (multi-root signing is possible by
/// signing the same bytes with each key).
pub fn sign(dir: &Directory, root: &SigningKey) -> Result<Vec<u8>, DirectoryError> {
    let body = serde_json::to_string_pretty(dir)
        .map_err(|e| DirectoryError::Invalid(format!("cannot serialise: {e}")))?;
    let sig = root.sign(&signed_message(body.as_bytes()));
    let raw = serde_json::value::RawValue::from_string(body)
        .map_err(|e| DirectoryError::Invalid(e.to_string()))?;
    let signed = SignedDirectory {
        directory: raw,
        signatures: vec![RootSignature {
            key: encode_verifying_key(&root.verifying_key()),
            sig: STANDARD_NO_PAD.encode(sig.to_bytes()),
        }],
    };
    let mut out = serde_json::to_vec_pretty(&signed)
        .map_err(|e| DirectoryError::Invalid(format!("cannot serialise: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// Signs `dir` with every key in `roots` (one signature each over the same
/// bytes). During a root rotation the CSIRT signs one version with the old
/// and the new root: a process that still pins only the old key and one
/// that already pins only the new key both accept it.
pub fn sign_all(dir: &Directory, roots: &[SigningKey]) -> Result<Vec<u8>, DirectoryError> {
    let Some((first, rest)) = roots.split_first() else {
        return Err(DirectoryError::NoRootKeys);
    };
    let one = sign(dir, first)?;
    if rest.is_empty() {
        return Ok(one);
    }
    let mut signed: SignedDirectory =
        serde_json::from_slice(&one).map_err(|e| DirectoryError::Malformed(e.to_string()))?;
    let message = signed_message(signed.directory.get().as_bytes());
    for root in rest {
        signed.signatures.push(RootSignature {
            key: encode_verifying_key(&root.verifying_key()),
            sig: STANDARD_NO_PAD.encode(root.sign(&message).to_bytes()),
        });
    }
    let mut out = serde_json::to_vec_pretty(&signed)
        .map_err(|e| DirectoryError::Invalid(format!("cannot serialise: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// The version and signer keys a signed directory claims, without checking
/// any signature. Only for numbers that must never go down (the next
/// version to sign, the floor kept in a state file written by an earlier
/// root); never a reason to trust the content.
pub fn peek_version(bytes: &[u8]) -> Result<(u64, Vec<String>), DirectoryError> {
    peek(bytes).map(|(doc, keys)| (doc.version, keys))
}

fn peek(bytes: &[u8]) -> Result<(Directory, Vec<String>), DirectoryError> {
    let signed: SignedDirectory =
        serde_json::from_slice(bytes).map_err(|e| DirectoryError::Malformed(e.to_string()))?;
    let doc: Directory = serde_json::from_str(signed.directory.get())
        .map_err(|e| DirectoryError::Malformed(e.to_string()))?;
    let keys = signed.signatures.into_iter().map(|s| s.key).collect();
    Ok((doc, keys))
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(body);
    m
}

/// Verifies a signed directory against the pinned root keys: the signature
/// is checked over the exact bytes of the `directory` value before that value
/// is parsed.
pub fn verify(bytes: &[u8], roots: &[VerifyingKey]) -> Result<VerifiedDirectory, DirectoryError> {
    if roots.is_empty() {
        return Err(DirectoryError::NoRootKeys);
    }
    if bytes.len() > MAX_DIRECTORY_BYTES {
        return Err(DirectoryError::TooLarge { size: bytes.len() });
    }
    let signed: SignedDirectory =
        serde_json::from_slice(bytes).map_err(|e| DirectoryError::Malformed(e.to_string()))?;
    if signed.signatures.is_empty() {
        return Err(DirectoryError::Unsigned);
    }
    let body = signed.directory.get().as_bytes();
    let message = signed_message(body);
    let mut pinned_but_bad = None;
    let mut verified = false;
    for s in &signed.signatures {
        let Ok(vk) = keys::parse_verifying_key(&s.key) else {
            continue;
        };
        if !roots.contains(&vk) {
            continue;
        }
        let sig = STANDARD_NO_PAD
            .decode(s.sig.trim_end_matches('='))
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b));
        match sig {
            Some(sig) if vk.verify(&message, &sig).is_ok() => {
                verified = true;
                break;
            }
            _ => pinned_but_bad = Some(s.key.clone()),
        }
    }
    if !verified {
        return Err(match pinned_but_bad {
            Some(key) => DirectoryError::BadSignature { key },
            None => DirectoryError::WrongKey {
                keys: signed.signatures.iter().map(|s| s.key.clone()).collect(),
            },
        });
    }
    let doc: Directory =
        serde_json::from_slice(body).map_err(|e| DirectoryError::Malformed(e.to_string()))?;
    if let Some(expires) = doc.expires
        && expires < Timestamp::now()
    {
        return Err(DirectoryError::Expired {
            version: doc.version,
            expires,
        });
    }
    VerifiedDirectory::index(doc, bytes.to_vec())
}

/// A key resolved from the directory, with its parsed public halves.
#[derive(Clone)]
pub struct KeyEntry {
    pub org: usize,
    pub key: Key,
    pub recipient: age::x25519::Recipient,
    pub verifying: VerifyingKey,
}

impl KeyEntry {
    /// Why this key may not be used at `now`, if it may not.
    pub fn unusable(&self, now: Timestamp) -> Option<KeyState> {
        if let Some(at) = self.key.revoked
            && at <= now
        {
            return Some(KeyState::Revoked(at));
        }
        if let Some(at) = self.key.not_after
            && at <= now
        {
            return Some(KeyState::Expired(at));
        }
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Revoked(Timestamp),
    Expired(Timestamp),
}

/// A directory whose signature checked out, with lookup tables.
pub struct VerifiedDirectory {
    pub doc: Directory,
    /// The signed bytes as received, for re-distribution and persistence.
    pub signed: Vec<u8>,
    keys: HashMap<KeyId, KeyEntry>,
    orgs: HashMap<OrgId, usize>,
    groups: HashMap<GroupId, Vec<usize>>,
    matrix_users: HashMap<String, usize>,
    matrix_servers: HashMap<String, usize>,
}

impl std::fmt::Debug for VerifiedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedDirectory")
            .field("version", &self.doc.version)
            .field("orgs", &self.doc.orgs.len())
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl VerifiedDirectory {
    /// Checks internal consistency and builds the lookup tables.
    fn index(doc: Directory, signed: Vec<u8>) -> Result<Self, DirectoryError> {
        let inv = |s: String| Err(DirectoryError::Invalid(s));
        let defined: HashSet<&GroupId> = doc.groups.iter().map(|g| &g.id).collect();
        let mut keys = HashMap::new();
        let mut orgs = HashMap::new();
        let mut groups: HashMap<GroupId, Vec<usize>> = HashMap::new();
        let mut matrix_users = HashMap::new();
        let mut matrix_servers = HashMap::new();
        for (i, org) in doc.orgs.iter().enumerate() {
            if orgs.insert(org.id.clone(), i).is_some() {
                return inv(format!("org `{}` is listed twice", org.id));
            }
            for g in &org.groups {
                if !defined.is_empty() && !defined.contains(g) {
                    return inv(format!("org `{}` is in undefined group `{g}`", org.id));
                }
                groups.entry(g.clone()).or_default().push(i);
            }
            for k in &org.keys {
                let recipient = keys::parse_recipient(&k.age)?;
                let verifying = keys::parse_verifying_key(&k.ed25519)?;
                if key_id_of(&k.age) != k.id {
                    return inv(format!(
                        "key {} of org `{}` has an id that is not the SHA-256 prefix of its age recipient",
                        k.id, org.id
                    ));
                }
                let entry = KeyEntry {
                    org: i,
                    key: k.clone(),
                    recipient,
                    verifying,
                };
                if keys.insert(k.id, entry).is_some() {
                    return inv(format!("key {} is listed twice", k.id));
                }
            }
            for u in &org.matrix.users {
                if matrix_users.insert(u.clone(), i).is_some() {
                    return inv(format!("Matrix user {u} belongs to two orgs"));
                }
            }
            for s in &org.matrix.servers {
                if matrix_servers.insert(s.clone(), i).is_some() {
                    return inv(format!("Matrix server {s} belongs to two orgs"));
                }
            }
        }
        if !orgs.contains_key(&doc.csirt) {
            return inv(format!("csirt org `{}` is not in the directory", doc.csirt));
        }
        Ok(VerifiedDirectory {
            doc,
            signed,
            keys,
            orgs,
            groups,
            matrix_users,
            matrix_servers,
        })
    }

    pub fn version(&self) -> u64 {
        self.doc.version
    }

    pub fn key(&self, id: &KeyId) -> Option<&KeyEntry> {
        self.keys.get(id)
    }

    pub fn keys(&self) -> impl Iterator<Item = &KeyEntry> {
        self.keys.values()
    }

    pub fn org(&self, id: &str) -> Option<&Org> {
        self.orgs.get(id).map(|&i| &self.doc.orgs[i])
    }

    pub fn org_at(&self, idx: usize) -> &Org {
        &self.doc.orgs[idx]
    }

    pub fn org_index(&self, id: &str) -> Option<usize> {
        self.orgs.get(id).copied()
    }

    pub fn orgs(&self) -> &[Org] {
        &self.doc.orgs
    }

    /// Orgs in a group, by index.
    pub fn group_members(&self, g: &GroupId) -> &[usize] {
        self.groups.get(g).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn group_exists(&self, g: &GroupId) -> bool {
        self.doc.groups.iter().any(|d| &d.id == g) || self.groups.contains_key(g)
    }

    /// The org a Matrix user belongs to: listed by user id, or on a
    /// homeserver the org owns.
    pub fn org_of_matrix_user(&self, user_id: &str) -> Option<&Org> {
        if let Some(&i) = self.matrix_users.get(user_id) {
            return Some(&self.doc.orgs[i]);
        }
        let server = user_id.split_once(':').map(|(_, s)| s)?;
        self.matrix_servers.get(server).map(|&i| &self.doc.orgs[i])
    }

    /// Active (not revoked, not expired) keys of an org.
    pub fn active_keys_of(&self, org: &Org, now: Timestamp) -> impl Iterator<Item = &KeyEntry> {
        org.keys
            .iter()
            .filter_map(|k| self.keys.get(&k.id))
            .filter(move |e| e.unusable(now).is_none())
    }
}

/// The current directory, swapped atomically when a newer signed version
/// arrives (from a file or the KV bucket), with rollback protection that
/// survives restarts through a state file.
#[derive(Clone)]
pub struct DirectoryHandle {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<VerifiedDirectory>,
    roots: Vec<VerifyingKey>,
    state: Option<PathBuf>,
    update_lock: std::sync::Mutex<()>,
}

/// What `DirectoryHandle::offer` did with a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Accepted { from: u64, to: u64 },
    Unchanged,
}

impl DirectoryHandle {
    /// Starts from `bytes`, checked against the roots and against the highest
    /// version recorded in `state` (a file the handle keeps up to date).
    pub fn new(
        bytes: &[u8],
        roots: Vec<VerifyingKey>,
        state: Option<PathBuf>,
    ) -> Result<Self, DirectoryError> {
        let mut dir = verify(bytes, &roots)?;
        if let Some(path) = &state {
            check_unpinned_state(path, &roots, &dir)?;
        }
        if let Some(path) = &state
            && let Some((prev, prev_expired)) = read_state(path, &roots)?
        {
            if prev.version() > dir.version() && prev_expired {
                return Err(DirectoryError::RolledBack {
                    have: prev.version(),
                    got: dir.version(),
                });
            } else if prev.version() > dir.version() {
                // The older file is refused; the newer copy we accepted
                // earlier (e.g. from the KV bucket) stays in force.
                tracing::warn!(
                    offered = dir.version(),
                    kept = prev.version(),
                    state = %path.display(),
                    "refusing directory rollback; keeping the newer version accepted earlier"
                );
                dir = prev;
            } else {
                check_not_older(&prev, &dir)?;
            }
        }
        if let Some(path) = &state {
            write_state(path, &dir.signed)?;
        }
        Ok(DirectoryHandle {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(dir),
                roots,
                state,
                update_lock: std::sync::Mutex::new(()),
            }),
        })
    }

    /// Starts from the state file alone (the last accepted directory).
    pub fn from_state(roots: Vec<VerifyingKey>, state: PathBuf) -> Result<Self, DirectoryError> {
        let bytes = std::fs::read(&state).map_err(|source| DirectoryError::Read {
            path: state.clone(),
            source,
        })?;
        match verify(&bytes, &roots) {
            Err(DirectoryError::WrongKey { keys }) => Err(DirectoryError::StateOnlyUnpinned {
                version: peek_version(&bytes)?.0,
                path: state,
                keys,
            }),
            _ => Self::new(&bytes, roots, Some(state)),
        }
    }

    pub fn current(&self) -> Arc<VerifiedDirectory> {
        self.inner.current.load_full()
    }

    pub fn roots(&self) -> &[VerifyingKey] {
        &self.inner.roots
    }

    /// Offers a signed directory: accepted if newer, ignored if identical,
    /// refused if older or if it equivocates.
    pub fn offer(&self, bytes: &[u8]) -> Result<Offer, DirectoryError> {
        let new = verify(bytes, &self.inner.roots)?;
        // One updater at a time so two sources cannot interleave a rollback.
        let _g = self
            .inner
            .update_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let cur = self.inner.current.load();
        if new.version() == cur.version() {
            return if new.doc == cur.doc {
                Ok(Offer::Unchanged)
            } else {
                Err(DirectoryError::Equivocation {
                    version: new.version(),
                })
            };
        }
        check_not_older(&cur, &new)?;
        if let Some(path) = &self.inner.state {
            write_state(path, &new.signed)?;
        }
        let from = cur.version();
        let to = new.version();
        self.inner.current.store(Arc::new(new));
        Ok(Offer::Accepted { from, to })
    }
}

fn check_not_older(
    have: &VerifiedDirectory,
    got: &VerifiedDirectory,
) -> Result<(), DirectoryError> {
    if got.version() < have.version() {
        return Err(DirectoryError::RolledBack {
            have: have.version(),
            got: got.version(),
        });
    }
    if got.version() == have.version() && got.doc != have.doc {
        return Err(DirectoryError::Equivocation {
            version: got.version(),
        });
    }
    Ok(())
}

/// A state file written while another root key was pinned (the CSIRT has
/// rotated its root since this process last ran). Its signature can no
/// longer be checked, but its version is still the floor: the offered
/// directory, signed by a pinned root, must not be older. If it is newer,
/// the state is simply replaced below, so the version number and with it
/// the rollback protection carry over to the new root.
fn check_unpinned_state(
    path: &Path,
    roots: &[VerifyingKey],
    offered: &VerifiedDirectory,
) -> Result<(), DirectoryError> {
    let Ok(bytes) = std::fs::read(path) else {
        // Missing or unreadable: `read_state` reports it.
        return Ok(());
    };
    match verify(&bytes, roots) {
        Err(DirectoryError::WrongKey { keys }) => {
            let (old, _) = peek(&bytes)?;
            let version = old.version;
            let same = version == offered.version() && old == offered.doc;
            if version > offered.version() || (version == offered.version() && !same) {
                return Err(DirectoryError::StateRootNotPinned {
                    path: path.to_path_buf(),
                    version,
                    keys,
                    offered: offered.version(),
                });
            }
            tracing::info!(
                state = %path.display(),
                old_version = version,
                new_version = offered.version(),
                "state file was signed by a root key no longer pinned; adopting the newer directory signed by a pinned root"
            );
            // Replaced in one atomic rename: there is never a moment
            // without a floor on disk.
            write_state(path, &offered.signed)
        }
        _ => Ok(()),
    }
}

/// The last accepted directory and whether it has expired since.
fn read_state(
    path: &Path,
    roots: &[VerifyingKey],
) -> Result<Option<(VerifiedDirectory, bool)>, DirectoryError> {
    match std::fs::read(path) {
        Ok(bytes) => match verify(&bytes, roots) {
            Ok(d) => Ok(Some((d, false))),
            // An expired recorded copy still proves which version we saw.
            Err(DirectoryError::Expired { version, .. }) => {
                let signed: SignedDirectory = serde_json::from_slice(&bytes)
                    .map_err(|e| DirectoryError::Malformed(e.to_string()))?;
                let doc: Directory = serde_json::from_str(signed.directory.get())
                    .map_err(|e| DirectoryError::Malformed(e.to_string()))?;
                debug_assert_eq!(doc.version, version);
                Ok(Some((VerifiedDirectory::index(doc, bytes)?, true)))
            }
            Err(e) => Err(e),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DirectoryError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Atomic replace: write a sibling temp file, then rename over.
fn write_state(path: &Path, bytes: &[u8]) -> Result<(), DirectoryError> {
    let werr = |source| DirectoryError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(werr)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// Parses configured root keys (`ed25519:…`).
pub fn parse_roots(values: &[String]) -> Result<Vec<VerifyingKey>, DirectoryError> {
    if values.is_empty() {
        return Err(DirectoryError::NoRootKeys);
    }
    values
        .iter()
        .map(|v| keys::parse_verifying_key(v).map_err(DirectoryError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Identity, generate_signing_key};
    use varde_schemas::directory::{KeyRole, OrgKind};

    fn dir(version: u64) -> (Directory, Identity) {
        let id = Identity::generate(OrgId::new("kcsirt").unwrap());
        let d = Directory {
            version,
            issued: Timestamp::now(),
            expires: None,
            csirt: id.org.clone(),
            groups: vec![],
            orgs: vec![Org {
                id: id.org.clone(),
                name: "KommuneCSIRT".into(),
                kind: OrgKind::Csirt,
                groups: vec![],
                keys: vec![id.public_key(KeyRole::Org, None)],
                matrix: Default::default(),
                constituency: Default::default(),
                assets: vec![],
            }],
        };
        (d, id)
    }

    #[test]
    fn verifies_and_refuses() {
        let root = generate_signing_key();
        let other = generate_signing_key();
        let (d, _) = dir(3);
        let bytes = sign(&d, &root).unwrap();
        let v = verify(&bytes, &[root.verifying_key()]).unwrap();
        assert_eq!(v.version(), 3);

        // wrong root
        assert!(matches!(
            verify(&bytes, &[other.verifying_key()]),
            Err(DirectoryError::WrongKey { .. })
        ));
        // altered body
        let text = String::from_utf8(bytes.clone()).unwrap();
        let altered = text.replacen("KommuneCSIRT", "KommuneCSIRX", 1);
        assert!(matches!(
            verify(altered.as_bytes(), &[root.verifying_key()]),
            Err(DirectoryError::BadSignature { .. })
        ));
        // unsigned
        let mut signed: SignedDirectory = serde_json::from_slice(&bytes).unwrap();
        signed.signatures.clear();
        assert!(matches!(
            verify(
                &serde_json::to_vec(&signed).unwrap(),
                &[root.verifying_key()]
            ),
            Err(DirectoryError::Unsigned)
        ));
        // expired
        let (mut d2, _) = dir(4);
        d2.expires = Some(Timestamp::now() - jiff::SignedDuration::from_hours(1));
        assert!(matches!(
            verify(&sign(&d2, &root).unwrap(), &[root.verifying_key()]),
            Err(DirectoryError::Expired { version: 4, .. })
        ));
        assert!(matches!(
            verify(b"{", &[root.verifying_key()]),
            Err(DirectoryError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_rollback_across_restarts() {
        let root = generate_signing_key();
        let state = tempfile::tempdir().unwrap();
        let state_file = state.path().join("directory.json");
        let (d5, _) = dir(5);
        let (d4, _) = dir(4);
        let (d6, _) = dir(6);
        let b5 = sign(&d5, &root).unwrap();
        let h = DirectoryHandle::new(&b5, vec![root.verifying_key()], Some(state_file.clone()))
            .unwrap();
        assert_eq!(h.offer(&b5).unwrap(), Offer::Unchanged);
        assert!(matches!(
            h.offer(&sign(&d4, &root).unwrap()),
            Err(DirectoryError::RolledBack { have: 5, got: 4 })
        ));
        assert_eq!(
            h.offer(&sign(&d6, &root).unwrap()).unwrap(),
            Offer::Accepted { from: 5, to: 6 }
        );
        drop(h);
        // A restarted process given the old file still knows version 6 and
        // keeps it; offering version 5 again is refused.
        let h = DirectoryHandle::new(&b5, vec![root.verifying_key()], Some(state_file)).unwrap();
        assert_eq!(h.current().version(), 6);
        assert!(matches!(
            h.offer(&b5),
            Err(DirectoryError::RolledBack { have: 6, got: 5 })
        ));
    }

    #[test]
    fn root_rotation_keeps_the_version_floor() {
        let old = generate_signing_key();
        let new = generate_signing_key();
        let both = vec![old.verifying_key(), new.verifying_key()];
        let state = tempfile::tempdir().unwrap();
        let state_file = state.path().join("directory.json");
        let (d5, _) = dir(5);
        let (d6, _) = dir(6);
        let (d4, _) = dir(4);

        // Before the rotation: version 5 from the old root.
        let b5 = sign(&d5, &old).unwrap();
        DirectoryHandle::new(&b5, vec![old.verifying_key()], Some(state_file.clone())).unwrap();

        // Hand-over: version 6 signed by both roots is accepted by a process
        // that pins only the old one, and by one that pins only the new one.
        let b6 = sign_all(&d6, &[old.clone(), new.clone()]).unwrap();
        verify(&b6, &[new.verifying_key()]).unwrap();
        let h =
            DirectoryHandle::new(&b5, vec![old.verifying_key()], Some(state_file.clone())).unwrap();
        assert_eq!(h.offer(&b6).unwrap(), Offer::Accepted { from: 5, to: 6 });

        // With both pinned, nothing older is accepted from either root.
        let h = DirectoryHandle::new(&b6, both.clone(), Some(state_file.clone())).unwrap();
        for root in [&old, &new] {
            assert!(matches!(
                h.offer(&sign(&d4, root).unwrap()),
                Err(DirectoryError::RolledBack { have: 6, got: 4 })
            ));
        }
        // After the old key is unpinned, the state (dual-signed) still
        // verifies and still holds the floor.
        drop(h);
        let b5_new = sign(&d5, &new).unwrap();
        let h = DirectoryHandle::new(&b5_new, vec![new.verifying_key()], Some(state_file)).unwrap();
        assert_eq!(h.current().version(), 6);
    }

    #[test]
    fn state_from_an_unpinned_root_is_a_floor_with_a_clear_error() {
        let old = generate_signing_key();
        let new = generate_signing_key();
        let state = tempfile::tempdir().unwrap();
        let state_file = state.path().join("directory.json");
        let (d5, _) = dir(5);
        let (d4, _) = dir(4);
        let (d7, _) = dir(7);
        // The process last ran while only the old root was pinned.
        DirectoryHandle::new(
            &sign(&d5, &old).unwrap(),
            vec![old.verifying_key()],
            Some(state_file.clone()),
        )
        .unwrap();
        let pinned = vec![new.verifying_key()];

        // Started from the state alone: the error names the file, the old
        // key and the way out.
        let e = DirectoryHandle::from_state(pinned.clone(), state_file.clone())
            .err()
            .unwrap();
        let old_pub = encode_verifying_key(&old.verifying_key());
        assert!(
            matches!(&e, DirectoryError::StateOnlyUnpinned { version: 5, keys, .. } if keys == &vec![old_pub.clone()]),
            "{e}"
        );
        let text = e.to_string();
        assert!(text.contains(&state_file.display().to_string()), "{text}");
        assert!(text.contains("do not delete the state file"), "{text}");

        // An older directory from the new root is refused: the floor held.
        let e = DirectoryHandle::new(
            &sign(&d4, &new).unwrap(),
            pinned.clone(),
            Some(state_file.clone()),
        )
        .err()
        .unwrap();
        assert!(
            matches!(
                &e,
                DirectoryError::StateRootNotPinned {
                    version: 5,
                    offered: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&old_pub), "{e}");

        // A newer one is adopted and becomes the new state and floor.
        let h = DirectoryHandle::new(
            &sign(&d7, &new).unwrap(),
            pinned.clone(),
            Some(state_file.clone()),
        )
        .unwrap();
        assert_eq!(h.current().version(), 7);
        assert!(matches!(
            h.offer(&sign(&d5, &new).unwrap()),
            Err(DirectoryError::RolledBack { have: 7, got: 5 })
        ));
        drop(h);
        let h = DirectoryHandle::from_state(pinned, state_file).unwrap();
        assert_eq!(h.current().version(), 7);
    }
}
