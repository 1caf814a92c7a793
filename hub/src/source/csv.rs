//! CSV files with a column mapping, and plain lists (one value a line).
//! A row with the wrong number of columns, an unknown type or a bad label
//! is one invalid record at `file:line`; the rest of the file is read.

// Feed input is attacker-controlled: no slice that can panic on a
// char boundary or an out-of-range index.
#![deny(clippy::string_slice, clippy::indexing_slicing)]

use std::sync::Arc;

use varde_schemas::Tlp;
use varde_schemas::payload::IndicatorType;

use super::{SourceOptions, parse_time};
use crate::record::{Candidate, Location, Sink};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Type,
    Value,
    FirstSeen,
    LastSeen,
    Comment,
    Tlp,
    Tags,
    Confidence,
    Ignore,
}

fn column(name: &str) -> Option<Column> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "type" => Column::Type,
        "value" | "indicator" | "ioc" => Column::Value,
        "first_seen" | "first-seen" => Column::FirstSeen,
        "last_seen" | "last-seen" => Column::LastSeen,
        "comment" | "description" => Column::Comment,
        "tlp" | "label" => Column::Tlp,
        "tags" => Column::Tags,
        "confidence" => Column::Confidence,
        "-" | "" => Column::Ignore,
        _ => return None,
    })
}

/// Reads a CSV file. Columns come from `opts.columns`, else from the header
/// row, else `type,value`.
pub fn read_csv(bytes: &[u8], file: &Arc<str>, opts: &SourceOptions, sink: &mut dyn Sink) {
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(opts.header)
        .flexible(true)
        .delimiter(opts.delimiter)
        .comment(Some(b'#'))
        .trim(::csv::Trim::All)
        .from_reader(bytes);
    let names: Vec<String> = if !opts.columns.is_empty() {
        opts.columns.clone()
    } else if opts.header {
        match rdr.headers() {
            Ok(h) => h.iter().map(str::to_string).collect(),
            Err(e) => {
                sink.invalid(
                    Location::line(file, 1),
                    format!("unreadable CSV header: {e}"),
                );
                return;
            }
        }
    } else if opts.indicator_type.is_some() {
        vec!["value".into()]
    } else {
        vec!["type".into(), "value".into()]
    };
    let mut cols = Vec::with_capacity(names.len());
    for n in &names {
        match column(n) {
            Some(c) => cols.push(c),
            None => {
                sink.invalid(
                    Location::file(file),
                    format!("unknown CSV column `{n}`; use type, value, first_seen, last_seen, comment, tlp, tags, confidence or -"),
                );
                return;
            }
        }
    }
    if !cols.contains(&Column::Value) {
        sink.invalid(
            Location::file(file),
            "the column mapping has no `value` column".into(),
        );
        return;
    }
    let mut rec = ::csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                sink.invalid(
                    Location::line(file, line),
                    format!("unreadable CSV row: {e}"),
                );
                continue;
            }
        }
        let line = rec.position().map_or(line, |p| p.line());
        let loc = || Location::line(file, line);
        if rec.len() != cols.len() {
            sink.invalid(
                loc(),
                format!(
                    "row has {} columns; the mapping has {}",
                    rec.len(),
                    cols.len()
                ),
            );
            continue;
        }
        let get = |c: Column| {
            cols.iter()
                .position(|x| *x == c)
                .and_then(|i| rec.get(i))
                .filter(|s| !s.is_empty())
        };
        let value = get(Column::Value).unwrap_or("");
        let kind = match get(Column::Type) {
            Some(t) => match t.parse::<IndicatorType>() {
                Ok(k) => k,
                Err(e) => {
                    sink.invalid(loc(), e.to_string());
                    continue;
                }
            },
            None => match opts.indicator_type.or_else(|| IndicatorType::guess(value)) {
                Some(k) => k,
                None => {
                    sink.invalid(
                        loc(),
                        format!(
                            "cannot tell the type of `{}`; add a type column",
                            value.chars().take(80).collect::<String>()
                        ),
                    );
                    continue;
                }
            },
        };
        let label = match get(Column::Tlp) {
            Some(t) => match t.parse::<Tlp>() {
                Ok(l) => l,
                Err(e) => {
                    sink.invalid(loc(), e.to_string());
                    continue;
                }
            },
            None => opts.default_tlp,
        };
        let mut c = Candidate::new(kind, value, label, &loc);
        c.first_seen = get(Column::FirstSeen).and_then(parse_time);
        c.last_seen = get(Column::LastSeen).and_then(parse_time);
        c.comment = get(Column::Comment);
        c.confidence = get(Column::Confidence)
            .and_then(|s| s.parse().ok())
            .filter(|c: &u8| *c <= 100);
        c.tags = get(Column::Tags)
            .map(|t| {
                t.split(['|', ';'])
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .take(10)
                    .collect()
            })
            .unwrap_or_default();
        c.advisory_id = opts.advisory_id.as_deref();
        sink.indicator(c);
    }
}

/// Reads a plain list: one value a line; blank lines and `#` comments are
/// skipped; the type is `opts.indicator_type` or guessed per value.
pub fn read_list(bytes: &[u8], file: &Arc<str>, opts: &SourceOptions, sink: &mut dyn Sink) {
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let loc = || Location::line(file, line);
        let Ok(text) = std::str::from_utf8(raw) else {
            sink.invalid(loc(), "line is not UTF-8".into());
            continue;
        };
        let v = text.trim();
        if v.is_empty() || v.starts_with('#') {
            continue;
        }
        let Some(kind) = opts.indicator_type.or_else(|| IndicatorType::guess(v)) else {
            sink.invalid(
                loc(),
                format!(
                    "cannot tell the type of `{}`; set the source's type",
                    v.chars().take(80).collect::<String>()
                ),
            );
            continue;
        };
        let mut c = Candidate::new(kind, v, opts.default_tlp, &loc);
        c.advisory_id = opts.advisory_id.as_deref();
        sink.indicator(c);
    }
}
