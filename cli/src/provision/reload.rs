//! Making running servers re-read the authorization file. nats-server
//! reloads on SIGHUP (what `nats-server --signal reload=<pid>` and
//! `systemctl reload` send): connections stay up, users whose permissions
//! changed get the new ones, removed users are disconnected, and JetStream
//! is untouched, so no stored or in-flight message is lost.

use std::future::Future;
use std::path::PathBuf;

use rustix::process::{Pid, Signal, kill_process};

/// Something that makes the broker apply a rewritten config.
pub trait Reload {
    /// Returns once the reload was requested (and, where the method can
    /// tell, applied).
    fn reload(&self) -> impl Future<Output = Result<(), ReloadError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read the nats-server pid file {path}: {source}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} does not hold a process id (got `{got}`)")]
    BadPid { path: PathBuf, got: String },
    #[error(
        "cannot signal nats-server (pid {pid}) to reload: {source} (is it running, and do you run as its user?)"
    )]
    Signal {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("reload command `{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("reload failed: {0}")]
    Other(String),
}

/// No running server to tell (first provisioning, before the server starts).
pub struct NoReload;

impl Reload for NoReload {
    async fn reload(&self) -> Result<(), ReloadError> {
        Ok(())
    }
}

/// SIGHUP to every server whose pid file is listed (one per cluster node
/// on this host).
pub struct SignalPidFiles(pub Vec<PathBuf>);

impl Reload for SignalPidFiles {
    async fn reload(&self) -> Result<(), ReloadError> {
        for path in &self.0 {
            let text = std::fs::read_to_string(path).map_err(|source| ReloadError::PidFile {
                path: path.clone(),
                source,
            })?;
            let got = text.trim();
            let pid = got
                .parse::<i32>()
                .ok()
                .and_then(Pid::from_raw)
                .ok_or_else(|| ReloadError::BadPid {
                    path: path.clone(),
                    got: got.chars().take(40).collect(),
                })?;
            kill_process(pid, Signal::HUP).map_err(|e| ReloadError::Signal {
                pid: pid.as_raw_nonzero().get(),
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

/// A command run through `sh -c`, e.g. `systemctl reload nats-server` or an
/// ssh loop over the cluster nodes.
pub struct ShellCommand(pub String);

impl Reload for ShellCommand {
    async fn reload(&self) -> Result<(), ReloadError> {
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.0)
            .output()
            .await
            .map_err(|e| ReloadError::Command {
                command: self.0.clone(),
                detail: e.to_string(),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ReloadError::Command {
                command: self.0.clone(),
                detail: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }
}

/// Every reload in turn (pid files and a command).
pub struct All(pub Vec<Box<dyn DynReload>>);

/// Object-safe form of [`Reload`] for [`All`].
pub trait DynReload: Send + Sync {
    fn reload_boxed(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ReloadError>> + Send + '_>>;
}

impl<R: Reload + Send + Sync> DynReload for R {
    fn reload_boxed(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ReloadError>> + Send + '_>> {
        Box::pin(self.reload())
    }
}

impl Reload for All {
    async fn reload(&self) -> Result<(), ReloadError> {
        for r in &self.0 {
            r.reload_boxed().await?;
        }
        Ok(())
    }
}
