//! Benchmarks: figures beside a baseline from the same run, never
//! assertions. `varde bench` (the bus against raw JetStream and raw
//! X25519) and `varde bench hub` (the hub's pipeline).

pub mod bus;
pub mod hub;
pub mod national;

use varde_testkit::NatsServer;

/// Peak resident set size of this process, in MiB (Linux).
pub fn peak_rss_mib() -> f64 {
    varde_testkit::peak_rss_mib(std::process::id())
}

/// A nats-server the bench started from the test kit (killed on drop), or
/// one it was given with `--nats`.
pub(crate) enum BenchServer {
    Own(Box<NatsServer>),
    External(String),
}

impl BenchServer {
    pub(crate) fn url(&self) -> String {
        match self {
            BenchServer::Own(s) => s.url(),
            BenchServer::External(u) => u.clone(),
        }
    }

    pub(crate) async fn start() -> anyhow::Result<BenchServer> {
        let bin = varde_testkit::find_nats_server().ok_or_else(|| {
            anyhow::anyhow!(
                "nats-server not found: run deploy/dev/venv.sh, set VARDE_NATS_SERVER, or pass --nats"
            )
        })?;
        Ok(BenchServer::Own(Box::new(
            NatsServer::start_bin(&bin, "").await?,
        )))
    }
}
