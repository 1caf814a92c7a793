//! Varde's Matrix bridge: relays what its bus identity may read into
//! Matrix rooms, checking each room's members and encryption against the
//! message's TLP label before every post, exactly once across restarts.
//!
//! - `config`: the configuration file, checked into typed values.
//! - `policy`: DESIGN.md's TLP table as a check of a room.
//! - `route`: which rooms a message is for (filters).
//! - `render`: posts in English and Norwegian Bokmål, with the TLP badge.
//! - `store`: the bridge's own SQLite store.
//! - `matrix`: the bot's client, room views and sends, a probe, a reader.
//! - `relay`: bus → rooms delivery, acks, retries, parking, digests.
//! - `metrics`: Prometheus `/metrics` and `/healthz`.
//! - `bench`: `varde-bridge bench`.
//! - `cli`: the command line.

// matrix-sdk's futures are deep: proving them Send needs more than 128.
#![recursion_limit = "256"]

pub mod bench;
pub mod cli;
pub mod config;
pub mod matrix;
pub mod metrics;
pub mod policy;
pub mod relay;
pub mod render;
pub mod route;
pub mod store;
