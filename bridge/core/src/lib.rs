//! What the Varde bridge decides, apart from how it talks to Matrix and
//! NATS: everything here is a pure function of its inputs (and the
//! configuration file), so it is unit-tested and fuzzed without a
//! homeserver, a broker or a build of matrix-sdk. varde-bridge does the
//! I/O around it and re-exports these modules under the same names.
//!
//! - `config`: the configuration file, checked into typed values.
//! - `policy`: the TLP table (README "TLP 2.0: who can read what") as a check of a room.
//! - `route`: which rooms a message is for (filters, echoes).
//! - `delivery`: per message and room: digest folding, advisory revisions,
//!   who may wake a room.
//! - `render`: posts in English and Norwegian Bokmål, with the TLP badge.
//! - `author`: who said it, from the verified sender (never the payload).
//! - `command`: `!varde` command parsing and help (en, nb).
//! - `timeline`: members' events in the bot's rooms, read from sync JSON.
//! - `ioc`: what the bridge has seen about a value.
//! - `hash`: SHA-256 over parts, for deterministic ids (a "digest" is only
//!   the room's folded indicator post).

pub mod author;
pub mod command;
pub mod config;
pub mod delivery;
pub mod hash;
pub mod ioc;
pub mod policy;
pub mod render;
pub mod route;
pub mod timeline;
