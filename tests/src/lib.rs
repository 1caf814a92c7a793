//! Harness for Varde's integration tests: starts real servers from the
//! repository's `.venv/` (installed by `deploy/dev/venv.sh`) on free
//! 127.0.0.1 ports, waits until they answer, and on drop kills them and
//! removes their temp dirs.
//!
//! - [`NatsServer`]: `nats-server` with JetStream.
//! - [`NatsCluster`]: three clustered `nats-server`s (routes, JetStream Raft).
//! - [`Synapse`]: a Matrix homeserver with SQLite, open registration and no
//!   rate limits (policy in `deploy/synapse/homeserver.dev.yaml`).
//! - [`MatrixUser`]: a plain client-server API client for "another account".
//! - [`bridge`]: a world for `varde-bridge` tests (Synapse, bus, directory
//!   with Matrix users, the bridge as a child process).
//! - [`pair`]: two homeservers that do not federate, two orgs' bridges, one bus.
//!
//! Server output goes to a log file in the server's temp dir; startup errors
//! quote its last lines. Set `VARDE_KEEP_TEST_DIRS=1` to keep the temp dirs.

pub mod bridge;
pub mod cluster;
pub mod fixture;
mod matrix;
mod nats;
pub mod pair;
mod ports;
mod process;
pub mod provisioned;
mod synapse;
mod venv;

pub use cluster::NatsCluster;
pub use fixture::{BusFixture, drain, varde_ok, workspace_bin};
pub use matrix::{MatrixError, MatrixUser};
pub use nats::NatsServer;
pub use ports::{free_port, try_free_port};
pub use synapse::{RegisteredUser, Synapse};
pub use venv::{repo_root, venv_bin};
