//! `varde nats provision` and `varde nats tls-dev`: broker users,
//! permissions and consumers from the directory; a development PKI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::provision::reload::{All, DynReload, ShellCommand, SignalPidFiles};
use crate::provision::{self, Options, Plan, dev_ca, seeds::Seeds};
use crate::settings::Settings;
use varde_bus::directory::DirectoryHandle;
use varde_bus::settings::Loaded;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Generate the nats-server authorization (one nkey user per org, per
    /// bridge key and for the hub), their seeds (0600) and client settings,
    /// and reconcile one durable consumer per user; reload the servers.
    /// Run with the operator's configuration. Safe to repeat.
    Provision(ProvisionArgs),
    /// Make a development CA, a server certificate for 127.0.0.1/localhost
    /// and client certificates (keys 0600). Keeps files that exist.
    TlsDev(TlsDevArgs),
}

#[derive(clap::Args, Debug)]
pub struct ProvisionArgs {
    /// Output directory: auth.conf (include it from the server config),
    /// operator.nk and users/<name>.nk + users/<name>.toml to hand out.
    #[arg(long, default_value = "nats-auth")]
    pub out: PathBuf,
    /// Signed directory to provision (default: the configuration's
    /// directory, or the newer one in the KV bucket).
    #[arg(long)]
    pub directory: Option<PathBuf>,
    /// Only write the files: no connection, no consumers, no reload (the
    /// first run, before nats-server has been started with auth.conf).
    #[arg(long)]
    pub offline: bool,
    /// A nats-server pid file to send SIGHUP (reload) when auth.conf
    /// changed; repeat for each cluster node on this host.
    #[arg(long = "reload-pid-file")]
    pub reload_pid_files: Vec<PathBuf>,
    /// A shell command that reloads the servers, e.g.
    /// `systemctl reload nats-server`.
    #[arg(long)]
    pub reload_command: Option<String>,
    /// Broker URL written into the members' client settings (default:
    /// `nats.url` of this configuration).
    #[arg(long)]
    pub url: Option<String>,
    /// Skip connecting as each new user after the reload to prove it can
    /// bind its consumer.
    #[arg(long)]
    pub no_check: bool,
    /// Bootstrap a broker before any directory exists: only the operator
    /// seed and an auth.conf that admits the operator (no configuration
    /// file needed; an existing auth.conf is kept).
    #[arg(long, conflicts_with_all = ["directory", "reload_pid_files", "reload_command"])]
    pub operator_only: bool,
}

#[derive(clap::Args, Debug)]
pub struct TlsDevArgs {
    /// Where to write ca.pem, server.pem, client-<name>.pem and their keys.
    #[arg(long, default_value = "tls")]
    pub out: PathBuf,
    /// More names for the server certificate besides 127.0.0.1, ::1 and
    /// localhost (e.g. the compose service names nats-1, nats-2, nats-3).
    #[arg(long = "san")]
    pub sans: Vec<String>,
    /// A client certificate for this name (repeatable).
    #[arg(long = "client")]
    pub clients: Vec<String>,
}

pub async fn run(c: Command, config: &Path) -> anyhow::Result<()> {
    match c {
        Command::Provision(a) => provision(a, config).await,
        Command::TlsDev(a) => tls_dev(a),
    }
}

fn tls_dev(a: TlsDevArgs) -> anyhow::Result<()> {
    let report = dev_ca::make(&a.out, &a.sans, &a.clients)?;
    for p in &report.created {
        println!("created {}", p.display());
    }
    for p in &report.kept {
        println!("kept    {}", p.display());
    }
    Ok(())
}

async fn provision(a: ProvisionArgs, config: &Path) -> anyhow::Result<()> {
    if a.operator_only {
        let created = provision::bootstrap(&a.out)?;
        let seed = Seeds::new(&a.out).operator_path();
        println!(
            "{}: {} admits the operator ({}) only; provision the directory once the server runs",
            a.out.join(provision::authorization::FILE).display(),
            if created { "new" } else { "kept" },
            seed.display()
        );
        return Ok(());
    }
    let settings: Loaded<Settings> = Loaded::read(config)?;
    let nats = settings.nats();
    let (client, js) = if a.offline {
        (None, None)
    } else {
        let client = nats
            .connect()
            .await
            .context("connecting as the operator (use --offline before the server first runs)")?;
        let js = varde_bus::transport::jetstream(client.clone());
        (Some(client), Some(js))
    };
    let kv = match &js {
        Some(js) => varde_bus::directory_kv::fetch(js).await.ok().flatten(),
        None => None,
    };
    let handle = match &a.directory {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let h = DirectoryHandle::new(&bytes, settings.roots()?, None).with_context(|| {
                format!(
                    "{} is not a directory signed by a pinned root",
                    path.display()
                )
            })?;
            if let Some(kv) = kv
                && let Ok(varde_bus::directory::Offer::Accepted { from, to }) = h.offer(&kv)
            {
                eprintln!(
                    "varde: the KV bucket holds directory version {to}, newer than {from} in {}; provisioning version {to}",
                    path.display()
                );
            }
            h
        }
        None => settings.directory_handle(kv)?,
    };
    let dir = handle.current();
    let opts = Options {
        out: a.out.clone(),
        url: a.url.clone().unwrap_or_else(|| nats.url.clone()),
        now: jiff::Timestamp::now(),
    };
    let mut reloads: Vec<Box<dyn DynReload>> = Vec::new();
    if !a.reload_pid_files.is_empty() {
        reloads.push(Box::new(SignalPidFiles(a.reload_pid_files.clone())));
    }
    if let Some(cmd) = &a.reload_command {
        reloads.push(Box::new(ShellCommand(cmd.clone())));
    }
    let can_reload = !reloads.is_empty();
    let report = provision::provision(&dir, &opts, js.as_ref(), &All(reloads)).await?;
    println!("{report}");
    if report.operator_created {
        println!(
            "made the operator seed {}: point nats.nkey_seed of the CSIRT's admin configuration at it",
            Seeds::new(&a.out).operator_path().display()
        );
    }
    if report.reloaded && !can_reload && !a.offline {
        println!(
            "auth.conf changed but no reload was asked for: run `nats-server --signal reload=<pid>` (or `systemctl reload nats-server`) on every node"
        );
    }
    if report.reloaded && can_reload && !a.no_check && client.is_some() {
        let plan = Plan::from_directory(&dir, opts.now)?;
        let seeds = Seeds::new(&a.out);
        for name in &report.users_added {
            if let Some(m) = plan.member(name) {
                provision::check_member(
                    &nats,
                    m,
                    &seeds.member_path(name),
                    Duration::from_secs(10),
                )
                .await?;
                println!("checked: {name} can connect and bind its consumer");
            }
        }
    }
    Ok(())
}
