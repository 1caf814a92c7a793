//! What sources hand to the pipeline: candidate indicator values (not yet
//! normalised), advisories, and the records they could not use, each with
//! the place it came from so an operator can find it.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use varde_schemas::Tlp;
use varde_schemas::payload::{Advisory, IndicatorType};

/// Where a record sits in its input: `file:line`, `file#object-id`, or the
/// whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub at: At,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    Whole,
    Line(u64),
    Object(String),
}

impl Location {
    pub fn file(file: &Arc<str>) -> Self {
        Location {
            file: file.clone(),
            at: At::Whole,
        }
    }
    pub fn line(file: &Arc<str>, line: u64) -> Self {
        Location {
            file: file.clone(),
            at: At::Line(line),
        }
    }
    pub fn object(file: &Arc<str>, id: impl Into<String>) -> Self {
        Location {
            file: file.clone(),
            at: At::Object(id.into()),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            At::Whole => write!(f, "{}", self.file),
            At::Line(l) => write!(f, "{}:{l}", self.file),
            At::Object(id) => write!(f, "{}#{id}", self.file),
        }
    }
}

/// A location built only when needed: most records are fine, and building
/// a `Location` allocates.
pub type LocFn<'a> = &'a dyn Fn() -> Location;

/// An indicator value as a source read it.
pub struct Candidate<'a> {
    pub kind: IndicatorType,
    pub value: &'a str,
    pub label: Tlp,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub confidence: Option<u8>,
    pub tags: Vec<String>,
    pub comment: Option<&'a str>,
    /// The advisory the CSIRT will send about it, if the source says so.
    pub advisory_id: Option<&'a str>,
    pub location: LocFn<'a>,
}

impl<'a> Candidate<'a> {
    pub fn new(kind: IndicatorType, value: &'a str, label: Tlp, location: LocFn<'a>) -> Self {
        Candidate {
            kind,
            value,
            label,
            first_seen: None,
            last_seen: None,
            confidence: None,
            tags: Vec::new(),
            comment: None,
            advisory_id: None,
            location,
        }
    }
}

/// Where sources put what they read. The pipeline implements it; tests
/// can collect into a `Vec`.
pub trait Sink: Send {
    fn indicator(&mut self, c: Candidate<'_>);
    fn advisory(&mut self, a: Advisory, label: Tlp, location: LocFn<'_>);
    /// A record that cannot be used, and why (counted and reported).
    fn invalid(&mut self, location: Location, reason: String);
    /// A valid record deliberately not used (e.g. MISP `to_ids = false`).
    fn skipped(&mut self, location: LocFn<'_>, reason: &'static str);
}

/// A sink that keeps what a source produced, for the sources' unit tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Collect {
    /// Each indicator: kind, value, label, tags, and where it was read.
    pub values: Vec<(IndicatorType, String, Tlp, Vec<String>, String)>,
    /// Each invalid record: `file:line` and why.
    pub invalid: Vec<(String, String)>,
    pub skipped: Vec<&'static str>,
}

#[cfg(test)]
impl Sink for Collect {
    fn indicator(&mut self, c: Candidate<'_>) {
        self.values.push((
            c.kind,
            c.value.to_string(),
            c.label,
            c.tags.clone(),
            (c.location)().to_string(),
        ));
    }
    fn advisory(&mut self, _: Advisory, _: Tlp, _: LocFn<'_>) {}
    fn invalid(&mut self, location: Location, reason: String) {
        self.invalid.push((location.to_string(), reason));
    }
    fn skipped(&mut self, _: LocFn<'_>, reason: &'static str) {
        self.skipped.push(reason);
    }
}
