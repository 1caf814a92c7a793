//! The `varde` command line: flag parsing (clap) and dispatch. Each
//! sub-command lives in its own module and calls library code.

mod directory;
mod inspect;
mod keygen;
mod nats;
mod publish;
pub(crate) mod render;
mod tail;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::directory::DirectoryHandle;
use crate::keys::Identity;
use crate::settings::{Loaded, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "varde",
    version,
    about = "Varde: TLP-labelled, signed and encrypted information sharing on NATS JetStream",
    long_about = None
)]
pub struct Cli {
    /// Configuration file (TOML); `VARDE_…` environment variables override it.
    #[arg(
        long,
        short,
        global = true,
        env = "VARDE_CONFIG",
        default_value = "varde.toml"
    )]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate an identity: an age X25519 key (for decryption) and an
    /// ed25519 signing key, both 0600, plus a public card for the directory.
    Keygen(keygen::Args),
    /// Build, sign, verify, show and distribute the member directory.
    #[command(subcommand)]
    Directory(directory::Command),
    /// Bus administration.
    #[command(subcommand)]
    Bus(BusCommand),
    /// Broker administration: users, permissions and consumers from the
    /// directory; development TLS certificates.
    #[command(subcommand)]
    Nats(nats::Command),
    /// Seal and publish a message.
    Publish(publish::Args),
    /// Show what this identity may read, decrypted.
    Tail(tail::Args),
    /// Check a raw envelope's header and signature without decrypting it.
    Inspect(inspect::Args),
    /// Ingest a feed once: MISP, STIX 2.1, CSV, a plain list or advisories.
    Ingest(crate::hub::cli::IngestArgs),
    /// The CSIRT hub.
    #[command(subcommand)]
    Hub(crate::hub::cli::HubCommand),
    /// Export what this identity may read as STIX 2.1 or a MISP feed.
    Export(crate::hub::cli::ExportArgs),
    /// Measure seal/open and end-to-end throughput against baselines
    /// (`varde bench hub`: the hub's ingest and routing).
    Bench(BenchArgs),
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    #[command(flatten)]
    pub bus: crate::bench::Args,
}

#[derive(Subcommand, Debug)]
pub enum BenchMode {
    /// Hub ingest (MISP feed → sealed envelopes on nats-server) and
    /// longest-prefix routing at 370 orgs and 50,000 CIDRs.
    Hub(crate::hub::bench::Args),
}

#[derive(Subcommand, Debug)]
pub enum BusCommand {
    /// Create or reconcile the VARDE stream and the directory KV bucket
    /// (operator credentials). Safe to repeat.
    Init {
        /// Stream replicas (3 in a cluster); overrides `stream.replicas`.
        #[arg(long)]
        replicas: Option<usize>,
    },
}

/// Entry point of the `varde` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init(cli.log_format == "json", "warn,varde_bus=info");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("varde: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors can quote input (a refused payload, a feed record).
            eprintln!("varde: {}", render::terminal_safe(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = cli.config.clone();
    match cli.command {
        Command::Keygen(a) => keygen::run(a),
        Command::Directory(c) => directory::run(c, &cfg).await,
        Command::Bus(BusCommand::Init { replicas }) => bus_init(&cfg, replicas).await,
        Command::Nats(c) => nats::run(c, &cfg).await,
        Command::Publish(a) => publish::run(a, &cfg).await,
        Command::Tail(a) => tail::run(a, &cfg).await,
        Command::Inspect(a) => inspect::run(a, &cfg).await,
        Command::Ingest(a) => crate::hub::cli::ingest(a, &cfg).await,
        Command::Hub(crate::hub::cli::HubCommand::Run) => crate::hub::cli::run(&cfg).await,
        Command::Hub(crate::hub::cli::HubCommand::Warninglists(a)) => {
            crate::hub::cli::warninglists(a, &cfg)
        }
        Command::Export(a) => crate::hub::cli::export(a, &cfg).await,
        Command::Bench(BenchArgs {
            mode: Some(BenchMode::Hub(a)),
            ..
        }) => crate::hub::bench::run(a).await,
        Command::Bench(BenchArgs { mode: None, bus }) => crate::bench::run(bus).await,
    }
}

/// What most commands need: settings, identity, directory and a connection.
pub struct Session {
    pub settings: Loaded<Settings>,
    pub identity: Arc<Identity>,
    pub directory: DirectoryHandle,
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
}

impl Session {
    pub async fn connect(config: &Path) -> anyhow::Result<Session> {
        let settings: Loaded<Settings> = Loaded::read(config)?;
        let identity = settings.identity()?;
        let client = settings.nats().connect().await?;
        let js = crate::transport::jetstream(client.clone());
        // The KV copy may be newer than the configured file.
        let kv = crate::directory_kv::fetch(&js).await.ok().flatten();
        let directory = settings.directory_handle(kv)?;
        check_identity_registered(&directory, &identity)?;
        Ok(Session {
            settings,
            identity,
            directory,
            client,
            js,
        })
    }
}

/// Refuses to run with a key the directory does not know, has revoked or
/// lets expire, saying so plainly.
pub fn check_identity_registered(dir: &DirectoryHandle, id: &Identity) -> anyhow::Result<()> {
    let d = dir.current();
    let Some(k) = d.key(&id.key_id) else {
        anyhow::bail!(
            "key {} of `{}` is not in directory version {}; send your public card to the CSIRT (varde keygen wrote it) and wait for the next directory",
            id.key_id,
            id.org,
            d.version()
        );
    };
    let org = &d.org_at(k.org).id;
    if *org != id.org {
        anyhow::bail!(
            "key {} is registered to `{org}` in the directory, but the configuration says `{}`",
            id.key_id,
            id.org
        );
    }
    match k.unusable(jiff::Timestamp::now()) {
        Some(crate::directory::KeyState::Revoked(at)) => {
            anyhow::bail!(
                "key {} of `{org}` was revoked at {at}; generate a new key",
                id.key_id
            )
        }
        Some(crate::directory::KeyState::Expired(at)) => {
            anyhow::bail!(
                "key {} of `{org}` expired at {at}; generate a new key",
                id.key_id
            )
        }
        None => Ok(()),
    }
}

async fn bus_init(config: &Path, replicas: Option<usize>) -> anyhow::Result<()> {
    let settings: Loaded<Settings> = Loaded::read(config)?;
    let client = settings.nats().connect().await?;
    let js = crate::transport::jetstream(client);
    let mut stream = settings.value.stream.clone();
    if let Some(r) = replicas {
        stream.replicas = r;
    }
    let report = crate::transport::init(&js, &stream).await?;
    println!(
        "stream {}: {}; bucket {}: {}",
        crate::transport::STREAM,
        if report.stream_created {
            "created"
        } else if report.stream_updated {
            "updated"
        } else {
            "ok"
        },
        crate::transport::DIRECTORY_BUCKET,
        if report.bucket_created {
            "created"
        } else {
            "ok"
        }
    );
    Ok(())
}
