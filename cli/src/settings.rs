//! The `varde` CLI's configuration file (`varde.toml`): the core's sections
//! (identity, directory, NATS, stream, consumer) and the hub's `[hub]`.

use serde::Deserialize;
use varde_bus::settings::{BusSettings, ConsumerSettings, DirectorySettings, IdentitySettings};
use varde_bus::transport::{NatsSettings, StreamSettings};

/// The `varde` CLI's configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub identity: IdentitySettings,
    #[serde(default)]
    pub directory: DirectorySettings,
    #[serde(default)]
    pub nats: NatsSettings,
    #[serde(default)]
    pub stream: StreamSettings,
    #[serde(default)]
    pub consumer: ConsumerSettings,
    /// Hub settings (`varde ingest`, `varde hub run`, `varde export`).
    #[serde(default)]
    pub hub: varde_hub::settings::HubSettings,
    /// Log format: `text` (default) or `json`.
    #[serde(default)]
    pub log_format: Option<String>,
}

impl BusSettings for Settings {
    fn identity(&self) -> &IdentitySettings {
        &self.identity
    }
    fn directory(&self) -> &DirectorySettings {
        &self.directory
    }
    fn nats(&self) -> &NatsSettings {
        &self.nats
    }
}
