//! nats-server and Synapse for the bench, started from the repository's
//! `.venv/` on free loopback ports (or given by URL), killed on drop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The dev/test Synapse policy (open registration, no rate limits).
const DEV_CONFIG: &str = include_str!("../../../deploy/synapse/homeserver.dev.yaml");

/// A server the bench started, or one it was given.
pub struct Server {
    child: Option<tokio::process::Child>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.start_kill();
        }
    }
}

impl Server {
    pub fn external(url: &str) -> Server {
        Server {
            child: None,
            url: url.trim_end_matches('/').to_string(),
            _dir: None,
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `.venv/bin/<name>` in the current directory or a parent.
fn venv_bin(name: &str) -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        let c = d.join(".venv/bin").join(name);
        if c.exists() {
            return Some(c);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    None
}

pub async fn nats() -> anyhow::Result<Server> {
    let bin = varde_bus::bench::find_nats_server().context(
        "nats-server not found: run deploy/dev/venv.sh, set VARDE_NATS_SERVER, or pass --nats",
    )?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let child = tokio::process::Command::new(&bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("nats://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(c) = async_nats::connect(&url).await
            && async_nats::jetstream::new(c).query_account().await.is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("nats-server at {url} did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Server {
        child: Some(child),
        url,
        _dir: Some(dir),
    })
}

fn random_b64(n: usize) -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
}

/// Synapse (SQLite) with the dev policy, as the test harness runs it.
pub async fn synapse() -> anyhow::Result<Server> {
    let python = venv_bin("python")
        .context("Synapse not found: run deploy/dev/venv.sh, or pass --homeserver")?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let p = |name: &str| q(&dir.path().join(name).to_string_lossy());
    std::fs::write(dir.path().join("homeserver.dev.yaml"), DEV_CONFIG)?;
    let instance = format!(
        "server_name: {name}\npublic_baseurl: {base}\nlisteners:\n  - port: {port}\n    bind_addresses: [\"127.0.0.1\"]\n    type: http\n    tls: false\n    x_forwarded: false\n    resources:\n      - names: [client]\n        compress: false\ndatabase:\n  name: sqlite3\n  args:\n    database: {db}\nmedia_store_path: {media}\nsigning_key_path: {key}\nmacaroon_secret_key: {mac}\nform_secret: {form}\n",
        name = q(&format!("localhost:{port}")),
        base = q(&format!("http://127.0.0.1:{port}/")),
        db = p("homeserver.db"),
        media = p("media_store"),
        key = p("signing.key"),
        mac = q(&random_b64(32)?),
        form = q(&random_b64(32)?),
    );
    std::fs::write(dir.path().join("instance.yaml"), instance)?;
    std::fs::write(
        dir.path().join("signing.key"),
        format!("ed25519 a_bench {}\n", random_b64(32)?),
    )?;
    let log = std::fs::File::create(dir.path().join("synapse.log"))?;
    let child = tokio::process::Command::new(&python)
        .args([
            "-m",
            "synapse.app.homeserver",
            "-c",
            "homeserver.dev.yaml",
            "-c",
            "instance.yaml",
        ])
        .current_dir(dir.path())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}");
    let http = matrix_sdk::reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = http
            .get(format!("{url}/_matrix/client/versions"))
            .send()
            .await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "Synapse did not become ready; see {}",
                dir.path().join("synapse.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(Server {
        child: Some(child),
        url,
        _dir: Some(dir),
    })
}
