//! Varde's trusted core: TLP audience rules, the signed directory, sealed
//! envelopes and their NATS JetStream transport. Everything a member's
//! process needs to publish and read, and nothing else (the hub, the CLI
//! and the Matrix bridge are separate crates on top of this one), so that
//! it can be audited in an afternoon.
//!
//! - [`keys`]: identities (age X25519 + ed25519) and key files, 0600 only.
//! - [`directory`], [`directory_kv`]: the root-signed member directory, its
//!   rollback-proof state, and its copy in a JetStream KV bucket.
//! - [`audience`]: who may read a TLP 2.0 label sent to a target.
//! - [`envelope`], [`seal`], [`wrap`]: the wire format; sign, then encrypt
//!   per recipient; open = verify before parse, then one X25519 unwrap.
//! - [`subject`], [`transport`]: subject layout, a stream per scope,
//!   publishing with exactly-once message ids.
//! - [`inbox`], [`replay`]: a durable consumer's deliveries, opened off the
//!   reactor, with per-sender replay protection.
//! - [`usage`]: messages per sender org in the store, and purging one
//!   sender's (the answer to a member filling the shared store).
//! - [`settings`], [`session`]: configuration sections that name the key
//!   and the file on error; a process's identity, directory and connection.

pub mod audience;
pub mod directory;
pub mod directory_kv;
pub mod envelope;
pub mod inbox;
pub mod keys;
pub mod kind_rules;
pub mod logging;
pub mod replay;
pub mod seal;
pub mod session;
pub mod settings;
pub mod subject;
pub mod time;
pub mod transport;
pub mod usage;
pub mod wrap;

pub use varde_schemas as schemas;
