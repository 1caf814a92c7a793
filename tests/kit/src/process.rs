//! A server child process: output to a log file, signals, readiness polling,
//! kill on drop.

use std::fs::OpenOptions;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

/// How many log lines an error message carries.
const LOG_TAIL_LINES: usize = 40;

/// A running (or stopped) server process with its output in `log_path`.
pub struct ServerProcess {
    name: &'static str,
    log_path: PathBuf,
    child: Option<Child>,
}

impl ServerProcess {
    /// A handle that has no process yet; see [`ServerProcess::spawn`].
    pub fn new(name: &'static str, log_path: PathBuf) -> Self {
        Self {
            name,
            log_path,
            child: None,
        }
    }

    /// Spawns `cmd` with stdin closed and stdout and stderr appended to the
    /// log file. Any previous process must have been stopped.
    pub fn spawn(&mut self, mut cmd: Command) -> Result<()> {
        if self.child.is_some() {
            bail!("{} is already running", self.name);
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening log file {}", self.log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none() && self.child.is_some()
    }

    /// `Some(status)` once the process exited (and forgets it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            Ok(None) | Err(_) => None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Sends `signal` to the running process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let raw = self
            .pid()
            .ok_or_else(|| anyhow!("{} is not running", self.name))?;
        let pid = i32::try_from(raw)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| anyhow!("{} has an invalid pid {raw}", self.name))?;
        kill_process(pid, signal)
            .with_context(|| format!("sending {signal:?} to {} (pid {raw})", self.name))
    }

    /// SIGKILL and reap. Nothing happens when no process runs.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean the process is already gone, which is the goal.
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, then SIGKILL when the process has not exited after `grace`.
    pub async fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(Pid::from_raw)
            && kill_process(pid, Signal::TERM).is_ok()
            && tokio::time::timeout(grace, child.wait()).await.is_ok()
        {
            return;
        }
        let _ = child.kill().await;
    }

    /// The last lines of the log file, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, LOG_TAIL_LINES)
    }

    /// Calls `probe` (every 10 ms at first, backing off to every 100 ms)
    /// until it returns `Ok(true)`, failing early when the process exits and
    /// after `timeout`. Errors carry the log tail.
    pub async fn wait_ready<F, Fut>(&mut self, timeout: Duration, mut probe: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool>>,
    {
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(status) = self.exit_status() {
                bail!(
                    "{} exited during startup ({status}); log {}:\n{}",
                    self.name,
                    self.log_path.display(),
                    self.log_tail()
                );
            }
            if self.child.is_none() {
                bail!("{} is not running", self.name);
            }
            let last_err = match probe().await {
                Ok(true) => return Ok(()),
                Ok(false) => String::from("not ready yet"),
                Err(e) => format!("{e:#}"),
            };
            if start.elapsed() >= timeout {
                bail!(
                    "{} not ready after {timeout:?} (last probe: {last_err}); log {}:\n{}",
                    self.name,
                    self.log_path.display(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.start_kill();
        // Reap it, so that the temp dir is removed after the process is gone
        // and no zombie is left; a killed process exits within milliseconds.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

/// The last `lines` lines of a text file, or a note why there are none.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Whether the log tells of a port that another process took first.
pub fn lost_port_race(log_path: &Path) -> bool {
    std::fs::read(log_path).is_ok_and(|bytes| {
        String::from_utf8_lossy(&bytes)
            .to_ascii_lowercase()
            .contains("address already in use")
    })
}

/// Keeps a temp dir after the test when `VARDE_KEEP_TEST_DIRS` is set.
pub fn keep_dir_if_asked(dir: &mut tempfile::TempDir) {
    if std::env::var_os("VARDE_KEEP_TEST_DIRS").is_some_and(|v| !v.is_empty() && v != "0") {
        dir.disable_cleanup(true);
        eprintln!("varde-tests: keeping {}", dir.path().display());
    }
}
