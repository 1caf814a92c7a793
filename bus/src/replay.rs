//! Replay memory: which envelopes a reader has already taken, keyed by the
//! signing key and the envelope id, optionally kept in a file so a restart
//! does not reopen the door (README "Security: who may say what": ids are per sender).
//!
//! Ids are chosen by senders, so an id alone names nothing: a member that
//! reuses another member's id must not make the genuine envelope look like
//! a replay. The signing key is part of the key because it is the one thing
//! in an envelope a sender cannot choose freely.
//!
//! An entry is kept for as long as its envelope could still be accepted:
//! `Opener::open` refuses envelopes created longer ago than the window, so
//! an entry whose `created` has left the window can go without reopening
//! anything.
//!
//! The file is append-only: a header, then one 32-byte record per envelope
//! (key id 8, uuid 16, created in Unix seconds rounded up, i64 BE). It is
//! rewritten without dead entries when opened and whenever it has grown to
//! several times what is alive.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;
use varde_schemas::{Header, KeyId};

/// Who said which id: the signing key and the envelope id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplayKey {
    pub signer: KeyId,
    pub id: Uuid,
}

impl ReplayKey {
    /// The key of a verified header (`verify` checked that its sender key
    /// is the signing key).
    pub fn of(header: &Header) -> Self {
        ReplayKey {
            signer: header.sender.key,
            id: header.id,
        }
    }
}

/// Seconds since the epoch, rounded up, so an entry is never dropped while
/// its envelope (with sub-second `created`) is still inside the window.
fn seconds_up(t: Timestamp) -> i64 {
    let s = t.as_second();
    if t.subsec_nanosecond() > 0 {
        s.saturating_add(1)
    } else {
        s
    }
}

/// Envelopes seen recently, bounded in time (the window after `created`)
/// and in entries (the oldest go first when full).
pub struct ReplayGuard {
    seen: HashMap<ReplayKey, i64>,
    by_age: BTreeSet<(i64, ReplayKey)>,
    window: SignedDuration,
    capacity: usize,
}

impl ReplayGuard {
    /// `window`: how long after its creation an envelope can still arrive
    /// and be accepted (the stream's max age plus clock skew).
    pub fn new(window: SignedDuration, capacity: usize) -> Self {
        ReplayGuard {
            seen: HashMap::new(),
            by_age: BTreeSet::new(),
            window,
            capacity: capacity.max(1),
        }
    }

    pub fn window(&self) -> SignedDuration {
        self.window
    }

    /// Changes the window; entries already past the new one go at the next
    /// insert.
    pub fn set_window(&mut self, window: SignedDuration) {
        self.window = window;
    }

    pub fn contains(&self, key: &ReplayKey) -> bool {
        self.seen.contains_key(key)
    }

    /// Whether an entry created at `created` (seconds) is past the window.
    fn is_dead(&self, created: i64, now: Timestamp) -> bool {
        created.saturating_add(self.window.as_secs()) < now.as_second()
    }

    /// Remembers `key`, whose envelope was created at `created`. Returns
    /// false when it is already past the window (nothing to remember).
    pub fn insert(&mut self, key: ReplayKey, created: Timestamp, now: Timestamp) -> bool {
        self.insert_secs(key, seconds_up(created), now)
    }

    fn insert_secs(&mut self, key: ReplayKey, created: i64, now: Timestamp) -> bool {
        self.prune(now);
        if self.is_dead(created, now) {
            return false;
        }
        while self.seen.len() >= self.capacity {
            match self.by_age.pop_first() {
                Some((_, old)) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        if let Some(old) = self.seen.insert(key, created) {
            self.by_age.remove(&(old, key));
        }
        self.by_age.insert((created, key));
        true
    }

    /// Drops entries whose envelopes are past the window.
    pub fn prune(&mut self, now: Timestamp) {
        while let Some(&(created, key)) = self.by_age.first() {
            if !self.is_dead(created, now) {
                break;
            }
            self.by_age.pop_first();
            self.seen.remove(&key);
        }
    }

    /// Forgets `key`, so its next copy opens again.
    pub fn forget(&mut self, key: &ReplayKey) {
        if let Some(created) = self.seen.remove(key) {
            self.by_age.remove(&(created, *key));
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn entries(&self) -> impl Iterator<Item = (&ReplayKey, &i64)> {
        self.seen.iter()
    }

    fn created_secs(&self, key: &ReplayKey) -> Option<i64> {
        self.seen.get(key).copied()
    }
}

/// Clock skew tolerated between a sender and us (the freshness check in
/// `seal.rs` and the window here both allow for it).
pub const DEFAULT_SKEW: SignedDuration = SignedDuration::from_mins(5);
/// The stream keeps messages for 7 days by default.
pub const DEFAULT_WINDOW: SignedDuration = SignedDuration::from_hours(24 * 7);
/// About 130 MiB of memory at most; a 7-day window of a busy member.
pub const DEFAULT_CAPACITY: usize = 2_000_000;

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard::new(DEFAULT_WINDOW + DEFAULT_SKEW, DEFAULT_CAPACITY)
    }
}

const MAGIC: &[u8; 8] = b"VRDRPL1\n";
const RECORD: usize = 32;
/// Rewrite once the file holds this many times the live entries (and at
/// least `MIN_COMPACT` records), so the file stays within a small multiple
/// of what memory holds.
const COMPACT_FACTOR: usize = 4;
const MIN_COMPACT: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum ReplayFileError {
    #[error("cannot use replay file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a Varde replay file (bad magic); refusing to overwrite it: point the replay file somewhere else or remove it"
    )]
    NotAReplayFile { path: PathBuf },
}

/// The persistent half of the replay memory: an append-only file.
pub struct ReplayFile {
    path: PathBuf,
    file: File,
    /// Records in the file (live or dead).
    records: usize,
}

fn encode(key: &ReplayKey, created: i64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..8].copy_from_slice(&key.signer.0);
    r[8..24].copy_from_slice(key.id.as_bytes());
    r[24..].copy_from_slice(&created.to_be_bytes());
    r
}

fn decode(r: &[u8]) -> Option<(ReplayKey, i64)> {
    let signer: [u8; 8] = r.get(..8)?.try_into().ok()?;
    let id: [u8; 16] = r.get(8..24)?.try_into().ok()?;
    let created: [u8; 8] = r.get(24..RECORD)?.try_into().ok()?;
    Some((
        ReplayKey {
            signer: KeyId(signer),
            id: Uuid::from_bytes(id),
        },
        i64::from_be_bytes(created),
    ))
}

impl ReplayFile {
    /// Loads `path` into `guard` (entries still inside the window) and
    /// rewrites it compacted, ready for appending. A missing file is
    /// created (mode 0600); a torn last record (a crash mid-write) is
    /// ignored with a warning.
    pub fn open(
        path: &Path,
        guard: &mut ReplayGuard,
        now: Timestamp,
    ) -> Result<ReplayFile, ReplayFileError> {
        let io = |source| ReplayFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Its directory may be new (a fresh state dir of the hub or CLI).
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if !bytes.is_empty() {
            let Some(records) = bytes.strip_prefix(MAGIC.as_slice()) else {
                // A file shorter than the magic is a torn first write.
                if bytes.len() < MAGIC.len() && MAGIC.starts_with(&bytes) {
                    tracing::warn!(path = %path.display(), "replay file torn before its first record; starting empty");
                    return Self::rewrite(path, guard);
                }
                return Err(ReplayFileError::NotAReplayFile {
                    path: path.to_path_buf(),
                });
            };
            let chunks = records.chunks_exact(RECORD);
            let torn = chunks.remainder().len();
            if torn > 0 {
                tracing::warn!(
                    path = %path.display(),
                    bytes = torn,
                    "replay file ends in a partial record (interrupted write); ignoring it"
                );
            }
            for r in chunks {
                if let Some((key, created)) = decode(r) {
                    guard.insert_secs(key, created, now);
                }
            }
        }
        Self::rewrite(path, guard)
    }

    /// Writes the live entries of `guard` to a fresh file and puts it in
    /// place atomically, so a crash leaves either the old or the new file.
    fn rewrite(path: &Path, guard: &ReplayGuard) -> Result<ReplayFile, ReplayFileError> {
        let io = |source| ReplayFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // tempfile creates the file 0600 on Unix.
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let mut buf = Vec::with_capacity(MAGIC.len() + guard.len() * RECORD);
        buf.extend_from_slice(MAGIC);
        for (key, created) in guard.entries() {
            buf.extend_from_slice(&encode(key, *created));
        }
        tmp.write_all(&buf).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok(ReplayFile {
            path: path.to_path_buf(),
            file,
            records: guard.len(),
        })
    }

    /// Appends one record, compacting first when the file has grown far
    /// beyond what is alive. No fsync per record: a process crash loses
    /// nothing (the write is in the kernel), a power cut at worst the last
    /// few entries.
    pub fn append(&mut self, guard: &ReplayGuard, key: &ReplayKey) -> Result<(), ReplayFileError> {
        let Some(created) = guard.created_secs(key) else {
            return Ok(());
        };
        if self.records >= MIN_COMPACT && self.records >= guard.len() * COMPACT_FACTOR {
            *self = Self::rewrite(&self.path, guard)?;
            // The rewrite included `key` already.
            return Ok(());
        }
        self.file
            .write_all(&encode(key, created))
            .map_err(|source| ReplayFileError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.records += 1;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(n: u8) -> ReplayKey {
        ReplayKey {
            signer: KeyId([n; 8]),
            id: Uuid::from_bytes([7; 16]),
        }
    }

    #[test]
    fn same_id_from_two_keys_is_two_entries() {
        let now = Timestamp::now();
        let mut g = ReplayGuard::default();
        g.insert(key(1), now, now);
        assert!(g.contains(&key(1)));
        assert!(!g.contains(&key(2)));
    }

    #[test]
    fn entries_leave_with_the_window_and_the_oldest_go_first_when_full() {
        let now = Timestamp::now();
        let mut g = ReplayGuard::new(SignedDuration::from_hours(1), 2);
        let old = now - SignedDuration::from_hours(2);
        assert!(!g.insert(key(1), old, now), "already past the window");
        g.insert(key(2), now - SignedDuration::from_mins(2), now);
        g.insert(key(3), now - SignedDuration::from_mins(1), now);
        g.insert(key(4), now, now);
        assert!(!g.contains(&key(2)), "oldest evicted at capacity");
        assert!(g.contains(&key(3)) && g.contains(&key(4)));
        g.prune(now + SignedDuration::from_hours(2));
        assert!(g.is_empty());
    }

    #[test]
    fn the_file_survives_a_restart_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let now = Timestamp::now();
        let mut g = ReplayGuard::default();
        let mut f = ReplayFile::open(&path, &mut g, now).unwrap();
        g.insert(key(1), now, now);
        f.append(&g, &key(1)).unwrap();
        g.insert(key(2), now, now);
        f.append(&g, &key(2)).unwrap();
        drop(f);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A crash in the middle of a third record.
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(&encode(&key(3), now.as_second())[..11])
            .unwrap();
        drop(raw);

        let mut g2 = ReplayGuard::default();
        let mut f2 = ReplayFile::open(&path, &mut g2, now).unwrap();
        assert!(g2.contains(&key(1)) && g2.contains(&key(2)));
        assert!(!g2.contains(&key(3)));
        // Appending after the torn tail stays aligned (the file was rewritten).
        g2.insert(key(4), now, now);
        f2.append(&g2, &key(4)).unwrap();
        let mut g3 = ReplayGuard::default();
        ReplayFile::open(&path, &mut g3, now).unwrap();
        assert_eq!(g3.len(), 3);

        // Past the window, entries are not loaded back.
        let mut g4 = ReplayGuard::default();
        ReplayFile::open(&path, &mut g4, now + SignedDuration::from_hours(24 * 30)).unwrap();
        assert!(g4.is_empty());
    }

    #[test]
    fn a_foreign_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, b"my precious notes, not a replay file").unwrap();
        let mut g = ReplayGuard::default();
        let e = ReplayFile::open(&path, &mut g, Timestamp::now())
            .err()
            .unwrap();
        assert!(matches!(e, ReplayFileError::NotAReplayFile { .. }), "{e}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"my precious notes, not a replay file"
        );
    }
}
