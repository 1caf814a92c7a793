//! Broker provisioning from the signed directory (`varde nats provision`):
//! nkey users with subject permissions, their durable consumers, and the
//! server reload that puts them in force without losing a message.
//!
//! One run, in an order that never lets a message fall through a gap:
//! 1. plan users and consumers from the directory ([`plan`]);
//! 2. make or reuse each user's nkey seed, 0600, one file each ([`seeds`]);
//! 3. make the streams of new scopes, create new consumers and update
//!    moved ones in place ([`consumers`]), before any new user can connect;
//! 4. write the `authorization` include and reload the server
//!    ([`authorization`], [`reload`]) only when it changed;
//! 5. delete the consumers and seeds of users that are gone.

pub mod authorization;
pub mod consumers;
pub mod dev_ca;
pub mod plan;
pub mod reload;
pub mod seeds;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use jiff::Timestamp;

pub use consumers::ConsumerReport;
pub use plan::{Member, Permissions, Plan, PlanError, Role};
pub use reload::{NoReload, Reload, ReloadError};
use varde_bus::directory::VerifiedDirectory;
use varde_bus::transport::NatsSettings;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] varde_bus::keys::KeyError),
    #[error("{path}: not a usable NATS user seed: {reason}")]
    Seed { path: PathBuf, reason: String },
    #[error("consumer {op} `{name}` failed: {detail}")]
    Consumer {
        op: &'static str,
        name: String,
        detail: String,
    },
    #[error(transparent)]
    Reload(#[from] ReloadError),
    #[error("making the scope streams failed: {0}")]
    Streams(#[from] varde_bus::transport::TransportError),
    #[error(
        "user `{name}` cannot use the bus after the reload: {detail} (did every server reload the new {file}?)"
    )]
    Check {
        name: String,
        file: &'static str,
        detail: String,
    },
}

/// Where to write and what to put in members' client settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Output directory: `auth.conf`, `operator.nk`, `users/<name>.nk` and
    /// `users/<name>.toml`. The server config includes `auth.conf` from
    /// here (or a copy of it).
    pub out: PathBuf,
    /// The broker URL written into members' client settings.
    pub url: String,
    /// When keys expire and revocations take effect.
    pub now: Timestamp,
}

/// What a run changed.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub directory_version: u64,
    pub users_added: Vec<String>,
    pub users_removed: Vec<String>,
    pub users: usize,
    pub consumers: ConsumerReport,
    /// Streams of new scopes (orgs, groups) made by this run.
    pub streams_created: Vec<String>,
    /// Whether `auth.conf` changed (and the server was told to reload).
    pub reloaded: bool,
    /// The operator seed was made by this run.
    pub operator_created: bool,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        writeln!(
            f,
            "directory version {}: {} users (plus the operator)",
            self.directory_version, self.users
        )?;
        writeln!(f, "users added: {}", list(&self.users_added))?;
        writeln!(f, "users removed: {}", list(&self.users_removed))?;
        writeln!(f, "streams created: {}", list(&self.streams_created))?;
        let c = &self.consumers;
        writeln!(
            f,
            "consumers created: {}; updated: {}; deleted: {}; unchanged: {}",
            list(&c.created),
            list(&c.updated),
            list(&c.deleted),
            c.unchanged.len()
        )?;
        write!(
            f,
            "{}",
            if self.reloaded {
                "authorization changed: server reload requested"
            } else {
                "authorization unchanged: no reload needed"
            }
        )
    }
}

/// Provisions `dir`: see the module docs for the order of steps. Without
/// `js` (the server is not running yet) only the files are written.
pub async fn provision<R: Reload>(
    dir: &VerifiedDirectory,
    opts: &Options,
    js: Option<&jetstream::Context>,
    reload: &R,
) -> Result<Report, ProvisionError> {
    let plan = Plan::from_directory(dir, opts.now)?;
    let seeds = seeds::Seeds::new(&opts.out);
    std::fs::create_dir_all(&opts.out).map_err(|source| ProvisionError::Write {
        path: opts.out.clone(),
        source,
    })?;
    let before = seeds.existing_members()?;
    let operator = seeds.operator()?;
    let mut report = Report {
        directory_version: plan.directory_version,
        users: plan.members.len(),
        operator_created: operator.created,
        ..Report::default()
    };

    let mut nkeys = Vec::with_capacity(plan.members.len());
    for m in &plan.members {
        let seed = seeds.member(&m.name)?;
        if !before.contains(&m.name) {
            report.users_added.push(m.name.clone());
        }
        write_client_settings(&seeds, m, &opts.url)?;
        nkeys.push(authorization::Entry {
            member: Some(m),
            nkey: seed.pair.public_key(),
        });
    }

    if let Some(js) = js {
        report.streams_created = varde_bus::transport::ensure_streams(js, dir).await?.created;
        report.consumers = consumers::ensure(js, &plan).await?;
    }

    let text = authorization::render(&plan, &operator.pair.public_key(), &nkeys);
    let auth_path = opts.out.join(authorization::FILE);
    if authorization::write_if_changed(&auth_path, &text)? {
        reload.reload().await?;
        report.reloaded = true;
    }

    if let Some(js) = js {
        report.consumers.deleted = consumers::retire(js, &plan).await?;
    }
    let keep = plan.names();
    for gone in before.iter().filter(|n| !keep.contains(n.as_str())) {
        seeds.remove_member(gone)?;
        report.users_removed.push(gone.clone());
    }
    Ok(report)
}

/// Bootstraps a broker that has no directory yet: the operator seed and an
/// `auth.conf` that lets only the operator in (enough to start the server
/// and run `varde bus init`). An existing `auth.conf` is left alone.
/// Returns whether the operator seed was made by this call.
pub fn bootstrap(out: &Path) -> Result<bool, ProvisionError> {
    std::fs::create_dir_all(out).map_err(|source| ProvisionError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let operator = seeds::Seeds::new(out).operator()?;
    let auth = out.join(authorization::FILE);
    if !auth.exists() {
        let empty = Plan {
            directory_version: 0,
            members: Vec::new(),
        };
        let text = authorization::render(&empty, &operator.pair.public_key(), &[]);
        authorization::write_if_changed(&auth, &text)?;
    }
    Ok(operator.created)
}

/// `users/<name>.toml`: the `[nats]` and `[consumer]` settings a member
/// puts in its varde (or bridge) configuration, handed out with the seed.
fn write_client_settings(
    seeds: &seeds::Seeds,
    m: &Member,
    url: &str,
) -> Result<(), ProvisionError> {
    let path = seeds.users_dir().join(format!("{}.toml", m.name));
    let tls = if url.starts_with("tls://") {
        "tls_required = true\ntls_ca = \"ca.pem\"                # the CSIRT's CA certificate, sent with this file\n# tls_cert = \"client.pem\"         # when the broker verifies client certificates\n# tls_key = \"client-key.pem\"\n"
    } else {
        "# tls_required = true\n# tls_ca = \"ca.pem\"\n"
    };
    let text = format!(
        "# NATS settings of `{name}` ({role} of {org}) on the Varde bus, made by\n\
         # `varde nats provision`. Merge them into your configuration and keep\n\
         # {name}.nk private (0600): it is this user's NATS credential.\n\
         [nats]\n\
         url = \"{url}\"\n\
         nkey_seed = \"{name}.nk\"\n\
         inbox_prefix = \"{inbox}\"\n\
         {tls}\n\
         [consumer]\n\
         durable = \"{durable}\"\n\
         create = false                  # the CSIRT provisions it; members only bind\n",
        name = m.name,
        role = m.role,
        org = m.org,
        inbox = m.inbox_prefix(),
        durable = m.durable(),
    );
    std::fs::write(&path, text).map_err(|source| ProvisionError::Write { path, source })
}

/// Connects as `m` with `seed` (and the TLS settings of `base`) and binds
/// its durable consumer on each stream it reads, retrying for `wait` while servers reload: proof
/// that the user exists and may read its consumer.
pub async fn check_member(
    base: &NatsSettings,
    m: &Member,
    seed: &Path,
    wait: Duration,
) -> Result<(), ProvisionError> {
    let settings = NatsSettings {
        nkey_seed: Some(seed.to_path_buf()),
        creds: None,
        inbox_prefix: Some(m.inbox_prefix()),
        name: Some(format!("varde-provision-check-{}", m.name)),
        ..base.clone()
    };
    let deadline = tokio::time::Instant::now() + wait;
    let fail = |detail: String| ProvisionError::Check {
        name: m.name.clone(),
        file: authorization::FILE,
        detail,
    };
    loop {
        let attempt = async {
            let client = settings.connect().await.map_err(|e| e.to_string())?;
            let js = jetstream::ContextBuilder::new()
                .timeout(Duration::from_secs(2))
                .build(client);
            for stream in m.streams() {
                js.get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
                    m.durable(),
                    &stream,
                )
                .await
                .map_err(|e| format!("binding consumer {} on {stream}: {e}", m.durable()))?;
            }
            Ok::<(), String>(())
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(detail) if tokio::time::Instant::now() >= deadline => return Err(fail(detail)),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
