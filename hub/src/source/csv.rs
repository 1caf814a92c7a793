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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::record::Collect;

    fn file() -> Arc<str> {
        Arc::from("feed.csv")
    }

    fn csv(text: &str, opts: &SourceOptions) -> Collect {
        let mut sink = Collect::default();
        read_csv(text.as_bytes(), &file(), opts, &mut sink);
        sink
    }

    #[test]
    fn a_bad_row_is_one_invalid_record_at_its_line_and_the_rest_is_read() {
        let mut opts = SourceOptions::new("csv:test");
        opts.header = true;
        opts.default_tlp = Tlp::Green;
        let sink = csv(
            "type,value,tlp,tags\n\
             domain,evil.example,,phishing|c2\n\
             domain,short.example\n\
             teapot,x.example,,\n\
             ipv4,192.0.2.7,TLP:AMBER,\n\
             ipv4,192.0.2.8,TLP:BEIGE,\n\
             # a comment\n\
             sha256,aa,TLP:CLEAR,\n",
            &opts,
        );
        let read: Vec<(&str, Tlp)> = sink.values.iter().map(|v| (v.1.as_str(), v.2)).collect();
        assert_eq!(
            read,
            [
                ("evil.example", Tlp::Green),
                ("192.0.2.7", Tlp::Amber),
                ("aa", Tlp::Clear)
            ]
        );
        assert_eq!(sink.values[0].0, IndicatorType::Domain);
        assert_eq!(sink.values[0].3, ["phishing", "c2"]);
        assert_eq!(sink.values[0].4, "feed.csv:2");
        let at: Vec<&str> = sink.invalid.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(at, ["feed.csv:3", "feed.csv:4", "feed.csv:6"]);
        assert_eq!(sink.invalid[0].1, "row has 2 columns; the mapping has 4");
    }

    #[test]
    fn a_mapping_without_a_value_column_or_with_an_unknown_one_stops_the_file() {
        let mut opts = SourceOptions::new("csv:test");
        opts.columns = vec!["type".into(), "comment".into()];
        let sink = csv("domain,x\n", &opts);
        assert!(sink.values.is_empty());
        assert_eq!(
            sink.invalid,
            [(
                "feed.csv".to_string(),
                "the column mapping has no `value` column".to_string()
            )]
        );
        opts.columns = vec!["value".into(), "colour".into()];
        let sink = csv("evil.example,red\n", &opts);
        assert!(sink.invalid[0].1.starts_with("unknown CSV column `colour`"));
    }

    #[test]
    fn without_a_type_column_the_type_is_the_sources_or_guessed() {
        let mut opts = SourceOptions::new("csv:test");
        let sink = csv("evil.example\n192.0.2.1\n???\n", &{
            let mut o = opts.clone();
            o.columns = vec!["value".into()];
            o
        });
        let kinds: Vec<IndicatorType> = sink.values.iter().map(|v| v.0).collect();
        assert_eq!(kinds, [IndicatorType::Domain, IndicatorType::Ipv4]);
        assert!(
            sink.invalid[0]
                .1
                .starts_with("cannot tell the type of `???`")
        );

        opts.indicator_type = Some(IndicatorType::Url);
        let sink = csv("https://evil.example/x\n", &opts);
        assert_eq!(sink.values[0].0, IndicatorType::Url);
    }

    #[test]
    fn a_list_skips_blanks_and_comments_and_names_bad_lines() {
        let opts = SourceOptions::new("list:test");
        let mut sink = Collect::default();
        read_list(
            b"# blocklist\n\nevil.example\n  192.0.2.9  \n\xff\xfe\nwhat is this\n",
            &Arc::from("list.txt"),
            &opts,
            &mut sink,
        );
        let read: Vec<(&str, &str)> = sink
            .values
            .iter()
            .map(|v| (v.1.as_str(), v.4.as_str()))
            .collect();
        assert_eq!(
            read,
            [("evil.example", "list.txt:3"), ("192.0.2.9", "list.txt:4")]
        );
        let bad: Vec<(&str, bool)> = sink
            .invalid
            .iter()
            .map(|(l, why)| (l.as_str(), why.contains("UTF-8")))
            .collect();
        assert_eq!(bad, [("list.txt:5", true), ("list.txt:6", false)]);
        // The source's label for every value of a list.
        assert!(sink.values.iter().all(|v| v.2 == Tlp::Amber));
    }
}
