//! The repository's git-ignored `.venv/` holding the pinned servers.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

/// The repository root (this crate lives in `tests/kit`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The path of `.venv/bin/<name>`, after making sure the venv holds the
/// pinned servers (runs `deploy/dev/venv.sh` once per process, under a file
/// lock so that test processes running side by side do not install twice at
/// once; the script itself returns at once when the pins are installed).
pub fn venv_bin(name: &str) -> Result<PathBuf> {
    static ENSURED: OnceLock<Result<(), String>> = OnceLock::new();
    ENSURED
        .get_or_init(|| ensure_venv().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))?;
    let path = repo_root().join(".venv").join("bin").join(name);
    if !path.is_file() {
        bail!(
            "{} does not exist after deploy/dev/venv.sh ran",
            path.display()
        );
    }
    Ok(path)
}

fn ensure_venv() -> Result<()> {
    let root = repo_root();
    let venv = root.join(".venv");
    fs::create_dir_all(&venv).with_context(|| format!("creating {}", venv.display()))?;
    let lock_path = venv.join(".varde-install.lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("opening lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let script = root.join("deploy").join("dev").join("venv.sh");
    // The script's output goes to the test's stderr: an install is worth seeing.
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    drop(lock);
    if !status.success() {
        bail!("{} failed: {status}", script.display());
    }
    Ok(())
}

/// `.venv/bin/<name>` in the current directory or a parent, for benches,
/// which may run outside the repository. Installs nothing.
pub fn find_venv_bin(name: &str) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|d| d.join(".venv/bin").join(name))
        .find(|c| c.exists())
}

/// `VARDE_NATS_SERVER`, else `.venv/bin/nats-server` here or in a parent
/// directory, else `nats-server` on `PATH`.
pub fn find_nats_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VARDE_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    find_venv_bin("nats-server").or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("nats-server"))
                .find(|p| p.exists())
        })
    })
}
