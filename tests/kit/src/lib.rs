//! Varde's test kit: real servers and synthetic worlds for integration
//! tests and benches alike. Servers come from the repository's `.venv/`
//! (installed by `deploy/dev/venv.sh`), listen on free 127.0.0.1 ports, are
//! waited for until they answer, and are killed with their temp dirs removed
//! on drop (set `VARDE_KEEP_TEST_DIRS=1` to keep the dirs). Server output
//! goes to a log file in the server's temp dir; startup errors quote its
//! last lines.
//!
//! - [`NatsServer`]: `nats-server` with JetStream.
//! - [`NatsCluster`]: three clustered `nats-server`s (routes, JetStream Raft).
//! - [`Synapse`]: a Matrix homeserver with SQLite, open registration and no
//!   rate limits (policy in `deploy/synapse/homeserver.dev.yaml`).
//! - [`MatrixUser`]: a plain client-server API client for "another account".
//! - [`Synthetic`]: a signed directory with freshly generated keys.
//! - [`legacy`]: envelopes in the format of before (`VRD1`).
//!
//! Production crates use this only for their benches; nothing here is on
//! a production path.

pub mod legacy;
mod measure;
pub mod synthetic;
pub use measure::peak_rss_mib;
pub use synthetic::Synthetic;

#[cfg(feature = "servers")]
pub mod cluster;
#[cfg(feature = "servers")]
mod matrix;
#[cfg(feature = "servers")]
mod nats;
#[cfg(feature = "servers")]
mod ports;
#[cfg(feature = "servers")]
pub mod process;
#[cfg(feature = "servers")]
mod synapse;
#[cfg(feature = "servers")]
mod venv;

#[cfg(feature = "servers")]
pub use {
    cluster::NatsCluster,
    matrix::{MatrixError, MatrixUser},
    nats::{NatsServer, include_line},
    ports::{free_port, try_free_port},
    synapse::{RegisteredUser, Synapse},
    venv::{find_nats_server, find_venv_bin, repo_root, venv_bin},
};
