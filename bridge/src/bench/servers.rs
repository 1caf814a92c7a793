//! nats-server and Synapse for the bench, from the test kit (the same
//! launchers as the integration tests), or given by URL.

use anyhow::Context as _;
use varde_testkit::{NatsServer, Synapse};

/// A server the bench started (killed on drop), or one it was given.
pub struct Server {
    pub url: String,
    // Held so that dropping the bench's server stops the process.
    _nats: Option<Box<NatsServer>>,
    _synapse: Option<Box<Synapse>>,
}

impl Server {
    pub fn external(url: &str) -> Server {
        Server {
            url: url.trim_end_matches('/').to_string(),
            _nats: None,
            _synapse: None,
        }
    }
}

pub async fn nats() -> anyhow::Result<Server> {
    let bin = varde_testkit::find_nats_server().context(
        "nats-server not found: run deploy/dev/venv.sh, set VARDE_NATS_SERVER, or pass --nats",
    )?;
    let s = NatsServer::start_bin(&bin, "").await?;
    Ok(Server {
        url: s.url(),
        _nats: Some(Box::new(s)),
        _synapse: None,
    })
}

pub async fn synapse() -> anyhow::Result<Server> {
    let python = varde_testkit::find_venv_bin("python")
        .context("Synapse not found: run deploy/dev/venv.sh, or pass --homeserver")?;
    let s = Synapse::start_python(&python).await?;
    Ok(Server {
        url: s.base_url(),
        _nats: None,
        _synapse: Some(Box::new(s)),
    })
}
