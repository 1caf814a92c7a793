//! Varde bus core: TLP audience rules, the signed directory, sealed
//! envelopes and their NATS JetStream transport.

pub mod audience;
pub mod bench;
pub mod directory;
pub mod directory_kv;
pub mod envelope;
pub mod hub;
pub mod inbox;
pub mod keys;
pub mod provision;
pub mod replay;
pub mod seal;
pub mod settings;
pub mod subject;
pub mod synthetic;
pub mod time;
pub mod transport;

pub mod cli;
pub mod logging;

pub use varde_schemas as schemas;
