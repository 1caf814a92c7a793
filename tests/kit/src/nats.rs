//! A real `nats-server` with JetStream on loopback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustix::process::Signal;
use tempfile::TempDir;
use tokio::process::Command;

use crate::ports::try_free_port;
use crate::process::{ServerProcess, keep_dir_if_asked, lost_port_race};
use crate::venv::venv_bin;

/// How long a start or restart may take before it counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGHUP may take to show up as a new `config_load_time`.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports to try when another process takes ours between probe and bind.
const PORT_ATTEMPTS: usize = 3;

/// A single `nats-server` with JetStream, listening on 127.0.0.1 only, with
/// its config, store and log in a temp dir. Dropping it kills the server and
/// removes the dir (set `VARDE_KEEP_TEST_DIRS=1` to keep the dir).
pub struct NatsServer {
    process: ServerProcess,
    bin: PathBuf,
    port: u16,
    http_port: u16,
    config_path: PathBuf,
    store_dir: PathBuf,
    http: reqwest::Client,
    // Last, so that the process is gone before the dir is removed.
    dir: TempDir,
}

enum Launch {
    Ready(Box<NatsServer>),
    PortTaken(anyhow::Error),
}

impl NatsServer {
    /// A single node with JetStream on a free port, monitoring on another.
    pub async fn start() -> Result<NatsServer> {
        Self::start_with("").await
    }

    /// Like [`NatsServer::start`], with `extra` appended verbatim to the
    /// generated config, which begins with `listen`, `jetstream { store_dir }`,
    /// `http` (monitoring) and `server_name`.
    pub async fn start_with(extra: &str) -> Result<NatsServer> {
        let bin = tokio::task::spawn_blocking(|| venv_bin("nats-server"))
            .await
            .context("venv check panicked")??;
        Self::start_bin(&bin, extra).await
    }

    /// Like [`NatsServer::start_with`] with a given `nats-server` binary
    /// (benches, which run outside the repository: [`find_nats_server`]).
    ///
    /// [`find_nats_server`]: crate::find_nats_server
    pub async fn start_bin(bin: &Path, extra: &str) -> Result<NatsServer> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::launch(bin, extra).await? {
                Launch::Ready(server) => return Ok(*server),
                Launch::PortTaken(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
            .context("nats-server lost the race for a free port three times")
    }

    async fn launch(bin: &Path, extra: &str) -> Result<Launch> {
        let dir = tempfile::Builder::new()
            .prefix("varde-nats-")
            .tempdir()
            .context("creating the nats-server temp dir")?;
        let port = try_free_port()?;
        let http_port = try_free_port()?;
        let store_dir = dir.path().join("jetstream");
        std::fs::create_dir(&store_dir)
            .with_context(|| format!("creating {}", store_dir.display()))?;
        let config_path = dir.path().join("nats-server.conf");
        let config = format!(
            "# nats-server config written by the varde-tests harness\n\
             listen: \"127.0.0.1:{port}\"\n\
             jetstream {{\n  store_dir: {store}\n}}\n\
             http: \"127.0.0.1:{http_port}\"\n\
             server_name: \"varde-test-{port}\"\n\n{extra}\n",
            store = quote(&store_dir)?,
        );
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .context("building the HTTP client")?;
        let mut server = NatsServer {
            process: ServerProcess::new("nats-server", dir.path().join("nats-server.log")),
            bin: bin.to_path_buf(),
            port,
            http_port,
            config_path,
            store_dir,
            http,
            dir,
        };
        keep_dir_if_asked(&mut server.dir);
        match server.spawn_and_wait().await {
            Ok(()) => Ok(Launch::Ready(Box::new(server))),
            Err(e) if lost_port_race(server.process.log_path()) => Ok(Launch::PortTaken(e)),
            Err(e) => Err(e),
        }
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c")
            .arg(&self.config_path)
            .current_dir(self.dir.path());
        self.process.spawn(cmd)?;
        let url = format!(
            "http://127.0.0.1:{}/healthz?js-enabled-only=true",
            self.http_port
        );
        let http = self.http.clone();
        self.process
            .wait_ready(READY_TIMEOUT, || {
                let request = http.get(&url);
                async move { Ok(request.send().await?.status().is_success()) }
            })
            .await
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` of the monitoring endpoint (`/varz`, `/jsz`, ...).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The generated config; rewrite it and call [`NatsServer::reload`].
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The JetStream store dir, kept across [`NatsServer::kill`] and
    /// [`NatsServer::restart`].
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The file that receives the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// GET a monitoring endpoint, e.g. `monitor("jsz?streams=true")`.
    pub async fn monitor(&self, endpoint: &str) -> Result<serde_json::Value> {
        let url = format!("{}/{endpoint}", self.monitor_url());
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET /{endpoint}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET /{endpoint}: HTTP {status}");
        }
        response
            .json()
            .await
            .with_context(|| format!("GET /{endpoint}: not JSON"))
    }

    /// GET `/varz`: the server's identity and effective options.
    pub async fn varz(&self) -> Result<serde_json::Value> {
        self.monitor("varz").await
    }

    /// Sends SIGHUP so the server rereads its config, and waits until the
    /// reload took effect (`config_load_time` in `/varz` changes). A config
    /// the server rejects gives an error with the log tail; the server keeps
    /// running with its previous config then.
    pub async fn reload(&self) -> Result<()> {
        let before = self.varz().await?["config_load_time"].clone();
        let log_len = std::fs::metadata(self.log_path()).map_or(0, |m| m.len());
        self.process.signal(Signal::HUP)?;
        let start = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Ok(varz) = self.varz().await
                && varz["config_load_time"] != before
            {
                return Ok(());
            }
            if let Some(line) = self.log_since(log_len, "Failed to reload") {
                bail!("nats-server rejected the reloaded config: {line}");
            }
            if start.elapsed() >= RELOAD_TIMEOUT {
                bail!(
                    "nats-server did not apply the reloaded config within {RELOAD_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// The first log line after byte `offset` that contains `needle`.
    fn log_since(&self, offset: u64, needle: &str) -> Option<String> {
        let bytes = std::fs::read(self.log_path()).ok()?;
        let new = bytes.get(usize::try_from(offset).ok()?..)?;
        String::from_utf8_lossy(new)
            .lines()
            .find(|line| line.contains(needle))
            .map(str::to_owned)
    }

    /// SIGKILL (no graceful shutdown), keeping the store dir.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Starts the server again on the same ports, config and store dir, and
    /// waits until it is ready. Kills it first if it is still running.
    pub async fn restart(&mut self) -> Result<()> {
        self.process.kill().await;
        self.spawn_and_wait()
            .await
            .context("restarting nats-server")
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

/// `include` line for `file` in `dir`, to append to a [`NatsServer`]'s
/// config. nats-server resolves an include relative to the including file
/// only (an absolute path is joined onto the config's directory), and each
/// server config sits in its own dir directly under the temp dir, so `dir`
/// must be inside the temp dir and is reached through `..`.
pub fn include_line(dir: &Path, file: &str) -> Result<String> {
    let canon = |p: &Path| p.canonicalize().with_context(|| format!("{}", p.display()));
    let tmp = canon(&std::env::temp_dir())?;
    let dir = canon(dir)?;
    let rel = dir.strip_prefix(&tmp).with_context(|| {
        format!(
            "{} must be inside {} to be included",
            dir.display(),
            tmp.display()
        )
    })?;
    let rel = rel.to_str().context("the dir is not UTF-8")?;
    Ok(format!("include \"../{rel}/{file}\"\n"))
}

/// A path as a double-quoted string for the config file.
fn quote(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    if s.contains(['"', '\\', '\n']) {
        bail!("{s} cannot be quoted in a nats-server config");
    }
    Ok(format!("\"{s}\""))
}
