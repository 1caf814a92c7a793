//! A real nats-server running the authorization that `varde nats provision`
//! generated from a synthetic directory: the operator's connection, the
//! members' seeds, and clients that record the server's refusals.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;
use varde_bus::directory::DirectoryHandle;
use varde_bus::transport::{self, NatsSettings, StreamSettings};
use varde_cli::provision::{self, Options, Reload, ReloadError, Report};
use varde_testkit::synthetic::Synthetic;

use crate::NatsServer;

/// The harness's SIGHUP-and-wait as a provisioning reload.
pub struct HarnessReload<'a>(pub &'a NatsServer);

impl Reload for HarnessReload<'_> {
    async fn reload(&self) -> Result<(), ReloadError> {
        self.0
            .reload()
            .await
            .map_err(|e| ReloadError::Other(format!("{e:#}")))
    }
}

/// `include` line for the `auth.conf` in `out` (inside the temp dir).
pub fn include_line(out: &Path) -> Result<String> {
    varde_testkit::include_line(out, provision::authorization::FILE)
}

/// Server errors (`-ERR …`, e.g. "Permissions Violation for Publish to …")
/// a client received, in order.
pub struct ServerErrors(mpsc::UnboundedReceiver<String>);

impl ServerErrors {
    /// Waits (up to 10 s) for an error containing `needle`; earlier
    /// non-matching errors are skipped.
    pub async fn expect(&mut self, needle: &str) -> Result<String> {
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(e) = self.0.recv().await {
                if e.contains(needle) {
                    return Some(e);
                }
            }
            None
        });
        match wait.await {
            Ok(Some(e)) => Ok(e),
            _ => bail!("the server never reported an error containing {needle:?}"),
        }
    }

    /// Errors received so far.
    pub fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(e) = self.0.try_recv() {
            out.push(e);
        }
        out
    }
}

/// A provisioned broker with the synthetic directory's orgs.
pub struct ProvisionedBus {
    pub nats: NatsServer,
    /// The provisioning output dir (auth.conf, seeds, client settings).
    pub out: tempfile::TempDir,
    pub world: Synthetic,
    pub handle: DirectoryHandle,
    /// The operator's connection (stream, bucket and consumer admin).
    pub operator: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    /// The report of the provisioning run that created the consumers.
    pub first: Report,
}

impl ProvisionedBus {
    /// Provisions `world` offline, starts nats-server with the result, then
    /// as the operator creates the stream and bucket, pushes the directory
    /// and provisions again (now creating the consumers).
    pub async fn start(world: Synthetic, extra_config: &str) -> Result<ProvisionedBus> {
        let out = tempfile::Builder::new()
            .prefix("varde-provision-")
            .tempdir()
            .context("creating the provisioning dir")?;
        let handle = world.handle()?;
        let opts = Options {
            out: out.path().to_path_buf(),
            url: "nats://127.0.0.1:4222".into(),
            now: jiff::Timestamp::now(),
        };
        provision::provision(&handle.current(), &opts, None, &provision::NoReload).await?;
        let config = format!("{}{extra_config}", include_line(out.path())?);
        let nats = NatsServer::start_with(&config).await?;
        let operator = Self::settings_for(&nats, out.path(), None)
            .connect()
            .await
            .context("connecting as the operator")?;
        let js = transport::jetstream(operator.clone());
        transport::init(&js, &StreamSettings::default(), None).await?;
        varde_bus::directory_kv::push(&js, &world.signed()?, &[world.root.verifying_key()])
            .await
            .context("pushing the directory")?;
        let first = provision::provision(
            &handle.current(),
            &Options {
                url: nats.url(),
                ..opts
            },
            Some(&js),
            &HarnessReload(&nats),
        )
        .await?;
        Ok(ProvisionedBus {
            nats,
            out,
            world,
            handle,
            operator,
            js,
            first,
        })
    }

    fn settings_for(nats: &NatsServer, out: &Path, user: Option<&str>) -> NatsSettings {
        let seeds = provision::seeds::Seeds::new(out);
        let seed = match user {
            None => seeds.operator_path(),
            Some(name) => seeds.member_path(name),
        };
        NatsSettings {
            nkey_seed: Some(seed),
            name: Some(user.unwrap_or("operator").to_string()),
            ..NatsSettings::with_url(nats.url())
        }
    }

    /// Settings of the provisioned user `name`: its seed, and the inbox
    /// prefix of its org (from the current plan; an org user's name is its
    /// org id, which also covers users that were removed).
    pub fn settings(&self, name: &str) -> NatsSettings {
        let plan = provision::Plan::from_directory(&self.handle.current(), jiff::Timestamp::now());
        let inbox = match plan.ok().as_ref().and_then(|p| p.member(name)) {
            Some(m) => Some(m.inbox_prefix()),
            None => varde_schemas::OrgId::new(name)
                .ok()
                .map(|o| provision::plan::inbox_prefix(&o)),
        };
        NatsSettings {
            inbox_prefix: inbox,
            ..Self::settings_for(&self.nats, self.out.path(), Some(name))
        }
    }

    /// The seed file of user `name`.
    pub fn seed(&self, name: &str) -> PathBuf {
        provision::seeds::Seeds::new(self.out.path()).member_path(name)
    }

    /// Connects as `name`, recording every error the server sends it.
    pub async fn connect_as(&self, name: &str) -> Result<(async_nats::Client, ServerErrors)> {
        let settings = self.settings(name);
        let (tx, rx) = mpsc::unbounded_channel();
        let opts = settings
            .connect_options()
            .await?
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            });
        let client = settings
            .connect_with(opts)
            .await
            .with_context(|| format!("connecting as {name}"))?;
        Ok((client, ServerErrors(rx)))
    }

    /// Provisions the (changed) directory again against the running server.
    pub async fn reprovision(&self) -> Result<Report> {
        Ok(provision::provision(
            &self.handle.current(),
            &self.options(),
            Some(&self.js),
            &HarnessReload(&self.nats),
        )
        .await?)
    }

    pub fn options(&self) -> Options {
        Options {
            out: self.out.path().to_path_buf(),
            url: self.nats.url(),
            now: jiff::Timestamp::now(),
        }
    }

    /// Re-signs the changed directory with a higher version, adopts it and
    /// pushes it to the bucket.
    pub async fn republish_directory(&mut self) -> Result<()> {
        self.world.bump();
        let signed = self.world.signed()?;
        self.handle.offer(&signed)?;
        varde_bus::directory_kv::push(&self.js, &signed, &[self.world.root.verifying_key()])
            .await?;
        Ok(())
    }
}

/// A JetStream context whose requests give up after 2 s: a refused request
/// gets no answer at all, only an `-ERR` on the connection.
pub fn impatient(client: async_nats::Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client)
}
