//! `varde inspect <file>`: framing, signature and header of a raw envelope,
//! without decrypting it (no private key needed, only the directory).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::render::safe;
use crate::settings::Settings;
use varde_bus::settings::Loaded;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Raw envelope bytes (e.g. saved from the stream).
    pub file: PathBuf,
    /// The subject it was received on, to check the sender token too.
    #[arg(long)]
    pub subject: Option<String>,
    /// Signed directory to check against instead of the configured one.
    #[arg(long)]
    pub directory: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: Args, config: &Path) -> anyhow::Result<()> {
    let settings: Loaded<Settings> = Loaded::read(config)?;
    let dir = match &a.directory {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            varde_bus::directory::DirectoryHandle::new(&bytes, settings.roots()?, None)?
        }
        None => settings.directory_handle(None)?,
    };
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let d = dir.current();
    let v = varde_bus::seal::verify(&d, a.subject.as_deref(), &bytes, jiff::Timestamp::now())?;
    let wraps: Vec<String> = v.framed.wraps.iter().map(|(k, _)| k.to_hex()).collect();
    // The scope stream a copy on this subject lands in (verify checked
    // the subject against the header already).
    let stream = a
        .subject
        .as_deref()
        .and_then(|s| varde_bus::subject::stream_of(s).ok());
    if a.json {
        let doc = serde_json::json!({
                "signature": "valid",
                "signer": v.framed.signer.to_hex(),
                "size": bytes.len(),
                "format": v.framed.format.name(),
                "encrypted": v.header.label.is_encrypted(),
                "recipients": wraps,
                "stream": stream,
                "header": v.header,
        })
        .to_string();
        println!("{}", super::render::json_terminal_safe(&doc));
    } else {
        println!(
            "signature  valid (key {} of `{}`)",
            v.framed.signer,
            safe(&v.header.sender.org)
        );
        println!("id         {}", v.header.id);
        println!("kind       {}", v.header.kind);
        println!("label      {}", v.header.label);
        println!("audience   {}", safe(&v.header.audience));
        println!("created    {}", v.header.created);
        if let Some(s) = &stream {
            println!("stream     {s}");
        }
        if let Some(e) = v.header.expires {
            println!("expires    {e}");
        }
        println!(
            "format     {} ({})",
            v.framed.format.name(),
            v.framed.format.describe()
        );
        println!(
            "size       {} bytes, body {} bytes",
            bytes.len(),
            v.framed.body.len()
        );
        println!(
            "recipients {} key(s){}",
            wraps.len(),
            if wraps.is_empty() {
                String::new()
            } else {
                format!(": {}", wraps.join(" "))
            }
        );
    }
    Ok(())
}
