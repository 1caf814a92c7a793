//! "Seen this already": normalised type + value, remembered for a window
//! (`hub.dedup_window`, 7 days by default) and kept across restarts in a
//! small binary file, replaced atomically on save.
//!
//! A value counts from when it was first *published*: seeing it again
//! inside the window does not extend it, so an indicator a feed keeps
//! listing is re-published once per window and consumers' expiry of
//! indicators stays meaningful.
//!
//! Each entry is a 128-bit BLAKE3 digest of the value and a 32-bit time:
//! 20 bytes, so a million values cost about 30 MiB with the table's
//! overhead, and values (which may be TLP:AMBER) are never written to disk
//! in clear.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use varde_schemas::payload::IndicatorType;

const MAGIC: &[u8; 8] = b"VRDDUP1\n";
const ENTRY: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("cannot read dedup state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write dedup state {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "dedup state {path} is not a Varde dedup file ({reason}); move it away to start with an empty store"
    )]
    Corrupt { path: PathBuf, reason: &'static str },
}

/// A dedup key: the digest of a normalised value and its type.
pub type Key = [u8; 16];

pub fn key(kind: IndicatorType, value: &str) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(kind.as_str().as_bytes());
    h.update(b"\0");
    h.update(value.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

/// A key for things that are not indicators (advisory id + revision).
pub fn key_of(parts: &[&str]) -> Key {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

pub struct Dedup {
    window: u32,
    seen: HashMap<Key, u32>,
    path: Option<PathBuf>,
}

fn now_secs() -> u32 {
    jiff::Timestamp::now().as_second().clamp(0, u32::MAX as i64) as u32
}

impl Dedup {
    /// An empty store that is never saved.
    pub fn in_memory(window: Duration) -> Dedup {
        Dedup {
            window: window.as_secs().min(u32::MAX as u64) as u32,
            seen: HashMap::new(),
            path: None,
        }
    }

    /// The store kept in `path` (created on first save).
    pub fn open(path: &Path, window: Duration) -> Result<Dedup, DedupError> {
        let mut d = Dedup::in_memory(window);
        d.path = Some(path.to_path_buf());
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(d),
            Err(source) => {
                return Err(DedupError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let corrupt = |reason| DedupError::Corrupt {
            path: path.into(),
            reason,
        };
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("bad magic"))?;
        if body.len() % ENTRY != 0 {
            return Err(corrupt("truncated entry"));
        }
        let now = now_secs();
        d.seen.reserve(body.len() / ENTRY);
        for e in body.chunks_exact(ENTRY) {
            let mut k = [0u8; 16];
            k.copy_from_slice(&e[..16]);
            let t = u32::from_le_bytes([e[16], e[17], e[18], e[19]]);
            if now.saturating_sub(t) < d.window {
                d.seen.insert(k, t);
            }
        }
        Ok(d)
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// True (and remembered from now on) if `k` was not seen within the
    /// window; false for a duplicate.
    pub fn first_time(&mut self, k: Key, now: u32) -> bool {
        match self.seen.get_mut(&k) {
            Some(t) if now.saturating_sub(*t) < self.window => false,
            Some(t) => {
                *t = now;
                true
            }
            None => {
                self.seen.insert(k, now);
                true
            }
        }
    }

    /// Forgets `k` (its publication failed, so a later run may retry it).
    pub fn forget(&mut self, k: &Key) {
        self.seen.remove(k);
    }

    pub fn now() -> u32 {
        now_secs()
    }

    /// Drops expired entries and writes the rest (atomic replace).
    pub fn save(&mut self) -> Result<(), DedupError> {
        let now = now_secs();
        let window = self.window;
        self.seen.retain(|_, t| now.saturating_sub(*t) < window);
        let Some(path) = &self.path else {
            return Ok(());
        };
        let werr = |source| DedupError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(werr)?;
        }
        let tmp = path.with_extension("tmp");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(werr)?);
        f.write_all(MAGIC).map_err(werr)?;
        for (k, t) in &self.seen {
            f.write_all(k).map_err(werr)?;
            f.write_all(&t.to_le_bytes()).map_err(werr)?;
        }
        let f = f.into_inner().map_err(|e| werr(e.into_error()))?;
        f.sync_all().map_err(werr)?;
        std::fs::rename(&tmp, path).map_err(werr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_restart() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("dedup.bin");
        let week = Duration::from_secs(7 * 86400);
        let mut s = Dedup::open(&path, week).unwrap();
        let k = key(IndicatorType::Ipv4, "198.51.100.7");
        let now = Dedup::now();
        assert!(s.first_time(k, now));
        assert!(!s.first_time(k, now + 3600));
        assert!(s.first_time(key(IndicatorType::Domain, "198.51.100.7"), now));
        s.save().unwrap();
        let mut s = Dedup::open(&path, week).unwrap();
        assert_eq!(s.len(), 2);
        assert!(!s.first_time(k, now + 86400));
        // after the window it is new again
        assert!(s.first_time(k, now + 8 * 86400));
        // entries older than the window are dropped on save and on load
        s.seen.insert([9; 16], now - 8 * 86400);
        s.save().unwrap();
        assert_eq!(Dedup::open(&path, week).unwrap().len(), 2);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            Dedup::open(&path, week),
            Err(DedupError::Corrupt { .. })
        ));
    }
}
