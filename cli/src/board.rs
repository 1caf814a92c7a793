//! `varde board`: serves the CSIRT's picture of its campaigns from the
//! hub's campaign store (read-only). Flag parsing only; the board is the
//! `varde-board` crate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use varde_board::{Board, BoardConfig, TlsFiles};
use varde_bus::settings::Loaded;

use crate::settings::Settings;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on. Anything but loopback needs the three TLS
    /// flags.
    #[arg(long, env = "VARDE_BOARD_LISTEN", default_value = "127.0.0.1:8480")]
    pub listen: SocketAddr,
    /// The board's TLS certificate chain (PEM).
    #[arg(long, env = "VARDE_BOARD_TLS_CERT", requires_all = ["tls_key", "client_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[arg(long, env = "VARDE_BOARD_TLS_KEY", requires_all = ["tls_cert", "client_ca"])]
    pub tls_key: Option<PathBuf>,
    /// The CA whose client certificates may see the board (the CSIRT's
    /// operators); requests without one are refused in the handshake.
    #[arg(long, env = "VARDE_BOARD_CLIENT_CA", requires_all = ["tls_cert", "tls_key"])]
    pub client_ca: Option<PathBuf>,
}

pub async fn run(a: Args, config: &Path) -> anyhow::Result<()> {
    let settings: Loaded<Settings> = Loaded::read(config)?;
    let store = settings.path(&settings.value.hub.campaign_store());
    let mut cfg = BoardConfig::new(store, a.listen);
    if let (Some(cert), Some(key), Some(client_ca)) = (a.tls_cert, a.tls_key, a.client_ca) {
        cfg.tls = Some(TlsFiles {
            cert,
            key,
            client_ca,
        });
    }
    let board = Board::start(cfg).await?;
    println!("board: {}", board.url());
    tokio::select! {
        r = board.wait() => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
