//! Varde bus core: TLP audience rules, the signed directory, sealed
//! envelopes and their NATS JetStream transport.

pub mod audience;
pub mod directory;
pub mod envelope;
pub mod keys;
pub mod seal;
pub mod subject;
pub mod synthetic;

pub mod cli {
    pub fn main() {}
}

pub use varde_schemas as schemas;
