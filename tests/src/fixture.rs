//! A bus ready for tests: a real nats-server with every scope stream and
//! the directory bucket, a synthetic directory with every private key, and
//! helpers to publish and to drain inboxes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use varde_bus::directory::DirectoryHandle;
use varde_bus::inbox::{Delivery, Inbox, InboxConfig};
use varde_bus::keys::Identity;
use varde_bus::seal::{self, Draft, Opener, Sealed};
use varde_bus::transport::{self, NatsSettings, StreamSettings};
use varde_testkit::synthetic::Synthetic;

use crate::NatsServer;

pub struct BusFixture {
    pub nats: NatsServer,
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub world: Synthetic,
    pub handle: DirectoryHandle,
}

impl BusFixture {
    /// The demo directory (kcsirt, gjovik, lillehammer, innlandet-fk).
    pub async fn start() -> Result<BusFixture> {
        Self::with(Synthetic::demo()).await
    }

    pub async fn with(world: Synthetic) -> Result<BusFixture> {
        let nats = NatsServer::start().await?;
        let client = NatsSettings::with_url(nats.url()).connect().await?;
        let js = transport::jetstream(client.clone());
        transport::init(&js, &StreamSettings::default(), None).await?;
        let handle = world.handle()?;
        varde_bus::directory_kv::push(&js, &world.signed()?, &[world.root.verifying_key()])
            .await
            .context("pushing the directory to KV")?;
        Ok(BusFixture {
            nats,
            client,
            js,
            world,
            handle,
        })
    }

    pub fn identity(&self, org: &str) -> Arc<Identity> {
        self.world.identity(org)
    }

    pub async fn publish(&self, sender: &Identity, draft: Draft) -> Result<Sealed> {
        let sealed = seal::seal(sender, &self.handle.current(), draft)?;
        transport::publish(&self.js, &sealed).await?;
        Ok(sealed)
    }

    /// A `varde.toml` for `who` in `dir`, next to its key files (0600) and
    /// the signed directory: consumers created on demand, the hub's state in
    /// `state-<who>`.
    pub fn write_config(&self, dir: &std::path::Path, who: &str) -> Result<PathBuf> {
        use varde_bus::keys;
        let id = self.identity(who);
        keys::write_private(
            &dir.join(format!("{who}.age")),
            keys::age_identity_file(&id.age).as_bytes(),
        )?;
        keys::write_private(
            &dir.join(format!("{who}.sign")),
            keys::signing_key_file(&id.signing, who).as_bytes(),
        )?;
        std::fs::write(dir.join("directory.json"), self.world.signed()?)?;
        let root = keys::encode_verifying_key(&self.world.root.verifying_key());
        let cfg = format!(
            "[identity]\norg = \"{who}\"\nage = \"{who}.age\"\nsigning = \"{who}.sign\"\n\n\
             [directory]\nroot_keys = [\"{root}\"]\nfile = \"directory.json\"\nwatch = false\n\n\
             [nats]\nurl = \"{}\"\n\n[consumer]\ncreate = true\n\n[hub]\nstate_dir = \"state-{who}\"\n",
            self.nats.url(),
        );
        let path = dir.join(format!("{who}.toml"));
        std::fs::write(&path, cfg)?;
        Ok(path)
    }

    /// A durable inbox for `who`, reading everything its org may read.
    pub async fn inbox(&self, who: Arc<Identity>, durable: &str) -> Result<Inbox> {
        self.inbox_with(who, durable, |_| {}).await
    }

    /// Like `inbox`, with the consumer settings adjusted by `tune`.
    pub async fn inbox_with(
        &self,
        who: Arc<Identity>,
        durable: &str,
        tune: impl FnOnce(&mut InboxConfig),
    ) -> Result<Inbox> {
        let filters = varde_bus::subject::readable_filters(&self.handle.current(), &who.org);
        let mut cfg = InboxConfig::durable(durable, filters);
        tune(&mut cfg);
        Ok(Inbox::open(
            &self.js,
            &cfg,
            Arc::new(Opener::new(who)),
            self.handle.clone(),
        )
        .await?)
    }

    /// Whether `org`'s durable consumers named `durable`, on every stream
    /// the org reads, have nothing left: every message delivered and acked.
    pub async fn consumers_idle(&self, org: &str, durable: &str) -> Result<bool> {
        consumers_idle(&self.js, &self.handle, org, durable).await
    }

    /// Re-signs the (changed) directory with a higher version and makes it
    /// current here and in the KV bucket.
    pub async fn republish_directory(&mut self) -> Result<()> {
        self.world.bump();
        let signed = self.world.signed()?;
        self.handle.offer(&signed)?;
        varde_bus::directory_kv::push(&self.js, &signed, &[self.world.root.verifying_key()])
            .await?;
        Ok(())
    }
}

/// Whether the durable consumers `durable` of `org` on every stream the
/// org reads have nothing pending or unacknowledged.
pub async fn consumers_idle(
    js: &async_nats::jetstream::Context,
    handle: &DirectoryHandle,
    org: &str,
    durable: &str,
) -> Result<bool> {
    let org = varde_schemas::OrgId::new(org)?;
    let filters = varde_bus::subject::readable_filters(&handle.current(), &org);
    for (stream, _) in InboxConfig::durable(durable, filters).consumer_configs()? {
        let mut c: async_nats::jetstream::consumer::PullConsumer = js
            .get_consumer_from_stream(durable, &stream)
            .await
            .map_err(|e| anyhow::anyhow!("consumer {durable} on {stream}: {e}"))?;
        let info = c.info().await?;
        if info.num_pending != 0 || info.num_ack_pending != 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads from `inbox` until it has been quiet for `idle`, acking each.
pub async fn drain(inbox: &mut Inbox, idle: Duration) -> Result<Vec<Delivery>> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(idle, inbox.next()).await {
            Err(_) => return Ok(out),
            Ok(None) => return Ok(out),
            Ok(Some(d)) => {
                let d = d?;
                d.ack_confirmed().await?;
                out.push(d);
            }
        }
    }
}

/// Runs the workspace's `varde -c config ARGS…` (no colours) and returns
/// its standard output; an error with its standard error when it fails.
pub fn varde_ok<S: AsRef<std::ffi::OsStr>>(config: &std::path::Path, args: &[S]) -> Result<String> {
    let out = std::process::Command::new(workspace_bin("varde")?)
        .arg("-c")
        .arg(config)
        .args(args)
        .env("NO_COLOR", "1")
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "varde {:?} failed: {}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy())
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Path of a binary built from this workspace (`varde`, `varde-bridge`),
/// next to the test executable's `deps/` directory.
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .context("test executable has no parent directory")?;
    let p = dir.join(name);
    if p.exists() {
        Ok(p)
    } else {
        anyhow::bail!(
            "{} not built; run the suite with `cargo test --workspace` (or `cargo build --bins` first)",
            p.display()
        )
    }
}
