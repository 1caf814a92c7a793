//! Harness for Varde's integration tests. The servers ([`NatsServer`],
//! [`NatsCluster`], [`Synapse`], [`MatrixUser`]) and synthetic directories
//! come from the test kit (`tests/kit`, shared with the benches); this crate
//! adds the worlds the tests run in:
//!
//! - [`fixture`]: a bus with a demo directory and its stream.
//! - [`provisioned`]: a broker with every org's nkey user and consumer.
//! - [`bridge`]: a world for `varde-bridge` tests (Synapse, bus, directory
//!   with Matrix users, the bridge as a child process).
//! - [`csirt`]: the CSIRT's hub and campaign desk on a test bus.
//! - [`pair`]: two homeservers that do not federate, two orgs' bridges, one bus.
//! - [`browser`]: Debian's headless chromium through chromedriver.

pub mod bridge;
pub mod browser;
pub mod csirt;
pub mod fixture;
pub mod pair;
pub mod provisioned;

pub use fixture::{BusFixture, drain, varde_ok, workspace_bin};
// The servers come from the test kit, shared with the benches.
pub use varde_testkit::{
    MatrixError, MatrixUser, NatsCluster, NatsServer, RegisteredUser, Synapse, Synthetic, cluster,
    free_port, process, repo_root, try_free_port, venv_bin,
};
