//! The `varde-bridge` command line: flag parsing (clap) and dispatch; each
//! command lives in its own module and calls library code.

mod check;
mod read;
mod release;
pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "varde-bridge",
    version,
    about = "Varde's Matrix bridge: relays bus messages into Matrix rooms, within what each room's members and encryption allow",
    long_about = None
)]
pub struct Cli {
    /// Configuration file (TOML); `VARDE_…` environment variables override it.
    #[arg(
        long,
        short,
        global = true,
        env = "VARDE_BRIDGE_CONFIG",
        default_value = "bridge.toml"
    )]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Relay bus messages into the configured rooms until stopped.
    Run,
    /// Check the configuration, keys, directory and every room's encryption
    /// and members against its ceiling; print a table.
    CheckConfig,
    /// Post a withheld message once its room complies (the running bridge
    /// checks the room again first).
    Release {
        /// Envelope id, as shown in the room's notice.
        envelope: String,
        /// Room id (or the room's configured name).
        room: String,
        /// How long to wait for the running bridge's answer.
        #[arg(long, default_value = "30s", value_parser = varde_bus::time::parse_duration)]
        wait: Duration,
    },
    /// List withheld messages (ids, labels, reasons; never content).
    Withheld,
    /// Read a room as a member, with end-to-end encryption (demo, checks).
    ReadRoom(read::Args),
    /// Measure bus-to-room latency and posts/s against a plain client.
    Bench(crate::bench::Args),
}

/// Entry point of the `varde-bridge` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The flag, else `log_format` in the file (or VARDE_LOG_FORMAT, which
    // the settings loader reads as that key), else text.
    let json = match &cli.log_format {
        Some(f) => f == "json",
        None => varde_bus::settings::Loaded::<crate::config::BridgeSettings>::read(&cli.config)
            .ok()
            .and_then(|l| l.value.log_format)
            .or_else(|| std::env::var("VARDE_LOG_FORMAT").ok())
            .is_some_and(|f| f == "json"),
    };
    // matrix-sdk logs expected 404s (no key backup, no secret storage) as
    // errors at start; the relay logs every failure that matters itself.
    let default = match cli.command {
        Command::ReadRoom(_) | Command::Bench(_) => {
            "error,matrix_sdk=off,matrix_sdk_crypto=off,matrix_sdk_base=off"
        }
        _ => {
            "warn,varde_bridge=info,varde_bus=info,matrix_sdk::http_client=off,matrix_sdk_crypto::backups=error"
        }
    };
    varde_bus::logging::init(json, default);
    // Before matrix-sdk's HTTP client or a tls:// NATS connection exists.
    varde_bus::transport::install_tls_provider();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("varde-bridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("varde-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let cfg = cli.config;
    match cli.command {
        Command::Run => run::run(&cfg).await.map(|()| ExitCode::SUCCESS),
        Command::CheckConfig => Ok(if check::run(&cfg).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }),
        Command::Release {
            envelope,
            room,
            wait,
        } => match release::run(&cfg, &envelope, &room, wait).await? {
            release::Released::Posted { event_id } => {
                println!(
                    "posted: {}",
                    event_id.as_deref().unwrap_or("(event id not recorded)")
                );
                Ok(ExitCode::SUCCESS)
            }
            release::Released::Refused(why) => {
                println!("refused: {why}");
                Ok(ExitCode::from(1))
            }
            release::Released::Queued => {
                println!(
                    "queued: no running bridge answered within {}; the request stays queued for the next start",
                    humantime::format_duration(wait)
                );
                Ok(ExitCode::from(2))
            }
        },
        Command::Withheld => release::list(&cfg).map(|()| ExitCode::SUCCESS),
        Command::ReadRoom(a) => read::run(a).await.map(|()| ExitCode::SUCCESS),
        Command::Bench(a) => crate::bench::run(a).await.map(|()| ExitCode::SUCCESS),
    }
}
