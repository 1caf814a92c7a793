//! The bridge's own persistent store (SQLite, WAL): which envelope became
//! which event in which room, the first post of each advisory (for
//! revisions), withheld messages and release requests, parked messages of
//! rooms that keep failing, and open indicator digests.
//!
//! Messages kept for later (withheld, parked, digest items) are stored as
//! the sealed envelope received from the bus, never as plaintext, and are
//! opened again with the bridge's key when they are posted.
//!
//! `varde-bridge release` writes a request here and the running bridge
//! (which owns the Matrix device and its crypto store) carries it out, so
//! two processes never drive one Matrix device.
//!
//! One file per table (`posts`, `advisories`, `withheld`, `releases`,
//! `parked`, `digests`, and the room side's `events`, `acks`, `values`,
//! `incidents`); `schema.rs` creates and upgrades them all.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
#[error("bridge store {path}: {op}: {source}")]
pub struct StoreError {
    path: PathBuf,
    op: &'static str,
    #[source]
    source: rusqlite::Error,
}

type Result<T> = std::result::Result<T, StoreError>;

/// A status column's text that no version of the bridge writes.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a known status")]
pub struct UnknownStatus(pub String);

/// An enum for a status column of the store. The text in SQLite is
/// `as_str()`, exactly what the bridge wrote before the enums, so existing
/// stores read and match the same.
macro_rules! status_column {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::store::UnknownStatus;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::store::UnknownStatus(s.to_string())),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
    };
}

mod acks;
mod advisories;
mod campaigns;
mod digests;
mod events;
mod incidents;
mod parked;
mod posts;
mod releases;
mod schema;
mod values;
mod withheld;

pub use digests::{DigestRow, DigestState};
pub use events::EventRow;
pub use incidents::{IncidentRow, IncidentState};
pub use parked::Parked;
pub use posts::{Part, Recorded};
pub use releases::{ReleaseRequest, ReleaseState};
use schema::{SCHEMA, load_secret, migrate};
pub use withheld::{Withheld, WithheldStatus};

/// A sealed envelope as it came off the bus.
#[derive(Clone, Debug)]
pub struct StoredEnvelope {
    pub envelope_id: Uuid,
    pub subject: String,
    pub bytes: Vec<u8>,
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The bridge's store; cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Key of the store's keyed digests (derived envelope ids, the `ioc`
    /// index): random, made on first open, never leaves the store.
    secret: [u8; 32],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed, 0600) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let err = |op, source| StoreError {
            path: path.to_path_buf(),
            op,
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                err(
                    "creating its directory",
                    rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
                )
            })?;
        }
        let conn = Connection::open(path).map_err(|e| err("opening", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Envelope ids, room ids and sealed envelopes: not secret like a
            // key, but nobody else's business either.
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        // WAL: the CLI (`release`, `status`) reads and writes while the
        // bridge runs. NORMAL sync survives a killed process.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err("setting WAL mode", e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err("setting synchronous", e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| err("setting the busy timeout", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| err("creating tables", e))?;
        migrate(&conn).map_err(|e| err("upgrading tables", e))?;
        let secret = load_secret(&conn).map_err(|e| err("reading the store's secret", e))?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            secret,
        })
    }

    /// A keyed hash of `parts` (see `hash::keyed`).
    pub fn digest(&self, parts: &[&str]) -> [u8; 32] {
        crate::hash::keyed(&self.secret, parts)
    }

    /// A UUID derived from `parts` and the store's secret, for ids that
    /// must come out the same when the same thing is done twice (a Matrix
    /// event seen again after a restart, a second ✅ on the same alert) but
    /// that no one else can compute ahead of us.
    pub fn derived_id(&self, parts: &[&str]) -> Uuid {
        let d = self.digest(parts);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        uuid::Builder::from_custom_bytes(b).into_uuid()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn with<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| StoreError {
            path: self.path.clone(),
            op,
            source,
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with("reading meta", |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Sets `key` unless it is set; returns the value in force.
    pub fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        self.with("writing meta", |c| {
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
        })
    }
}

#[cfg(test)]
mod tests;
