//! A real browser for tests of web pages: Debian's `chromium`, headless,
//! driven through its `chromedriver` (WebDriver) by fantoccini. Both come
//! from Debian's packages, which `tests/run.sh` installs like the servers.
//! The driver listens on a free loopback port and goes on drop, with the
//! browser's profile dir.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;
use varde_testkit::free_port;
use varde_testkit::process::ServerProcess;

/// Debian's paths; `VARDE_CHROMIUM` and `VARDE_CHROMEDRIVER` override.
fn tool(env: &str, default: &str) -> Result<PathBuf> {
    let p = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    if !p.exists() {
        bail!(
            "{} is missing: the browser tests need Debian's chromium and chromium-driver (tests/run.sh installs them; or set {env})",
            p.display()
        );
    }
    Ok(p)
}

pub struct Browser {
    pub client: Client,
    _driver: ServerProcess,
    _dir: TempDir,
}

impl Browser {
    pub async fn start() -> Result<Browser> {
        let chromium = tool("VARDE_CHROMIUM", "/usr/bin/chromium")?;
        let driver = tool("VARDE_CHROMEDRIVER", "/usr/bin/chromedriver")?;
        let dir = tempfile::Builder::new()
            .prefix("varde-browser-")
            .tempdir()?;
        let port = free_port();
        let mut process = ServerProcess::new("chromedriver", dir.path().join("chromedriver.log"));
        let mut cmd = Command::new(&driver);
        cmd.arg(format!("--port={port}")).arg(format!(
            "--log-path={}",
            dir.path().join("driver-detail.log").display()
        ));
        process.spawn(cmd)?;
        let status = format!("http://127.0.0.1:{port}/status");
        let http = reqwest::Client::new();
        process
            .wait_ready(Duration::from_secs(30), || {
                let (http, status) = (http.clone(), status.clone());
                async move {
                    let v: Value = http.get(&status).send().await?.json().await?;
                    Ok(v["value"]["ready"] == json!(true))
                }
            })
            .await?;
        let profile = dir.path().join("profile");
        // Headless, and none of Chromium's own traffic: the test machine's
        // network is closed, and every page here is on loopback.
        let caps = json!({
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,720",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            bail!("capabilities are an object");
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .with_context(|| {
                format!(
                    "starting chromium through chromedriver; log {}",
                    process.log_path().display()
                )
            })?;
        Ok(Browser {
            client,
            _driver: process,
            _dir: dir,
        })
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.client
            .execute(script, args)
            .await
            .with_context(|| format!("running in the page: {script}"))
    }

    /// Polls `script` until it returns `want`, for at most `timeout`;
    /// the error names what it last returned.
    pub async fn wait_for(&self, script: &str, want: Value, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let got = self.js(script, vec![]).await?;
            if got == want {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("`{script}` is {got} after {timeout:?}, waited for {want}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the window to `path` (its folder is made).
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.client.screenshot().await?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (and its chromium) before the driver goes.
        let client = self.client.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.close().await;
            });
        }
    }
}
