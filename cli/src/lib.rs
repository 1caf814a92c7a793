//! The `varde` command line: flag parsing (clap) and dispatch. Each
//! sub-command lives in its own module and calls library code.

pub mod bench;
mod board;
mod campaign;
mod directory;
mod hub;
mod inspect;
mod keygen;
mod nats;
pub mod provision;
mod publish;
pub(crate) mod render;
pub mod settings;
mod tail;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::Settings;
use varde_bus::settings::Loaded;

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
    Ingest(crate::hub::IngestArgs),
    /// The CSIRT hub.
    #[command(subcommand)]
    Hub(crate::hub::HubCommand),
    /// Export what this identity may read as STIX 2.1 or a MISP feed.
    Export(crate::hub::ExportArgs),
    /// The CSIRT's campaigns: ask target orgs where they stand on a
    /// warning, see who answered, who was reminded, who is past the
    /// deadline.
    #[command(subcommand)]
    Campaign(crate::campaign::Command),
    /// Tell the CSIRT (and only the CSIRT) where your org stands on an
    /// advisory or alert.
    Status(crate::campaign::StatusArgs),
    /// Serve the CSIRT's picture of its campaigns as a read-only web page
    /// (loopback, or TLS with client certificates from the CSIRT's CA).
    Board(crate::board::Args),
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
    pub bus: crate::bench::bus::Args,
}

#[derive(Subcommand, Debug)]
pub enum BenchMode {
    /// Hub ingest (MISP feed → sealed envelopes on nats-server) and
    /// longest-prefix routing at 370 orgs and 50,000 CIDRs.
    Hub(crate::bench::hub::Args),
    /// The whole constituency on one bus.
    National(crate::bench::national::Args),
}

#[derive(Subcommand, Debug)]
pub enum BusCommand {
    /// Create or reconcile the scope streams (the community's, and with a
    /// directory every group's and org's) and the directory KV bucket
    /// (operator credentials). Safe to repeat.
    Init {
        /// Stream replicas (3 in a cluster); overrides `stream.replicas`.
        #[arg(long)]
        replicas: Option<usize>,
    },
    /// Messages each sender org has stored in the scope streams, most
    /// first (who is filling the store; operator credentials).
    Usage {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove every message one org sent from every scope stream (after
    /// revoking a member that filled the store; operator credentials).
    Purge {
        /// The sender org whose messages go.
        #[arg(long)]
        org: String,
        /// Confirm: messages purged are gone for every reader.
        #[arg(long)]
        yes: bool,
    },
}

/// Entry point of the `varde` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    varde_bus::logging::init(cli.log_format == "json", "warn,varde_bus=info");
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
        Command::Bus(BusCommand::Usage { json }) => bus_usage(&cfg, json).await,
        Command::Bus(BusCommand::Purge { org, yes }) => bus_purge(&cfg, &org, yes).await,
        Command::Nats(c) => nats::run(c, &cfg).await,
        Command::Publish(a) => publish::run(a, &cfg).await,
        Command::Tail(a) => tail::run(a, &cfg).await,
        Command::Inspect(a) => inspect::run(a, &cfg).await,
        Command::Ingest(a) => crate::hub::ingest(a, &cfg).await,
        Command::Hub(crate::hub::HubCommand::Run) => crate::hub::run(&cfg).await,
        Command::Hub(crate::hub::HubCommand::Warninglists(a)) => crate::hub::warninglists(a, &cfg),
        Command::Export(a) => crate::hub::export(a, &cfg).await,
        Command::Campaign(c) => crate::campaign::run(c, &cfg).await,
        Command::Status(a) => crate::campaign::status(a, &cfg).await,
        Command::Board(a) => crate::board::run(a, &cfg).await,
        Command::Bench(BenchArgs {
            mode: Some(BenchMode::Hub(a)),
            ..
        }) => crate::bench::hub::run(a).await,
        Command::Bench(BenchArgs {
            mode: Some(BenchMode::National(a)),
            ..
        }) => crate::bench::national::run(a).await,
        Command::Bench(BenchArgs { mode: None, bus }) => crate::bench::bus::run(bus).await,
    }
}

/// What most commands need, read from `varde.toml`.
pub type Session = varde_bus::session::Session<Settings>;

/// The settings and a JetStream context of the `bus` commands (operator
/// credentials).
async fn operator_js(
    config: &Path,
) -> anyhow::Result<(Loaded<Settings>, async_nats::jetstream::Context)> {
    let settings: Loaded<Settings> = Loaded::read(config)?;
    let client = settings.nats().connect().await?;
    Ok((settings, varde_bus::transport::jetstream(client)))
}

async fn bus_usage(config: &Path, json: bool) -> anyhow::Result<()> {
    let (_, js) = operator_js(config).await?;
    let usage = varde_bus::usage::usage(&js).await?;
    for u in &usage {
        if json {
            println!("{}", serde_json::to_string(u)?);
        } else {
            let streams: Vec<String> = u.streams.iter().map(|(s, n)| format!("{s} {n}")).collect();
            println!("{:<24} {:>10}  {}", u.org, u.messages, streams.join(", "));
        }
    }
    if usage.is_empty() && !json {
        println!("no messages stored");
    }
    Ok(())
}

async fn bus_purge(config: &Path, org: &str, yes: bool) -> anyhow::Result<()> {
    // A checked id: a subject wildcard or dot here would purge other orgs.
    let org = varde_schemas::OrgId::new(org)
        .map_err(|e| anyhow::anyhow!("--org {org:?} is not an org id: {e}"))?;
    if !yes {
        anyhow::bail!(
            "purging removes every message {org} sent, for every reader; revoke its keys first, then run again with --yes"
        );
    }
    let (_, js) = operator_js(config).await?;
    let purged = varde_bus::usage::purge_sender(&js, &org).await?;
    if purged.is_empty() {
        println!("{org} has no messages stored");
    }
    for (stream, n) in purged {
        println!("purged {n} message(s) of {org} from {stream}");
    }
    Ok(())
}

async fn bus_init(config: &Path, replicas: Option<usize>) -> anyhow::Result<()> {
    let (settings, js) = operator_js(config).await?;
    let mut stream = settings.value.stream.clone();
    if let Some(r) = replicas {
        stream.replicas = r;
    }
    // With a directory (the bucket's, or the configured file) every
    // scope's stream is made and reconciled; without one the community's
    // only, and pushing the directory makes the rest.
    let fetched = varde_bus::directory_kv::fetch(&js).await.ok().flatten();
    let dir = settings.directory_handle(fetched).ok().map(|h| h.current());
    let report = varde_bus::transport::init(&js, &stream, dir.as_deref()).await?;
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    println!(
        "streams created: {}; updated: {}; unchanged: {}; bucket {}: {}",
        list(&report.streams.created),
        list(&report.streams.updated),
        report.streams.unchanged,
        varde_bus::transport::DIRECTORY_BUCKET,
        if report.bucket_created {
            "created"
        } else {
            "ok"
        }
    );
    Ok(())
}
