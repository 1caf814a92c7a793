//! The `varde` CLI's configuration file (`varde.toml`): the core's sections
//! (identity, directory, NATS, stream, consumer) and the hub's `[hub]`. The
//! struct is the hub's (`varde_hub::settings::VardeToml`), so that the fuzz
//! targets read the file exactly as `varde` does.

pub use varde_hub::settings::VardeToml as Settings;
