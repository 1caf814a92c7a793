//! The CSIRT's hub: sources → normalise → route (a value a member owns goes
//! to that member) → drop (warninglists, duplicates) → batch → seal → bus,
//! in the spirit of vector's sources, transforms and sinks. Its commands
//! (`varde ingest`, `varde hub`, `varde export`) live in the `varde` CLI;
//! its `[hub]` settings section is [`settings::HubSettings`].
//!
//! - `source`: MISP feeds, STIX 2.1 bundles, CSV and plain lists, Varde
//!   advisories; each record that cannot be used is reported with its
//!   place and the rest is read.
//! - `pipeline`: normalisation, routing, warninglists, dedup, batching.
//! - `route`: longest-prefix CIDR, ASN and domain-suffix constituency, and
//!   asset tags against advisories' products.
//! - `publish`: sealing on all cores with pipelined PubAcks.
//! - `sighting`: members' sightings, republished only as counts.
//! - `export`: STIX 2.1 bundles and MISP feed folders of what an identity
//!   may read.
//! - `run`: `varde hub run`, the long-running service.

pub mod dedup;
pub mod export;
pub mod pipeline;
pub mod publish;
pub mod record;
pub mod route;
pub mod run;
pub mod settings;
pub mod sighting;
pub mod source;
pub mod summary;
pub mod warninglist;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;

use self::dedup::Dedup;
use self::pipeline::Pipeline;
use self::publish::{PublishError, Publisher};
use self::route::Router;
use self::settings::{HubSettings, SourceKind, SourceSettings};
use self::source::{Input, ReadError, SourceOptions};
use self::summary::Summary;
use self::warninglist::{WarninglistError, Warninglists};
use varde_bus::directory::{DirectoryHandle, VerifiedDirectory};
use varde_bus::keys::Identity;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Warninglist(#[from] WarninglistError),
    #[error(transparent)]
    Dedup(#[from] dedup::DedupError),
    #[error(
        "publishing failed after {published} envelopes; nothing of this run is marked as seen, so the next run retries it: {source}"
    )]
    Publish {
        published: u64,
        #[source]
        source: PublishError,
    },
}

/// The shipped warninglists, found next to the working directory or a
/// parent (a checkout), for configurations that name none.
pub fn default_warninglists() -> Vec<PathBuf> {
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        let c = d.join("deploy/hub/warninglists");
        if c.is_dir() {
            return vec![c];
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    Vec::new()
}

/// Everything one hub process holds: who it is, the directory and the
/// routing table built from it, the noise filters and the dedup store.
pub struct Hub {
    pub identity: Arc<Identity>,
    pub directory: DirectoryHandle,
    pub js: async_nats::jetstream::Context,
    pub settings: HubSettings,
    pub warninglists: Arc<Warninglists>,
    router: Mutex<Option<(u64, Arc<Router>)>>,
    dedup: tokio::sync::Mutex<Dedup>,
}

impl Hub {
    /// `state_dir` relative paths are taken as given (the CLI resolves
    /// them against the config file).
    pub fn new(
        identity: Arc<Identity>,
        directory: DirectoryHandle,
        js: async_nats::jetstream::Context,
        settings: HubSettings,
        warninglists: Warninglists,
    ) -> Result<Hub, HubError> {
        let dedup = Dedup::open(&settings.state_dir.join("dedup.bin"), settings.dedup_window)?;
        Ok(Hub {
            identity,
            directory,
            js,
            settings,
            warninglists: Arc::new(warninglists),
            router: Mutex::new(None),
            dedup: tokio::sync::Mutex::new(dedup),
        })
    }

    /// The current directory and its routing table (rebuilt when a newer
    /// directory version arrived).
    pub fn tables(&self) -> (Arc<VerifiedDirectory>, Arc<Router>) {
        let dir = self.directory.current();
        let mut g = self.router.lock().unwrap_or_else(|p| p.into_inner());
        match &*g {
            Some((v, r)) if *v == dir.version() => (dir, r.clone()),
            _ => {
                let r = Arc::new(Router::new(&dir));
                *g = Some((dir.version(), r.clone()));
                (dir, r)
            }
        }
    }

    /// Source options from the hub settings (and a configured source).
    pub fn options(&self, name: &str, src: Option<&SourceSettings>) -> SourceOptions {
        let mut o = SourceOptions::new(name);
        o.default_tlp = src.and_then(|s| s.tlp).unwrap_or(self.settings.default_tlp);
        o.max_bytes = self.settings.max_input_bytes();
        o.to_ids_only = self.settings.misp_to_ids_only;
        if let Some(s) = src {
            o.columns = s.columns.clone();
            o.indicator_type = s.indicator_type;
            o.delimiter = s.delimiter.map_or(b',', |c| c as u8);
            o.header = s.header;
        }
        o
    }

    /// Reads one source through the whole pipeline and publishes what it
    /// keeps. The dedup store is saved only once every envelope of the run
    /// has been stored by the broker.
    pub async fn ingest(
        &self,
        kind: SourceKind,
        input: &Input,
        opts: &SourceOptions,
        progress: Option<ProgressBar>,
    ) -> Result<Summary, HubError> {
        let (dir, router) = self.tables();
        let publisher = Publisher::start(self.js.clone(), self.identity.clone(), dir.clone());
        let tx = publisher.sender();
        let mut out = move |w| {
            let _ = tx.send(w);
        };
        let groups = pipeline::amber_groups(&self.settings.amber_groups, &dir);
        let mut dedup = self.dedup.lock().await;
        let source_name = format!("{}:{}", kind.as_str(), opts.name);
        let lookups = pipeline::Lookups {
            dir: &dir,
            router: &router,
            warninglists: &self.warninglists,
        };
        let mut p = Pipeline::new(
            source_name,
            lookups,
            &mut dedup,
            groups,
            self.settings.batch_size,
            &mut out,
        );
        if let Some(bar) = progress {
            p = p.with_progress(bar);
        }
        let started = std::time::Instant::now();
        let read = source::read(kind, input, opts, &mut p).await;
        p.flush();
        let read_s = started.elapsed().as_secs_f64();
        let mut summary = std::mem::take(&mut p.summary);
        let taken = std::mem::take(&mut p.taken);
        drop(p);
        drop(out);
        let published = publisher.finish().await;
        tracing::debug!(
            read_s,
            total_s = started.elapsed().as_secs_f64(),
            "ingest phases (read+transform, then the last seals and PubAcks)"
        );
        let forget = |dedup: &mut Dedup| {
            for k in &taken {
                dedup.forget(k);
            }
        };
        match (read, published) {
            (Ok(()), Ok(p)) => {
                summary.published = p.envelopes;
                dedup.save()?;
                Ok(summary)
            }
            (Err(e), _) => {
                forget(&mut dedup);
                Err(e.into())
            }
            (Ok(()), Err(source)) => {
                forget(&mut dedup);
                Err(HubError::Publish {
                    published: 0,
                    source,
                })
            }
        }
    }

    /// Values in the dedup store.
    pub async fn remembered(&self) -> usize {
        self.dedup.lock().await.len()
    }
}
