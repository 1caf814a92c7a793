//! Three `nats-server` processes with JetStream, clustered through routes
//! on free loopback ports: a real Raft cluster for fail-over tests. A node
//! can be SIGKILLed and restarted on the same ports and store; the stream
//! leader is found through the monitoring endpoint `/jsz`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::process::Command;

use crate::ports::try_free_port;
use crate::process::{ServerProcess, keep_dir_if_asked, lost_port_race};
use crate::venv::venv_bin;

/// How long a node may take to join the cluster and report healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const PORT_ATTEMPTS: usize = 3;

/// One node of the cluster.
struct Node {
    name: String,
    process: ServerProcess,
    port: u16,
    http_port: u16,
    config_path: PathBuf,
}

/// A JetStream cluster of `nodes` servers named `n1`, `n2`, … Dropping it
/// kills every node and removes the temp dir.
pub struct NatsCluster {
    nodes: Vec<Node>,
    bin: PathBuf,
    http: reqwest::Client,
    dir: TempDir,
}

impl NatsCluster {
    /// Starts a cluster of three nodes and waits until every node is
    /// healthy (JetStream meta leader elected and known to all).
    pub async fn start() -> Result<NatsCluster> {
        Self::start_n(3).await
    }

    pub async fn start_n(n: usize) -> Result<NatsCluster> {
        let bin = tokio::task::spawn_blocking(|| venv_bin("nats-server"))
            .await
            .context("venv check panicked")??;
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::launch(&bin, n).await {
                Ok(c) => return Ok(c),
                Err((e, true)) => last = Some(e),
                Err((e, false)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
            .context("the cluster lost the race for free ports three times")
    }

    /// `Err((error, port_race))`.
    async fn launch(
        bin: &Path,
        n: usize,
    ) -> std::result::Result<NatsCluster, (anyhow::Error, bool)> {
        let fatal = |e: anyhow::Error| (e, false);
        let mut dir = tempfile::Builder::new()
            .prefix("varde-cluster-")
            .tempdir()
            .context("creating the cluster temp dir")
            .map_err(fatal)?;
        keep_dir_if_asked(&mut dir);
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| Ok((try_free_port()?, try_free_port()?, try_free_port()?)))
            .collect::<Result<_>>()
            .map_err(fatal)?;
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c, _)| format!("\"nats-route://127.0.0.1:{c}\""))
            .collect();
        let mut nodes = Vec::with_capacity(n);
        for (i, (port, cluster_port, http_port)) in ports.iter().copied().enumerate() {
            let name = format!("n{}", i + 1);
            let node_dir = dir.path().join(&name);
            let store = node_dir.join("jetstream");
            std::fs::create_dir_all(&store)
                .with_context(|| format!("creating {}", store.display()))
                .map_err(fatal)?;
            let config_path = node_dir.join("nats-server.conf");
            let config = format!(
                "# cluster node written by the varde-tests harness\n\
                 server_name: \"{name}\"\n\
                 listen: \"127.0.0.1:{port}\"\n\
                 http: \"127.0.0.1:{http_port}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n}}\n\
                 cluster {{\n  name: \"varde-test\"\n  listen: \"127.0.0.1:{cluster_port}\"\n  routes: [{routes}]\n}}\n",
                store = store.display(),
                routes = routes.join(", "),
            );
            std::fs::write(&config_path, config)
                .with_context(|| format!("writing {}", config_path.display()))
                .map_err(fatal)?;
            nodes.push(Node {
                process: ServerProcess::new("nats-server", node_dir.join("nats-server.log")),
                name,
                port,
                http_port,
                config_path,
            });
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .context("building the HTTP client")
            .map_err(fatal)?;
        let mut cluster = NatsCluster {
            nodes,
            bin: bin.to_path_buf(),
            http,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i).map_err(fatal)?;
        }
        for i in 0..n {
            if let Err(e) = cluster.wait_healthy(i).await {
                let race = lost_port_race(cluster.nodes[i].process.log_path());
                return Err((e, race));
            }
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c")
            .arg(&node.config_path)
            .current_dir(self.dir.path());
        node.process.spawn(cmd)
    }

    /// Waits until node `i` answers `/healthz` with 200: it runs, it knows
    /// the meta leader and its streams and consumers are current.
    async fn wait_healthy(&mut self, i: usize) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/healthz", self.nodes[i].http_port);
        let http = self.http.clone();
        let name = self.nodes[i].name.clone();
        self.nodes[i]
            .process
            .wait_ready(READY_TIMEOUT, || {
                let request = http.get(&url);
                async move { Ok(request.send().await?.status().is_success()) }
            })
            .await
            .with_context(|| format!("cluster node {name}"))
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node's client URL, comma separated (what `nats.url` takes).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of node `i` alone.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// The server name of node `i` (`n1`, …).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i].process.is_running()
    }

    /// The last lines of node `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        self.nodes[i].process.log_tail()
    }

    /// GET a monitoring endpoint of node `i`.
    pub async fn monitor(&self, i: usize, endpoint: &str) -> Result<serde_json::Value> {
        let url = format!("http://127.0.0.1:{}/{endpoint}", self.nodes[i].http_port);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {url}: HTTP {status}");
        }
        response
            .json()
            .await
            .with_context(|| format!("GET {url}: not JSON"))
    }

    /// The node that leads `stream`'s Raft group, as a live node's `/jsz`
    /// reports it. Waits (up to 30 s) while an election is under way.
    pub async fn stream_leader(&mut self, stream: &str) -> Result<usize> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            for i in 0..self.nodes.len() {
                if !self.is_running(i) {
                    continue;
                }
                let Ok(jsz) = self.monitor(i, "jsz?accounts=true&streams=true").await else {
                    continue;
                };
                if let Some(leader) = leader_in(&jsz, stream)
                    && let Some(idx) = self.index_of(&leader)
                    && self.is_running(idx)
                {
                    return Ok(idx);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("no live node reports a leader for stream {stream}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL node `i` (no graceful shutdown); its store stays.
    pub async fn kill(&mut self, i: usize) {
        self.nodes[i].process.kill().await;
    }

    /// Starts node `i` again on the same ports, config and store and waits
    /// until it is healthy (caught up with the cluster).
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.nodes[i].process.kill().await;
        self.spawn(i)?;
        self.wait_healthy(i).await
    }
}

/// `cluster.leader` of `stream` in a `/jsz?accounts=true&streams=true` answer.
fn leader_in(jsz: &serde_json::Value, stream: &str) -> Option<String> {
    jsz["account_details"]
        .as_array()?
        .iter()
        .filter_map(|a| a["stream_detail"].as_array())
        .flatten()
        .find(|s| s["name"] == stream)
        .and_then(|s| s["cluster"]["leader"].as_str())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}
