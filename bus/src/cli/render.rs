//! Human view of opened messages for the terminal: the TLP badge in FIRST
//! colours on black, then a compact summary of the payload.

use owo_colors::OwoColorize;
use varde_schemas::payload::IncidentAction;
use varde_schemas::{Header, Payload, Tlp};

/// The label as a coloured badge (true colour), or plain when `colour` is off.
pub fn badge(t: Tlp, colour: bool) -> String {
    let text = format!(" {} ", t.as_str());
    if !colour {
        return format!("[{}]", t.as_str());
    }
    let (r, g, b) = t.colour_rgb();
    text.truecolor(r, g, b)
        .on_truecolor(0, 0, 0)
        .bold()
        .to_string()
}

pub fn human(h: &Header, p: &Payload, colour: bool) -> String {
    let head = format!(
        "{} {} {} from {} at {} ({})",
        badge(h.label, colour),
        h.kind,
        h.id,
        h.sender.org,
        h.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
        h.audience
    );
    let body = match p {
        Payload::Advisory(a) => {
            let mut s = format!(
                "  {} [{} rev {}] severity {}",
                a.title, a.advisory_id, a.revision, a.severity
            );
            if !a.cves.is_empty() {
                s += &format!("\n  CVEs: {}", a.cves.join(", "));
            }
            if !a.affected.is_empty() {
                let prods: Vec<String> = a
                    .affected
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {}{}",
                            p.vendor,
                            p.product,
                            p.versions
                                .as_deref()
                                .map(|v| format!(" ({v})"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                s += &format!("\n  Affected: {}", prods.join("; "));
            }
            s += &format!("\n  {}", a.summary);
            for (i, act) in a.actions.iter().enumerate() {
                s += &format!("\n  {}. {act}", i + 1);
            }
            for r in &a.references {
                s += &format!("\n  ref: {r}");
            }
            if let Some(c) = &a.changes {
                s += &format!("\n  changed: {c}");
            }
            s
        }
        Payload::Alert(a) => format!(
            "  {}{} (severity {})\n  {}",
            if a.urgent { "URGENT: " } else { "" },
            a.title,
            a.severity,
            a.body
        ),
        Payload::Indicator(b) => {
            let mut s = format!(
                "  {} indicators{}",
                b.indicators.len(),
                b.source
                    .as_deref()
                    .map(|x| format!(" from {x}"))
                    .unwrap_or_default()
            );
            for i in b.indicators.iter().take(10) {
                s += &format!("\n  {:<8} {}", i.kind, i.value);
            }
            if b.indicators.len() > 10 {
                s += &format!("\n  … and {} more", b.indicators.len() - 10);
            }
            s
        }
        Payload::Sighting(x) => match x.aggregate {
            Some(a) => format!(
                "  {} {} seen by {} member organisations in {} h",
                x.kind, x.value, a.orgs, a.window_hours
            ),
            None => format!(
                "  {} {} seen at {}{}",
                x.kind,
                x.value,
                x.seen_at,
                x.note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
        },
        Payload::Ack(a) => format!(
            "  acknowledged {}{}{}",
            a.of,
            a.by.as_ref()
                .and_then(|p| p.display_name.clone().or(p.matrix_user.clone()))
                .map(|n| format!(" by {n}"))
                .unwrap_or_default(),
            a.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
        Payload::Chat(c) => format!(
            "  [{}] {}: {}",
            c.conversation,
            c.author
                .display_name
                .clone()
                .or(c.author.matrix_user.clone())
                .unwrap_or_else(|| c
                    .author
                    .org
                    .as_ref()
                    .map(|o| o.to_string())
                    .unwrap_or_default()),
            c.text
        ),
        Payload::Incident(i) => format!(
            "  incident {} {}: {}{}",
            i.incident_id,
            match i.action {
                IncidentAction::Open => "opened",
                IncidentAction::Note => "note",
                IncidentAction::Close => "closed",
            },
            i.title,
            i.text
                .as_deref()
                .map(|t| format!("\n  {t}"))
                .unwrap_or_default()
        ),
        Payload::Notification(n) => format!(
            "  {} {} matched your {:?} {} (source {})\n  {}",
            n.indicator.kind,
            n.indicator.value,
            format!("{:?}", n.matched.kind).to_lowercase(),
            n.matched.value,
            n.source,
            n.message
        ),
    };
    format!("{head}\n{body}")
}
