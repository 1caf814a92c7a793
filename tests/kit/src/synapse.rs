//! A real Synapse homeserver (SQLite) on loopback.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;

use crate::matrix::{MatrixError, MatrixUser, call, client_url, http_client};
use crate::ports::try_free_port;
use crate::process::{ServerProcess, keep_dir_if_asked, lost_port_race};
use crate::venv::venv_bin;

/// The dev/test policy (open registration, no rate limits, no federation),
/// shared with the local dev stack.
const DEV_CONFIG: &str = include_str!("../../../deploy/synapse/homeserver.dev.yaml");
/// Synapse imports a lot of Python before it listens; allow for a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `stop` waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Fresh ports to try when another process takes ours between probe and bind.
const PORT_ATTEMPTS: usize = 3;

/// An account made by [`Synapse::register`].
#[derive(Clone, Debug)]
pub struct RegisteredUser {
    pub user_id: String,
    pub access_token: String,
    pub device_id: String,
    pub password: String,
}

/// Synapse with SQLite, listening on 127.0.0.1 only (client API, plain
/// HTTP), with its config, database, media and log in a temp dir. Dropping it
/// kills the server and removes the dir (set `VARDE_KEEP_TEST_DIRS=1` to keep
/// the dir).
pub struct Synapse {
    process: ServerProcess,
    python: PathBuf,
    port: u16,
    server_name: String,
    http: reqwest::Client,
    // Last, so that the process is gone before the dir is removed.
    dir: TempDir,
}

enum Launch {
    Ready(Box<Synapse>),
    PortTaken(anyhow::Error),
}

impl Synapse {
    /// A homeserver named `localhost:<port>`.
    pub async fn start() -> Result<Synapse> {
        Self::start_inner(None).await
    }

    /// Like `start`, with `extra` (YAML) read after the dev policy, e.g.
    /// `max_upload_size: 100K` to make the homeserver refuse a file.
    pub async fn start_with(extra: &str) -> Result<Synapse> {
        let mut s = Self::start_inner(None).await?;
        std::fs::write(s.dir.path().join("extra.yaml"), extra)
            .context("writing Synapse's extra config")?;
        s.start_again().await?;
        Ok(s)
    }

    /// A homeserver named `server_name` (for two homeservers in one test;
    /// they do not federate).
    pub async fn start_named(server_name: &str) -> Result<Synapse> {
        Self::start_inner(Some(server_name)).await
    }

    /// A homeserver run by a given Python with Synapse installed (benches,
    /// which run outside the repository: [`find_venv_bin`]).
    ///
    /// [`find_venv_bin`]: crate::find_venv_bin
    pub async fn start_python(python: &Path) -> Result<Synapse> {
        Self::start_from(python, None).await
    }

    async fn start_inner(server_name: Option<&str>) -> Result<Synapse> {
        let python = tokio::task::spawn_blocking(|| venv_bin("python"))
            .await
            .context("venv check panicked")??;
        Self::start_from(&python, server_name).await
    }

    async fn start_from(python: &Path, server_name: Option<&str>) -> Result<Synapse> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::launch(python, server_name).await? {
                Launch::Ready(server) => return Ok(*server),
                Launch::PortTaken(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
            .context("Synapse lost the race for a free port three times")
    }

    async fn launch(python: &Path, server_name: Option<&str>) -> Result<Launch> {
        let dir = tempfile::Builder::new()
            .prefix("varde-synapse-")
            .tempdir()
            .context("creating the Synapse temp dir")?;
        let port = try_free_port()?;
        let server_name = server_name.map_or_else(|| format!("localhost:{port}"), str::to_owned);
        write_config(dir.path(), port, &server_name)?;
        let mut server = Synapse {
            process: ServerProcess::new("synapse", dir.path().join("synapse.log")),
            python: python.to_path_buf(),
            port,
            server_name,
            http: http_client()?,
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
        let mut cmd = Command::new(&self.python);
        cmd.args(["-m", "synapse.app.homeserver", "-c", "homeserver.dev.yaml"])
            .args(["-c", "instance.yaml"]);
        if self.dir.path().join("extra.yaml").exists() {
            cmd.args(["-c", "extra.yaml"]);
        }
        cmd.current_dir(self.dir.path())
            // Log lines reach the file at once, so error tails are complete.
            .env("PYTHONUNBUFFERED", "1");
        self.process.spawn(cmd)?;
        let base = self.base_url();
        let http = self.http.clone();
        self.process
            .wait_ready(READY_TIMEOUT, || {
                let health = http
                    .get(format!("{base}/health"))
                    .timeout(Duration::from_secs(5));
                let versions = http
                    .get(format!("{base}/_matrix/client/versions"))
                    .timeout(Duration::from_secs(5));
                async move {
                    Ok(health.send().await?.status().is_success()
                        && versions.send().await?.status().is_success())
                }
            })
            .await
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Matrix server name, the part after `:` in user ids.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The temp dir holding config, database, media and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file that receives Synapse's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The last lines of the Synapse log.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// Registers `localpart` with the `m.login.dummy` flow and logs it in on
    /// a new device.
    pub async fn register(&self, localpart: &str, password: &str) -> Result<RegisteredUser> {
        let url = client_url(&self.base_url(), &["register"])?;
        let mut body = json!({
            "username": localpart,
            "password": password,
            "auth": { "type": "m.login.dummy" },
            "initial_device_display_name": "varde-tests",
        });
        let timeout = Duration::from_secs(30);
        let first = call(
            &self.http,
            Method::POST,
            url.clone(),
            None,
            Some(&body),
            timeout,
        )
        .await;
        let answer = match first {
            Ok(answer) => answer,
            // The spec's two-step form: the server opens a UIA session first.
            Err(e) => {
                let session = e
                    .downcast_ref::<MatrixError>()
                    .filter(|m| m.status == 401)
                    .and_then(|m| m.body.get("session"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let Some(session) = session else {
                    return Err(e.context(format!("registering {localpart}")));
                };
                body["auth"]["session"] = Value::String(session);
                call(&self.http, Method::POST, url, None, Some(&body), timeout)
                    .await
                    .with_context(|| format!("registering {localpart}"))?
            }
        };
        let get = |key: &str| {
            answer
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("register: no `{key}` in the answer {answer}"))
        };
        Ok(RegisteredUser {
            user_id: get("user_id")?,
            access_token: get("access_token")?,
            device_id: get("device_id")?,
            password: password.to_owned(),
        })
    }

    /// A client-server API client acting as `user`.
    pub fn user(&self, user: &RegisteredUser) -> Result<MatrixUser> {
        MatrixUser::new(self.base_url(), &user.user_id, &user.access_token)
    }

    /// [`Synapse::register`] and [`Synapse::user`] in one.
    pub async fn register_user(&self, localpart: &str, password: &str) -> Result<MatrixUser> {
        let registered = self.register(localpart, password).await?;
        self.user(&registered)
    }

    /// SIGTERM, then SIGKILL after a few seconds; keeps the data dir.
    pub async fn stop(&mut self) {
        self.process.terminate(STOP_GRACE).await;
    }

    /// Starts Synapse again on the same port and data dir and waits until it
    /// is ready. Kills it first if it is still running.
    pub async fn start_again(&mut self) -> Result<()> {
        self.process.kill().await;
        self.spawn_and_wait()
            .await
            .context("starting Synapse again")
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Whether the Synapse process is alive.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

/// Writes the dev policy, the per-instance config and a fresh signing key.
fn write_config(dir: &Path, port: u16, server_name: &str) -> Result<()> {
    let write = |name: &str, contents: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    };
    write("homeserver.dev.yaml", DEV_CONFIG)?;

    // A JSON string is a valid YAML double-quoted scalar.
    let q = |s: &str| Value::String(s.to_owned()).to_string();
    let path = |name: &str| -> Result<String> {
        let p = dir.join(name);
        let s = p
            .to_str()
            .with_context(|| format!("{} is not UTF-8", p.display()))?;
        Ok(q(s))
    };
    let instance = format!(
        "# Per-instance Synapse config written by the varde-tests harness;\n\
         # the policy is in homeserver.dev.yaml.\n\
         server_name: {name}\n\
         public_baseurl: {baseurl}\n\
         listeners:\n\
         \x20 - port: {port}\n\
         \x20   bind_addresses: [\"127.0.0.1\"]\n\
         \x20   type: http\n\
         \x20   tls: false\n\
         \x20   x_forwarded: false\n\
         \x20   resources:\n\
         \x20     - names: [client]\n\
         \x20       compress: false\n\
         database:\n\
         \x20 name: sqlite3\n\
         \x20 args:\n\
         \x20   database: {db}\n\
         media_store_path: {media}\n\
         signing_key_path: {key}\n",
        name = q(server_name),
        baseurl = q(&format!("http://127.0.0.1:{port}/")),
        db = path("homeserver.db")?,
        media = path("media_store")?,
        key = path("signing.key")?,
    );

    // Fresh secrets per instance: the signing key seed, the macaroon key
    // (access tokens) and the form secret.
    let mut random = [0u8; 96];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .context("reading /dev/urandom for the instance secrets")?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
    let instance = format!(
        "{instance}macaroon_secret_key: {}\nform_secret: {}\n",
        q(&b64(&random[32..64])),
        q(&b64(&random[64..96])),
    );
    write("instance.yaml", &instance)?;
    // signedjson's format: "<alg> <version> <unpadded base64 seed>".
    write(
        "signing.key",
        &format!("ed25519 a_test {}\n", b64(&random[..32])),
    )
}
