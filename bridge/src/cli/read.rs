//! `varde-bridge read-room`: reads a room as a member (not the bot), with
//! end-to-end encryption, and prints what that member sees. For the local
//! demo and for checking a deployment by hand.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::matrix::reader::Reader;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Homeserver base URL.
    #[arg(long)]
    pub homeserver: String,
    /// The member's user id.
    #[arg(long)]
    pub user: String,
    /// The member's password (or VARDE_READER_PASSWORD).
    #[arg(long, env = "VARDE_READER_PASSWORD")]
    pub password: String,
    /// Directory for this reader's session and crypto store; reuse it so the
    /// device (and the room keys it received) persist between runs.
    #[arg(long)]
    pub store: PathBuf,
    #[arg(long, default_value = "VARDEREADER")]
    pub device_id: String,
    /// Room id to read (joined first if the member is invited).
    #[arg(long)]
    pub room: Option<String>,
    /// Number of recent events to print.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Keep syncing until a message whose text contains this appears.
    #[arg(long)]
    pub wait_for: Option<String>,
    #[arg(long, default_value = "60s", value_parser = varde_bus::time::parse_duration)]
    pub timeout: Duration,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let reader = Reader::login(&a.homeserver, &a.user, &a.password, &a.store, &a.device_id).await?;
    println!(
        "reader {} on device {} (cross-signed: {})",
        a.user,
        a.device_id,
        if reader.cross_signed().await {
            "yes"
        } else {
            "no"
        }
    );
    let Some(room) = a.room else {
        return Ok(());
    };
    reader.join(&room).await?;
    let deadline = Instant::now() + a.timeout;
    loop {
        reader.sync_once().await?;
        let events = reader.messages(&room, a.limit).await?;
        let found = a.wait_for.as_deref().is_none_or(|needle| {
            events.iter().any(|e| {
                e.content
                    .get("body")
                    .and_then(Value::as_str)
                    .is_some_and(|b| b.contains(needle))
            })
        });
        if found || Instant::now() >= deadline {
            for e in events
                .iter()
                .filter(|e| e.event_type == "m.room.message" || e.encrypted)
            {
                let body = e.content.get("body").and_then(Value::as_str).unwrap_or("");
                let how = match (e.encrypted, e.decrypted) {
                    (true, true) => "m.room.encrypted, decrypted by this device",
                    (true, false) => "m.room.encrypted, NO KEY for this device",
                    (false, _) => "not encrypted",
                };
                println!("--- {} from {} ({how})", e.event_id, e.sender);
                if let Some(html) = e.content.get("formatted_body").and_then(Value::as_str) {
                    println!("formatted_body: {html}");
                }
                println!("{body}");
            }
            if !found {
                anyhow::bail!(
                    "no message containing the text appeared within {:?}",
                    a.timeout
                );
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
