//! Sources: where indicators come from. Each reader turns its format into
//! `Candidate`s on a `Sink`; a record it cannot use is reported there with
//! its location, and reading goes on with the next one.
//!
//! Inputs are read through [`Input::read`], which refuses anything larger
//! than the configured limit before it is read into memory (files by their
//! length, HTTP bodies while streaming), so one hostile 50 MB event costs a
//! line in the summary, not the hub.

// Feed input is attacker-controlled: no slice that can panic on a
// char boundary or an out-of-range index.
#![deny(clippy::string_slice, clippy::indexing_slicing)]

pub mod advisory;
pub mod csv;
pub mod misp;
pub mod stix;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use varde_schemas::Tlp;
use varde_schemas::payload::IndicatorType;

use super::record::Sink;
use super::settings::SourceKind;

/// How a source is read.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// Name used as the `source` of what it produces (`misp:circl-osint`).
    pub name: String,
    /// Label for records that carry none.
    pub default_tlp: Tlp,
    /// Largest single file or HTTP body read.
    pub max_bytes: u64,
    /// MISP: skip attributes with `to_ids = false`.
    pub to_ids_only: bool,
    /// CSV: column mapping; list: fixed type.
    pub columns: Vec<String>,
    pub indicator_type: Option<IndicatorType>,
    pub delimiter: u8,
    pub header: bool,
    /// The advisory that will follow, for every record of this run.
    pub advisory_id: Option<String>,
}

impl SourceOptions {
    pub fn new(name: impl Into<String>) -> Self {
        SourceOptions {
            name: name.into(),
            default_tlp: Tlp::Amber,
            max_bytes: 32 << 20,
            to_ids_only: true,
            columns: Vec::new(),
            indicator_type: None,
            delimiter: b',',
            header: false,
            advisory_id: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "{what} is {size} bytes; the limit is {limit} bytes (raise hub.max_input_mib if it is genuine)"
    )]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch {url}: {detail}")]
    Http { url: String, detail: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("`{0}` is neither an existing path nor an http(s) URL")]
    BadLocation(String),
}

/// A file or folder on disk, or an http(s) URL.
#[derive(Clone, Debug)]
pub enum Input {
    Path(PathBuf),
    Url(url::Url),
}

impl Input {
    pub fn parse(location: &str) -> Result<Input, ReadError> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return url::Url::parse(location)
                .map(Input::Url)
                .map_err(|_| ReadError::BadLocation(location.into()));
        }
        Ok(Input::Path(PathBuf::from(location)))
    }

    /// `name` inside this folder or under this URL.
    pub fn join(&self, name: &str) -> Result<Input, ReadError> {
        match self {
            Input::Path(p) => Ok(Input::Path(p.join(name))),
            Input::Url(u) => {
                let mut base = u.clone();
                if !base.path().ends_with('/') {
                    base.set_path(&format!("{}/", base.path()));
                }
                base.join(name)
                    .map(Input::Url)
                    .map_err(|_| ReadError::BadLocation(format!("{u} + {name}")))
            }
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self, Input::Path(p) if p.is_dir())
    }

    /// How this input is named in reports.
    pub fn display(&self) -> Arc<str> {
        match self {
            Input::Path(p) => Arc::from(p.display().to_string()),
            Input::Url(u) => Arc::from(u.as_str()),
        }
    }

    /// The whole input, refused if larger than `limit` bytes.
    pub async fn read(&self, limit: u64) -> Result<Vec<u8>, ReadError> {
        match self {
            Input::Path(p) => read_file(p, limit).await,
            Input::Url(u) => fetch(u, limit).await,
        }
    }
}

async fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use tokio::io::AsyncReadExt;
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = tokio::fs::File::open(path).await.map_err(io)?;
    let size = f.metadata().await.map_err(io)?.len();
    if size > limit {
        return Err(ReadError::TooLarge {
            what: path.display().to_string(),
            size,
            limit,
        });
    }
    // The length can change under us (a file still being written): never
    // read more than the limit whatever it says now.
    let mut buf = Vec::with_capacity(size as usize);
    f.take(limit + 1).read_to_end(&mut buf).await.map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            what: path.display().to_string(),
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

async fn fetch(url: &url::Url, limit: u64) -> Result<Vec<u8>, ReadError> {
    let u = url.to_string();
    // ureq is blocking; one fetch at a time, off the async threads.
    tokio::task::spawn_blocking(move || fetch_blocking(&u, limit))
        .await
        .map_err(|e| ReadError::Http {
            url: url.to_string(),
            detail: e.to_string(),
        })?
}

fn fetch_blocking(url: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
    let herr = |e: ureq::Error| ReadError::Http {
        url: url.to_string(),
        detail: e.to_string(),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .http_status_as_error(false)
        .user_agent(concat!("varde-hub/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(herr)?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(ReadError::Status {
            url: url.to_string(),
            status,
        });
    }
    let too_large = |size| ReadError::TooLarge {
        what: url.to_string(),
        size,
        limit,
    };
    if let Some(len) = resp.body().content_length()
        && len > limit
    {
        return Err(too_large(len));
    }
    match resp.body_mut().with_config().limit(limit).read_to_vec() {
        Ok(b) => Ok(b),
        Err(ureq::Error::BodyExceedsLimit(n)) => Err(too_large(n.max(limit + 1))),
        Err(e) => Err(herr(e)),
    }
}

/// Parses a timestamp as feeds write them: RFC 3339, a bare date, or Unix
/// seconds (MISP).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Timestamp::from_second(secs).ok();
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    // `2026-01-05 10:00:00` (MISP sometimes), taken as UTC
    s.replacen(' ', "T", 1)
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
}

/// Reads one source into `sink`.
pub async fn read(
    kind: SourceKind,
    input: &Input,
    opts: &SourceOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadError> {
    match kind {
        SourceKind::Misp => misp::read(input, opts, sink).await,
        SourceKind::Stix => each_file(input, opts, sink, "json", stix::read_bytes).await,
        SourceKind::Csv => each_file(input, opts, sink, "csv", csv::read_csv).await,
        SourceKind::List => each_file(input, opts, sink, "txt", csv::read_list).await,
        SourceKind::Advisory => each_file(input, opts, sink, "json", advisory::read_bytes).await,
    }
}

type Parser = fn(&[u8], &Arc<str>, &SourceOptions, &mut dyn Sink);

/// A single file or URL, or every `*.ext` file in a folder (sorted).
async fn each_file(
    input: &Input,
    opts: &SourceOptions,
    sink: &mut dyn Sink,
    ext: &str,
    parse: Parser,
) -> Result<(), ReadError> {
    let files = match input {
        Input::Path(p) if p.is_dir() => {
            let mut files = Vec::new();
            let rd = std::fs::read_dir(p).map_err(|source| ReadError::Io {
                path: p.clone(),
                source,
            })?;
            for e in rd.flatten() {
                let path = e.path();
                if path.is_file() && path.extension().is_some_and(|x| x == ext) {
                    files.push(Input::Path(path));
                }
            }
            files.sort_by_key(|i| i.display());
            files
        }
        other => vec![other.clone()],
    };
    for f in files {
        let name = f.display();
        match f.read(opts.max_bytes).await {
            Ok(bytes) => parse(&bytes, &name, opts, sink),
            // An oversized file, or an unreadable one among several, is one
            // invalid record; a single missing input is the caller's error.
            Err(e) if input.is_dir() || matches!(e, ReadError::TooLarge { .. }) => {
                sink.invalid(super::record::Location::file(&name), e.to_string())
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
