//! The hub's commands: `varde ingest`, `varde hub run`,
//! `varde hub warninglists`, `varde export`.
//! Flag parsing and printing only; the work is in the library.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use varde_schemas::Tlp;
use varde_schemas::payload::IndicatorType;

use crate::Session;
use crate::settings::Settings;
use varde_bus::settings::Loaded;
use varde_hub::settings::SourceKind;
use varde_hub::source::Input;
use varde_hub::warninglist::Warninglists;
use varde_hub::{Hub, default_warninglists};

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// What the source is.
    #[arg(value_enum)]
    pub kind: SourceKind,
    /// File, folder or http(s) URL (a MISP feed: the folder or URL holding
    /// manifest.json).
    pub location: String,
    /// Source name in what is published (`misp:<name>`); default: the
    /// file or folder name.
    #[arg(long)]
    pub name: Option<String>,
    /// Label of records that carry none (default: hub.default_tlp).
    #[arg(long)]
    pub tlp: Option<Tlp>,
    /// CSV/list: the indicator type when there is no type column.
    #[arg(long = "type")]
    pub indicator_type: Option<IndicatorType>,
    /// CSV: column mapping, e.g. `type,value,first_seen,-,comment`.
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// CSV: field delimiter.
    #[arg(long, default_value_t = ',')]
    pub delimiter: char,
    /// CSV: the first row is a header (used as the mapping if --columns
    /// is not given).
    #[arg(long)]
    pub header: bool,
    /// The advisory the CSIRT will send about these findings (named in
    /// owners' notifications).
    #[arg(long)]
    pub advisory_id: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum HubCommand {
    /// Run the hub: configured sources on their schedules or as drop
    /// folders, and members' sightings from the hub's durable inbox.
    Run,
    /// Load warninglists and show what they hold, without connecting:
    /// MISP warninglist JSON files, folders of them, or a checkout of
    /// github.com/MISP/misp-warninglists. Lists Varde cannot use are
    /// skipped and named with the reason.
    Warninglists(WarninglistsArgs),
}

#[derive(clap::Args, Debug)]
pub struct WarninglistsArgs {
    /// Files or folders (default: the configuration's `hub.warninglists`,
    /// else the shipped deploy/hub/warninglists).
    pub paths: Vec<PathBuf>,
    /// Also print every list: type, entries, name and file.
    #[arg(long)]
    pub lists: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ExportFormat {
    /// One STIX 2.1 bundle (JSON).
    Stix,
    /// A MISP feed folder (manifest.json + one file per event).
    Misp,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[arg(value_enum)]
    pub format: ExportFormat,
    /// From this long ago (e.g. 24h, 7d).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// STIX: output file (default: stdout). MISP: output folder (required).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// A hub for this configuration: state and warninglist paths resolved
/// against the config file.
pub fn hub(s: &Session) -> anyhow::Result<Hub> {
    let mut hs = s.settings.value.hub.clone();
    hs.state_dir = s.settings.path(&hs.state_dir);
    let lists = configured_warninglists(&s.settings);
    hs.warninglists = lists.clone();
    let wl = Warninglists::load(&lists)
        .with_context(|| format!("{}: hub.warninglists", s.settings.file.display()))?;
    if lists.is_empty() {
        tracing::warn!(
            "no warninglists configured and deploy/hub/warninglists not found: nothing is dropped as noise"
        );
    }
    for sk in wl.skipped() {
        tracing::warn!(file = %sk.path.display(), list = %sk.name, reason = %sk.reason, "warninglist skipped");
    }
    let dir = s.directory.current();
    if s.identity.org != dir.doc.csirt {
        tracing::warn!(org = %s.identity.org, csirt = %dir.doc.csirt, "the hub runs as an org that is not the directory's CSIRT; members send sightings to the CSIRT");
    }
    Ok(Hub::new(
        s.identity.clone(),
        s.directory.clone(),
        s.js.clone(),
        hs,
        wl,
    )?)
}

/// `hub.warninglists` resolved against the config file, or the shipped
/// defaults when it names none.
fn configured_warninglists(settings: &Loaded<Settings>) -> Vec<PathBuf> {
    let hs = &settings.value.hub;
    if hs.warninglists.is_empty() {
        default_warninglists()
    } else {
        hs.warninglists.iter().map(|p| settings.path(p)).collect()
    }
}

/// `varde hub warninglists`: load, count by type, name what was skipped.
pub fn warninglists(a: WarninglistsArgs, config: &Path) -> anyhow::Result<()> {
    let paths = if !a.paths.is_empty() {
        a.paths
    } else if config.exists() {
        configured_warninglists(&Loaded::<Settings>::read(config)?)
    } else {
        default_warninglists()
    };
    if paths.is_empty() {
        anyhow::bail!(
            "no warninglists: name files or folders, set hub.warninglists, or run inside a checkout with deploy/hub/warninglists"
        );
    }
    let wl = Warninglists::load(&paths)?;
    print!("{}", warninglist_report(&wl, &paths, a.lists));
    Ok(())
}

fn warninglist_report(wl: &Warninglists, paths: &[PathBuf], each: bool) -> String {
    use crate::render::terminal_safe as safe;
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut out = String::new();
    let from: Vec<String> = paths
        .iter()
        .map(|p| safe(&p.display().to_string()).into_owned())
        .collect();
    let _ = writeln!(
        out,
        "{} lists, {} entries, {} skipped, from {}",
        wl.len(),
        wl.entries(),
        wl.skipped().len(),
        from.join(", ")
    );
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for l in wl.lists() {
        let e = by_kind.entry(l.kind).or_default();
        e.0 += 1;
        e.1 += l.entries;
    }
    let _ = writeln!(out, "  {:<10} {:>6} {:>10}", "type", "lists", "entries");
    for (kind, (n, entries)) in &by_kind {
        let _ = writeln!(out, "  {kind:<10} {n:>6} {entries:>10}");
    }
    if each {
        for l in wl.lists() {
            let _ = writeln!(
                out,
                "list {:<10} {:>8}  {}  ({})",
                l.kind,
                l.entries,
                safe(&l.name),
                safe(&l.path.display().to_string())
            );
        }
    }
    for sk in wl.skipped() {
        let _ = writeln!(
            out,
            "skipped {} ({}): {}",
            safe(&sk.path.display().to_string()),
            safe(&sk.name),
            safe(&sk.reason.to_string())
        );
    }
    out
}

fn default_name(location: &str) -> String {
    if let Ok(u) = url::Url::parse(location)
        && let Some(h) = u.host_str()
    {
        return h.to_string();
    }
    Path::new(location.trim_end_matches('/'))
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into())
}

pub async fn ingest(a: IngestArgs, config: &Path) -> anyhow::Result<()> {
    let s = Session::connect(config).await?;
    let hub = hub(&s)?;
    let name = a.name.clone().unwrap_or_else(|| default_name(&a.location));
    let mut opts = hub.options(&name, None);
    if let Some(t) = a.tlp {
        opts.default_tlp = t;
    }
    opts.indicator_type = a.indicator_type;
    opts.columns = a.columns.clone();
    opts.delimiter =
        u8::try_from(a.delimiter).context("--delimiter must be one ASCII character")?;
    opts.header = a.header;
    opts.advisory_id = a.advisory_id.clone();
    let input = Input::parse(&a.location)?;
    let bar = (!a.json && !a.no_progress && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} read  {msg}  [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let result = hub.ingest(a.kind, &input, &opts, bar.clone()).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let summary = result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    for c in varde_hub::run::auto_campaigns(&hub, &summary).await? {
        eprintln!(
            "campaign {} opened for {} by [hub.auto_campaign]",
            c.id,
            crate::render::terminal_safe(&c.about)
        );
    }
    Ok(())
}

pub async fn run(config: &Path) -> anyhow::Result<()> {
    let s = Session::connect(config).await?;
    let hub = Arc::new(hub(&s)?);
    let mut sources = Vec::new();
    for src in &hub.settings.sources {
        let loc = if src.location.starts_with("http://") || src.location.starts_with("https://") {
            src.location.clone()
        } else {
            s.settings
                .path(Path::new(&src.location))
                .display()
                .to_string()
        };
        sources.push((src.clone(), loc));
    }
    let create = s.settings.value.consumer.create;
    if s.settings.value.directory.watch {
        let js = s.js.clone();
        let handle = s.directory.clone();
        tokio::spawn(async move {
            if let Err(e) = varde_bus::directory_kv::watch(js, handle).await {
                tracing::warn!(error = %e, "directory watch ended");
            }
        });
    }
    varde_hub::run::run(hub, sources, create).await
}

pub async fn export(a: ExportArgs, config: &Path) -> anyhow::Result<()> {
    let s = Session::connect(config).await?;
    let since = varde_bus::time::ago(
        varde_bus::time::parse_duration(&a.since).map_err(anyhow::Error::msg)?,
    );
    let items =
        varde_hub::export::collect(&s.js, s.identity.clone(), s.directory.clone(), since).await?;
    match a.format {
        ExportFormat::Stix => {
            let b = varde_hub::export::stix::bundle(&items);
            let text = serde_json::to_string_pretty(&b)?;
            match &a.out {
                Some(p) if p != Path::new("-") => {
                    std::fs::write(p, text + "\n")
                        .with_context(|| format!("writing {}", p.display()))?;
                    eprintln!(
                        "wrote {} ({} objects from {} envelopes)",
                        p.display(),
                        b["objects"].as_array().map_or(0, Vec::len),
                        items.len()
                    );
                }
                _ => println!("{text}"),
            }
        }
        ExportFormat::Misp => {
            let dir = a.out.context("export misp needs --out FOLDER")?;
            let n = varde_hub::export::misp::write_feed(&items, &dir)
                .with_context(|| format!("writing {}", dir.display()))?;
            eprintln!("wrote {n} events to {}", dir.display());
        }
    }
    Ok(())
}
