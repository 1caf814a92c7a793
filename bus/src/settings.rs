//! Configuration: a TOML file plus `VARDE_…` environment overrides
//! (`VARDE_NATS__URL` overrides `nats.url`), through the `config` crate.
//! Every error names the key and the file it came from. Relative paths are
//! resolved against the config file's directory, so a config and its keys
//! can be moved together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use varde_schemas::OrgId;

use crate::directory::{self, DirectoryError, DirectoryHandle};
use crate::keys::{Identity, KeyError};
use crate::transport::NatsSettings;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration file {file} not found; pass --config or set VARDE_CONFIG")]
    NotFound { file: PathBuf },
    #[error("{file}: {detail}")]
    Parse { file: PathBuf, detail: String },
    #[error("{file}: missing key `{key}` ({hint})")]
    Missing {
        file: PathBuf,
        key: &'static str,
        hint: &'static str,
    },
    #[error("{file}: bad value for `{key}`: {reason}")]
    Invalid {
        file: PathBuf,
        key: &'static str,
        reason: String,
    },
    #[error("{file}: key `{key}`: {source}")]
    Key {
        file: PathBuf,
        key: &'static str,
        #[source]
        source: KeyError,
    },
    #[error("{file}: key `{key}`: {source}")]
    Directory {
        file: PathBuf,
        key: &'static str,
        #[source]
        source: DirectoryError,
    },
}

/// Reads `file` (TOML) merged with environment variables under `prefix`.
pub fn load<T: DeserializeOwned>(file: &Path, prefix: &str) -> Result<T, SettingsError> {
    if !file.exists() {
        return Err(SettingsError::NotFound {
            file: file.to_path_buf(),
        });
    }
    let built = config::Config::builder()
        .add_source(config::File::from(file).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(prefix)
                .source(Some(settings_env(prefix)))
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("directory.root_keys")
                .try_parsing(true),
        )
        .build()
        .map_err(|e| parse_error(file, e))?;
    built.try_deserialize().map_err(|e| parse_error(file, e))
}

/// The environment variables that are settings: `<PREFIX>_<SECTION>__<KEY>`
/// and `<PREFIX>_LOG_FORMAT`. Others sharing the prefix (`VARDE_CONFIG`,
/// `VARDE_LOG`, `VARDE_NATS_SERVER`, …) select files or tools and would
/// otherwise be refused as unknown keys.
fn settings_env(prefix: &str) -> config::Map<String, String> {
    let head = format!("{prefix}_");
    std::env::vars()
        .filter(|(k, _)| {
            k.strip_prefix(&head)
                .is_some_and(|rest| rest.contains("__") || rest == "LOG_FORMAT")
        })
        .collect()
}

fn parse_error(file: &Path, e: config::ConfigError) -> SettingsError {
    // config's messages already carry the key (and the origin for type
    // errors); make sure the file is always named.
    let detail = e.to_string();
    SettingsError::Parse {
        file: file.to_path_buf(),
        detail,
    }
}

/// `[identity]`: who this process is on the bus.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    pub org: Option<String>,
    /// age identity file (`AGE-SECRET-KEY-1…`, 0600).
    pub age: Option<PathBuf>,
    /// Varde ed25519 signing key file (0600).
    pub signing: Option<PathBuf>,
}

/// `[directory]`: which roots to trust and where the directory comes from.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySettings {
    /// Pinned CSIRT root keys (`ed25519:…`).
    #[serde(default)]
    pub root_keys: Vec<String>,
    /// Initial signed directory file; optional when the KV bucket has one.
    pub file: Option<PathBuf>,
    /// Where the last accepted directory is kept (rollback protection).
    pub state: Option<PathBuf>,
    /// Follow the KV bucket for newer versions.
    #[serde(default = "yes")]
    pub watch: bool,
}

fn yes() -> bool {
    true
}

/// `[consumer]`: the durable consumer this identity reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Durable name; defaults to the org id.
    pub durable: Option<String>,
    /// Create/update the consumer (development). Provisioned deployments set
    /// this to false: the operator creates consumers.
    #[serde(default = "yes")]
    pub create: bool,
}

// Not derived: a file without `[consumer]` must mean the same as an empty
// `[consumer]` section (create = true), not `false`.
impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            durable: None,
            create: true,
        }
    }
}

/// Resolves `p` against the directory of the config file.
pub fn resolve(file: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// A configuration file bound to its path, with typed accessors that name
/// the key and the file on error.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub file: PathBuf,
    pub value: T,
}

impl<T: DeserializeOwned> Loaded<T> {
    pub fn read(file: &Path) -> Result<Self, SettingsError> {
        Ok(Loaded {
            file: file.to_path_buf(),
            value: load(file, "VARDE")?,
        })
    }
}

/// The parts shared by every Varde process (`varde`, `varde hub`,
/// `varde-bridge`): identity, directory and NATS settings.
pub trait BusSettings {
    fn identity(&self) -> &IdentitySettings;
    fn directory(&self) -> &DirectorySettings;
    fn nats(&self) -> &NatsSettings;
}

/// Implements [`BusSettings`] for a settings file's struct whose
/// `identity`, `directory` and `nats` fields hold the shared sections
/// (every Varde file has them under the same names).
#[macro_export]
macro_rules! impl_bus_settings {
    ($t:ty) => {
        impl $crate::settings::BusSettings for $t {
            fn identity(&self) -> &$crate::settings::IdentitySettings {
                &self.identity
            }
            fn directory(&self) -> &$crate::settings::DirectorySettings {
                &self.directory
            }
            fn nats(&self) -> &$crate::transport::NatsSettings {
                &self.nats
            }
        }
    };
}

impl<T: BusSettings> Loaded<T> {
    pub fn path(&self, p: &Path) -> PathBuf {
        resolve(&self.file, p)
    }

    fn missing(&self, key: &'static str, hint: &'static str) -> SettingsError {
        SettingsError::Missing {
            file: self.file.clone(),
            key,
            hint,
        }
    }

    pub fn org(&self) -> Result<OrgId, SettingsError> {
        let raw = self.value.identity().org.as_deref().ok_or_else(|| {
            self.missing("identity.org", "your organisation's id, e.g. \"gjovik\"")
        })?;
        OrgId::new(raw).map_err(|e| SettingsError::Invalid {
            file: self.file.clone(),
            key: "identity.org",
            reason: e.to_string(),
        })
    }

    /// Loads the identity's key files (refusing readable ones).
    pub fn identity(&self) -> Result<Arc<Identity>, SettingsError> {
        let org = self.org()?;
        let i = self.value.identity();
        let age = i
            .age
            .as_deref()
            .ok_or_else(|| self.missing("identity.age", "path of the age identity file"))?;
        let signing = i
            .signing
            .as_deref()
            .ok_or_else(|| self.missing("identity.signing", "path of the signing key file"))?;
        let age_path = self.path(age);
        let sign_path = self.path(signing);
        let age =
            crate::keys::load_age_identity(&age_path).map_err(|source| SettingsError::Key {
                file: self.file.clone(),
                key: "identity.age",
                source,
            })?;
        let sk =
            crate::keys::load_signing_key(&sign_path).map_err(|source| SettingsError::Key {
                file: self.file.clone(),
                key: "identity.signing",
                source,
            })?;
        Ok(Arc::new(Identity::from_parts(org, age, sk)))
    }

    pub fn roots(&self) -> Result<Vec<ed25519_dalek::VerifyingKey>, SettingsError> {
        directory::parse_roots(&self.value.directory().root_keys).map_err(|source| {
            SettingsError::Directory {
                file: self.file.clone(),
                key: "directory.root_keys",
                source,
            }
        })
    }

    pub fn state_path(&self) -> Option<PathBuf> {
        self.value
            .directory()
            .state
            .as_deref()
            .map(|p| self.path(p))
    }

    /// The directory from `directory.file`, else from the state file, else
    /// from `fallback` (e.g. fetched from the KV bucket).
    pub fn directory_handle(
        &self,
        fallback: Option<Vec<u8>>,
    ) -> Result<DirectoryHandle, SettingsError> {
        let roots = self.roots()?;
        let state = self.state_path();
        let derr = |key, source| SettingsError::Directory {
            file: self.file.clone(),
            key,
            source,
        };
        if let Some(f) = &self.value.directory().file {
            let path = self.path(f);
            let bytes = std::fs::read(&path).map_err(|source| {
                derr(
                    "directory.file",
                    DirectoryError::Read {
                        path: path.clone(),
                        source,
                    },
                )
            })?;
            let h = DirectoryHandle::new(&bytes, roots, state)
                .map_err(|e| derr("directory.file", e))?;
            if let Some(kv) = fallback {
                // The KV copy may be newer than the file we started from.
                if let Err(e) = h.offer(&kv) {
                    tracing::debug!(error = %e, "KV directory not adopted at start");
                }
            }
            return Ok(h);
        }
        if let Some(state) = &state
            && state.exists()
        {
            return DirectoryHandle::from_state(roots, state.clone())
                .map_err(|e| derr("directory.state", e));
        }
        match fallback {
            Some(bytes) => DirectoryHandle::new(&bytes, roots, state)
                .map_err(|e| derr("directory.root_keys", e)),
            None => Err(self.missing(
                "directory.file",
                "no directory file, no state and none in the KV bucket",
            )),
        }
    }

    /// NATS settings with relative paths resolved against the config file.
    pub fn nats(&self) -> NatsSettings {
        let mut n = self.value.nats().clone();
        if n.inbox_prefix.is_none()
            && let Ok(org) = self.org()
        {
            n.inbox_prefix = Some(crate::subject::inbox_prefix(&org));
        }
        for p in [
            &mut n.nkey_seed,
            &mut n.creds,
            &mut n.tls_ca,
            &mut n.tls_cert,
            &mut n.tls_key,
        ] {
            if let Some(path) = p.as_mut() {
                *path = resolve(&self.file, path);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::StreamSettings;

    /// The core sections as a process's configuration file holds them.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        identity: IdentitySettings,
        #[serde(default)]
        directory: DirectorySettings,
        #[serde(default)]
        nats: NatsSettings,
        // Only parsed: the test checks the errors it gives.
        #[serde(default)]
        #[allow(dead_code)]
        stream: StreamSettings,
    }

    crate::impl_bus_settings!(Settings);

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("varde.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn errors_name_the_key_and_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "[identity]\nage = \"k.age\"\n");
        let l: Loaded<Settings> = Loaded::read(&p).unwrap();
        let e = l.org().unwrap_err().to_string();
        assert!(
            e.contains("identity.org") && e.contains("varde.toml"),
            "{e}"
        );

        let p = write(d.path(), "[identity]\norg = \"Not A Slug\"\n");
        let l: Loaded<Settings> = Loaded::read(&p).unwrap();
        let e = l.org().unwrap_err().to_string();
        assert!(
            e.contains("identity.org") && e.contains("varde.toml"),
            "{e}"
        );

        let p = write(d.path(), "[nats]\nurl = 5\ntls_required = \"maybe\"\n");
        let e = Loaded::<Settings>::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("varde.toml") && e.contains("tls_required"),
            "{e}"
        );

        let p = write(d.path(), "[nats]\nurll = \"x\"\n");
        let e = Loaded::<Settings>::read(&p).unwrap_err().to_string();
        assert!(e.contains("varde.toml") && e.contains("urll"), "{e}");

        let p = write(d.path(), "[stream]\nmax_age = \"forever\"\n");
        let e = Loaded::<Settings>::read(&p).unwrap_err().to_string();
        assert!(e.contains("varde.toml") && e.contains("forever"), "{e}");

        let p = write(d.path(), "[stream]\nmax_per_sender_kind = 0\n");
        let e = Loaded::<Settings>::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("varde.toml")
                && e.contains("max_per_sender_kind")
                && e.contains("without limit"),
            "{e}"
        );

        let e = Loaded::<Settings>::read(&d.path().join("nope.toml")).unwrap_err();
        assert!(matches!(e, SettingsError::NotFound { .. }));
    }
}
