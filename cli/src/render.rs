//! Human view of opened messages for the terminal: the TLP badge in FIRST
//! colours on black, then a compact summary of the payload.
//!
//! Every string that came from outside (payload text, names, values) goes
//! through [`terminal_safe`] before it reaches the terminal: a payload is
//! written by whoever holds a member key, and raw escape sequences or bidi
//! overrides in it could rewrite what the reader sees (overwrite the real
//! header line with a forged `TLP:CLEAR kcsirt` one, or reverse a domain).

use std::borrow::Cow;
use std::fmt::Display;

use owo_colors::OwoColorize;
use varde_schemas::payload::{CampaignAction, IncidentAction};
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

/// Where a line break inside one field continues: deeper than any line
/// this view starts itself, so text in a payload can never pose as a header
/// line (column 0) or a field of its own (two spaces).
const CONTINUATION: &str = "\n    ";

/// `s` made safe to print on a terminal: C0 and C1 control characters
/// (ESC, CR, BS, DEL, CSI…), Unicode bidi controls and line/paragraph
/// separators are shown as Rust-style escapes (`\u{1b}`); a line feed
/// stays a line break but continues indented ([`CONTINUATION`]); a tab is
/// kept. Borrows when there is nothing to escape (the usual case).
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\n' || needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if c == '\n' {
            out.push_str(CONTINUATION);
        } else if needs_escape(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters a terminal acts on instead of showing, or that reorder or
/// break what follows them on screen.
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// A JSON document (as serde_json writes it) made safe for a terminal.
/// serde_json escapes C0 controls but writes DEL, C1 controls and bidi
/// controls raw; those can only occur inside strings there, so replacing
/// them with `\uXXXX` escapes gives an equal JSON value.
pub fn json_terminal_safe(json: &str) -> Cow<'_, str> {
    if !json.chars().any(needs_escape) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs_escape(c) {
            // Everything `needs_escape` matches is in the BMP.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Shorthand for the views: any displayable field, made safe.
pub fn safe(x: impl Display) -> String {
    terminal_safe(&x.to_string()).into_owned()
}

pub fn human(h: &Header, p: &Payload, colour: bool) -> String {
    // The badge is ours (its colour codes must stay); everything after it
    // is escaped.
    let rest = format!(
        "{} {} from {} at {} ({})",
        h.kind,
        h.id,
        h.sender.org,
        h.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
        h.audience
    );
    let head = format!("{} {}", badge(h.label, colour), terminal_safe(&rest));
    let body = match p {
        Payload::Advisory(a) => {
            let mut s = format!(
                "  {} [{} rev {}] severity {}",
                safe(&a.title),
                safe(&a.advisory_id),
                a.revision,
                safe(a.severity)
            );
            if !a.cves.is_empty() {
                s += &format!("\n  CVEs: {}", safe(a.cves.join(", ")));
            }
            if !a.affected.is_empty() {
                let prods: Vec<String> = a
                    .affected
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {}{}",
                            safe(&p.vendor),
                            safe(&p.product),
                            p.versions
                                .as_deref()
                                .map(|v| format!(" ({})", safe(v)))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                s += &format!("\n  Affected: {}", prods.join("; "));
            }
            s += &format!("\n  {}", safe(&a.summary));
            for (i, act) in a.actions.iter().enumerate() {
                s += &format!("\n  {}. {}", i + 1, safe(act));
            }
            for r in &a.references {
                s += &format!("\n  ref: {}", safe(r));
            }
            if let Some(c) = &a.changes {
                s += &format!("\n  changed: {}", safe(c));
            }
            s
        }
        Payload::Alert(a) => format!(
            "  {}{} (severity {})\n  {}",
            if a.urgent { "URGENT: " } else { "" },
            safe(&a.title),
            safe(a.severity),
            safe(&a.body)
        ),
        Payload::Indicator(b) => {
            let mut s = format!(
                "  {} indicators{}",
                b.indicators.len(),
                b.source
                    .as_deref()
                    .map(|x| format!(" from {}", safe(x)))
                    .unwrap_or_default()
            );
            for i in b.indicators.iter().take(10) {
                s += &format!("\n  {:<8} {}", i.kind, safe(&i.value));
            }
            if b.indicators.len() > 10 {
                s += &format!("\n  … and {} more", b.indicators.len() - 10);
            }
            s
        }
        Payload::Sighting(x) => match x.aggregate {
            Some(a) => format!(
                "  {} {} seen by {} member organisations in {} h",
                x.kind,
                safe(&x.value),
                a.orgs,
                a.window_hours
            ),
            None => format!(
                "  {} {} seen at {}{}",
                x.kind,
                safe(&x.value),
                x.seen_at,
                x.note
                    .as_deref()
                    .map(|n| format!(": {}", safe(n)))
                    .unwrap_or_default()
            ),
        },
        Payload::Ack(a) => format!(
            "  acknowledged {}{}{}",
            a.of,
            a.by.as_ref()
                .and_then(|p| p.display_name.clone().or(p.matrix_user.clone()))
                .map(|n| format!(" by {}", safe(n)))
                .unwrap_or_default(),
            a.note
                .as_deref()
                .map(|n| format!(": {}", safe(n)))
                .unwrap_or_default()
        ),
        Payload::Chat(c) => format!(
            "  [{}] {}: {}",
            safe(&c.conversation),
            safe(
                c.author
                    .display_name
                    .clone()
                    .or(c.author.matrix_user.clone())
                    .unwrap_or_else(|| c
                        .author
                        .org
                        .as_ref()
                        .map(|o| o.to_string())
                        .unwrap_or_default())
            ),
            safe(&c.text)
        ),
        Payload::Incident(i) => format!(
            "  incident {} {}: {}{}",
            safe(i.incident_id),
            match i.action {
                IncidentAction::Open => "opened",
                IncidentAction::Note => "note",
                IncidentAction::Close => "closed",
            },
            safe(&i.title),
            i.text
                .as_deref()
                .map(|t| format!("\n  {}", safe(t)))
                .unwrap_or_default()
        ),
        Payload::Notification(n) => format!(
            "  {} {} matched your {:?} {} (source {})\n  {}",
            n.indicator.kind,
            safe(&n.indicator.value),
            format!("{:?}", n.matched.kind).to_lowercase(),
            safe(&n.matched.value),
            safe(&n.source),
            safe(&n.message)
        ),
        Payload::Status(st) => format!(
            "  status on {}: {}{}{}",
            safe(&st.about),
            st.state,
            st.by
                .as_ref()
                .and_then(|p| p.display_name.as_deref())
                .map(|b| format!(" (by {})", safe(b)))
                .unwrap_or_default(),
            st.note
                .as_deref()
                .map(|n| format!("\n  {}", safe(n)))
                .unwrap_or_default()
        ),
        Payload::Campaign(c) => format!(
            "  campaign {} on {}: {}{}{}\n  {}",
            c.campaign,
            safe(&c.about),
            match &c.action {
                CampaignAction::Opened => "opened".to_string(),
                CampaignAction::Reminder { n } => format!("reminder {n}"),
                CampaignAction::Closed => "closed".to_string(),
            },
            c.deadline
                .map(|d| format!(", deadline {d}"))
                .unwrap_or_default(),
            c.your_status
                .map(|s| format!(", your status {s}"))
                .unwrap_or_default(),
            safe(&c.title)
        ),
    };
    format!("{head}\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        let forged = "ok\x1b[2K\rTLP:CLEAR kcsirt: fake\u{202E}moc.elgoog\u{9b}\u{7f}";
        let out = terminal_safe(forged);
        assert_eq!(
            out,
            "ok\\u{1b}[2K\\u{d}TLP:CLEAR kcsirt: fake\\u{202e}moc.elgoog\\u{9b}\\u{7f}"
        );
        assert!(!out.chars().any(needs_escape));
    }

    #[test]
    fn line_breaks_continue_indented_and_plain_text_is_borrowed() {
        assert_eq!(terminal_safe("a\nb\tc"), "a\n    b\tc");
        assert!(matches!(terminal_safe("Bodø æøå"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_equal_after_escaping() {
        let v = serde_json::json!({"text": "x\u{202E}y\u{9b}z\u{1b}"});
        let raw = v.to_string();
        let safe = json_terminal_safe(&raw);
        assert!(!safe.chars().any(needs_escape), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back, v);
    }
}
