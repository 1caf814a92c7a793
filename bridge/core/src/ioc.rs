//! What the bridge has seen about an indicator value: every advisory
//! (CVEs), alert, indicator batch and sighting read from the bus is indexed
//! by the digests of its normalised values (`store/values.rs`), and `!varde ioc`
//! opens the matching envelopes again and shows those the asking room may
//! see.

use std::fmt::Write as _;

use varde_schemas::normalise::{guess_type, normalise};
use varde_schemas::payload::IndicatorType;
use varde_schemas::{Header, Payload};

/// The values a message mentions, normalised.
pub fn values_of(p: &Payload) -> Vec<(IndicatorType, String)> {
    let mut out = Vec::new();
    match p {
        Payload::Indicator(b) => out.extend(b.indicators.iter().map(|i| (i.kind, i.value.clone()))),
        Payload::Alert(a) => out.extend(a.indicators.iter().map(|i| (i.kind, i.value.clone()))),
        Payload::Advisory(a) => out.extend(
            a.cves
                .iter()
                .filter_map(|c| normalise(IndicatorType::Cve, c).ok())
                .map(|c| (IndicatorType::Cve, c)),
        ),
        Payload::Sighting(s) => out.push((s.kind, s.value.clone())),
        _ => {}
    }
    out
}

/// A value typed by a member: its type and normal form, or why not.
pub fn understand(value: &str) -> Result<(IndicatorType, String), String> {
    let kind =
        guess_type(value).ok_or_else(|| format!("cannot tell what kind of value `{value}` is"))?;
    let v = normalise(kind, value).map_err(|e| e.to_string())?;
    Ok((kind, v))
}

/// One line about a message that mentions the value.
pub fn line(h: &Header, p: &Payload, sender_name: &str) -> String {
    let mut s = format!(
        "{} {} {} ({sender_name}, {})",
        h.label,
        h.kind,
        h.id,
        h.created.strftime("%Y-%m-%d %H:%M UTC")
    );
    let _ = match p {
        Payload::Advisory(a) => write!(s, ": {} (revision {})", a.advisory_id, a.revision),
        Payload::Alert(a) => write!(s, ": {}", a.title),
        Payload::Indicator(b) => write!(s, ": {} indicators", b.indicators.len()),
        Payload::Sighting(x) => match x.aggregate {
            Some(a) => write!(s, ": seen by {} organisations", a.orgs),
            None => write!(s, ": sighting"),
        },
        _ => Ok(()),
    };
    s
}
