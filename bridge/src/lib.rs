//! Varde's Matrix bridge: relays what its bus identity may read into
//! Matrix rooms, checking each room's members and encryption against the
//! message's TLP label before every post, exactly once across restarts.
//!
//! The decisions (`config`, `policy`, `route`, `delivery`, `render`, `author`,
//! `command`, the timeline parse, `ioc`, `hash`) live in varde-bridge-core,
//! without Matrix I/O, and are re-exported here. This crate does the I/O:
//!
//! - `store`: the bridge's own SQLite store, one file per table.
//! - `matrix`: the bot's client, room views and sends, a probe, a reader.
//! - `message`: an opened bus message with its sealed envelope.
//! - `relay`: bus → rooms delivery, acks, retries, parking, digests.
//! - `metrics`: Prometheus `/metrics` and `/healthz`.
//! - `timeline`: members' events in the bot's rooms, from the sync.
//! - `room_side`: the room side's state, shared by the three below.
//! - `conversation`: the room side's event loop: commands, ✅ acks, sharing.
//! - `commands`: `!varde` commands run, one file each.
//! - `share`: sharing rooms both ways (`chat` envelopes).
//! - `incident`: incident rooms across organisations.
//! - `publish`: sealing and publishing as the bridge.
//! - `bench`: `varde-bridge bench`.
//! - `cli`: the command line.

// matrix-sdk's futures are deep: proving them Send needs more than 128.
#![recursion_limit = "256"]

/// The SDK the bridge is built on, re-exported so tests and tools that
/// drive a `matrix::reader::Reader` use the very same version.
pub use matrix_sdk;

// The decisions, re-exported under the names the rest of the bridge (and
// its tests) use.
pub use varde_bridge_core::{author, command, config, delivery, hash, ioc, policy, render, route};

pub mod bench;
pub mod cli;
pub mod commands;
pub mod conversation;
pub mod incident;
pub mod matrix;
pub mod message;
pub mod metrics;
pub mod publish;
pub mod relay;
pub mod room_side;
pub mod share;
pub mod store;
pub mod timeline;
