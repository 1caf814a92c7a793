//! Varde's Matrix bridge: relays what its bus identity may read into
//! Matrix rooms, checking each room's members and encryption against the
//! message's TLP label before every post, exactly once across restarts.
//!
//! - `config`: the configuration file, checked into typed values.
//! - `policy`: the TLP table (README "TLP 2.0: who can read what") as a check of a room.
//! - `route`: which rooms a message is for (filters).
//! - `render`: posts in English and Norwegian Bokmål, with the TLP badge.
//! - `store`: the bridge's own SQLite store.
//! - `matrix`: the bot's client, room views and sends, a probe, a reader.
//! - `relay`: bus → rooms delivery, acks, retries, parking, digests.
//! - `metrics`: Prometheus `/metrics` and `/healthz`.
//! - `timeline`: members' events in the bot's rooms, from the sync.
//! - `conversation`: the room side: commands, ✅ acks, sharing.
//! - `share`: sharing rooms both ways (`chat` envelopes).
//! - `command`: `!varde` command parsing and help (en, nb).
//! - `incident`: incident rooms across organisations.
//! - `ioc`: what the bridge has seen about a value.
//! - `ledger`: the room side's tables in the store.
//! - `hash`: SHA-256 over parts, for deterministic ids (a "digest" is only
//!   the room's folded indicator post).
//! - `publish`: sealing and publishing as the bridge.
//! - `bench`: `varde-bridge bench`.
//! - `cli`: the command line.

// matrix-sdk's futures are deep: proving them Send needs more than 128.
#![recursion_limit = "256"]

/// The SDK the bridge is built on, re-exported so tests and tools that
/// drive a `matrix::reader::Reader` use the very same version.
pub use matrix_sdk;

pub mod author;
pub mod bench;
pub mod cli;
pub mod command;
pub mod config;
pub mod conversation;
pub mod hash;
pub mod incident;
pub mod ioc;
pub mod ledger;
pub mod matrix;
pub mod metrics;
pub mod policy;
pub mod publish;
pub mod relay;
pub mod render;
pub mod route;
pub mod share;
pub mod store;
pub mod timeline;
