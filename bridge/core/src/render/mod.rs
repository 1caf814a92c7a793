//! Bus messages as Matrix posts: a plain `body` and an HTML
//! `formatted_body`, both starting with the TLP label (the HTML one as a
//! badge in FIRST colours), in the room's language. Advisories and
//! indicators are `m.notice`; alerts too, except that an urgent alert in a
//! room with `urgent_alerts` is an `m.text` that mentions `@room`.

mod html;
mod lang;

use std::fmt::Write as _;

use jiff::Timestamp;
use ruma::EventId;
use ruma::events::Mentions;
use ruma::events::relation::Thread;
use ruma::events::room::message::{
    MessageType, NoticeMessageEventContent, Relation, ReplacementMetadata, RoomMessageEventContent,
    TextMessageEventContent,
};
use uuid::Uuid;
use varde_schemas::payload::{
    Advisory, Alert, Campaign, CampaignAction, Indicator, IndicatorBatch, IndicatorType,
    Notification, Sighting,
};
use varde_schemas::{Header, Kind, Payload, Tlp};

pub use html::{badge, escape, safe_subset};

/// Why a message was withheld, in the room's language.
pub fn violation_text(lang: Language, v: &Violation) -> String {
    lang::violation(lang, v)
}

use crate::config::Language;
use crate::policy::Violation;

/// Batches with more indicators than this are summarised with a CSV file
/// rather than listed in full (Matrix events are limited to 64 KiB).
pub const INLINE_INDICATORS: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    Notice,
    Text,
}

impl MsgType {
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Notice => "m.notice",
            MsgType::Text => "m.text",
        }
    }
}

/// One `m.room.message`.
#[derive(Clone, Debug)]
pub struct Post {
    pub msgtype: MsgType,
    pub body: String,
    pub html: String,
    pub mention_room: bool,
}

/// A file to send after the post (a digest's CSV, or the full text of a
/// post too long for one event).
#[derive(Clone, Debug)]
pub struct Attachment {
    pub name: String,
    pub mime: &'static str,
    pub data: Vec<u8>,
}

/// Synapse refuses events over 64 KiB, and in an encrypted room the
/// content grows by a third (base64 of the megolm ciphertext). A post's
/// plain text and its HTML are each kept under this, so an event stays far
/// below the limit whatever the room.
pub const MAX_TEXT: usize = 8 << 10;

#[derive(Clone, Debug)]
pub struct Rendered {
    pub post: Post,
    pub file: Option<Attachment>,
}

impl Post {
    fn msgtype(&self) -> MessageType {
        match self.msgtype {
            MsgType::Notice => {
                MessageType::Notice(NoticeMessageEventContent::html(&self.body, &self.html))
            }
            MsgType::Text => {
                MessageType::Text(TextMessageEventContent::html(&self.body, &self.html))
            }
        }
    }

    fn mentions(&self) -> Mentions {
        if self.mention_room {
            Mentions::with_room_mention()
        } else {
            Mentions::new()
        }
    }

    /// The event content. `m.mentions` is always present so that clients
    /// never guess mentions from the text.
    pub fn content(&self) -> RoomMessageEventContent {
        RoomMessageEventContent::new(self.msgtype()).add_mentions(self.mentions())
    }

    /// An edit (`m.replace`) of `original` with this post as the new
    /// content; the fallback text is marked with `*` as clients expect.
    /// The edit mentions nobody anew: the original carried the same
    /// mentions, so a revision never pings the room a second time.
    pub fn replacing(&self, original: &EventId) -> RoomMessageEventContent {
        self.content().make_replacement(ReplacementMetadata::new(
            original.to_owned(),
            Some(self.mentions()),
        ))
    }

    /// A reply in the thread rooted at `root`, with a reply fallback for
    /// clients without threads.
    pub fn in_thread(&self, root: &EventId) -> RoomMessageEventContent {
        let mut c = self.content();
        c.relates_to = Some(Relation::Thread(Thread::plain(
            root.to_owned(),
            root.to_owned(),
        )));
        c
    }
}

/// What rendering needs besides the message.
#[derive(Clone, Copy, Debug)]
pub struct Style<'a> {
    pub lang: Language,
    /// The sender organisation's name from the directory.
    pub sender_name: &'a str,
    pub urgent_alerts: bool,
}

/// Plain and HTML text built side by side.
struct Doc {
    body: String,
    html: String,
}

impl Doc {
    fn new(label: Tlp, headline_plain: &str, headline_html: &str) -> Self {
        Doc {
            body: format!("{label} {headline_plain}\n"),
            html: format!("<p>{} {headline_html}</p>", html::badge(label)),
        }
    }

    fn para(&mut self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let _ = writeln!(self.body, "{text}");
        let _ = write!(
            self.html,
            "<p>{}</p>",
            html::escape(text).replace('\n', "<br/>")
        );
    }

    fn field(&mut self, name: &str, value: &str) {
        if value.trim().is_empty() {
            return;
        }
        let _ = writeln!(self.body, "{name}: {value}");
        let _ = write!(
            self.html,
            "<p><b>{}:</b> {}</p>",
            html::escape(name),
            html::escape(value)
        );
    }

    fn list(&mut self, name: &str, items: &[String], ordered: bool, links: bool) {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(self.body, "{name}:");
        let tag = if ordered { "ol" } else { "ul" };
        let _ = write!(self.html, "<p><b>{}:</b></p><{tag}>", html::escape(name));
        for (i, item) in items.iter().enumerate() {
            if ordered {
                let _ = writeln!(self.body, "  {}. {item}", i + 1);
            } else {
                let _ = writeln!(self.body, "  - {item}");
            }
            let shown = if links {
                html::link(item)
            } else {
                html::escape(item)
            };
            let _ = write!(self.html, "<li>{shown}</li>");
        }
        let _ = write!(self.html, "</{tag}>");
    }

    fn footer(&mut self, text: &str) {
        let _ = write!(self.body, "{text}");
        let _ = write!(self.html, "<p><i>{}</i></p>", html::escape(text));
    }

    fn finish(self, msgtype: MsgType, mention_room: bool) -> Post {
        let body = self.body.trim_end().to_string();
        let (body, html) = if mention_room {
            (format!("@room {body}"), format!("@room {}", self.html))
        } else {
            (body, self.html)
        };
        Post {
            msgtype,
            body,
            html,
            mention_room,
        }
    }
}

fn from_line(style: &Style<'_>, h: &Header) -> String {
    let s = lang::strings(style.lang);
    format!("{}: {} ({})", s.from, style.sender_name, h.sender.org)
}

/// Renders a bus message for a room.
pub fn message(style: &Style<'_>, h: &Header, p: &Payload) -> Rendered {
    let post = match p {
        Payload::Advisory(a) => advisory(style, h, a),
        Payload::Alert(a) => alert(style, h, a),
        Payload::Indicator(b) if b.indicators.len() > INLINE_INDICATORS => {
            return digest(
                style.lang,
                &[DigestItem {
                    header: h,
                    batch: b,
                    sender_name: style.sender_name,
                }],
                None,
                INLINE_INDICATORS / 2,
            );
        }
        Payload::Indicator(b) => indicators(style, h, b),
        Payload::Notification(n) => notification(style, h, n),
        Payload::Sighting(s) => sighting(style, h, s),
        other => generic(style, h, other.kind()),
    };
    fit(
        Rendered { post, file: None },
        style.lang,
        &format!("{}-{}.txt", h.kind, h.id),
    )
}

/// Whether text of this length must be cut before it goes into an event.
pub fn too_long(text: &str) -> bool {
    text.len() > MAX_TEXT
}

/// A post Matrix would refuse as too large is cut at `MAX_TEXT`, says so,
/// and carries its full text as a file (`file_name`), unless it already
/// has a file of its own (a digest's CSV holds the data then).
pub fn fit(mut r: Rendered, lang: Language, file_name: &str) -> Rendered {
    if r.post.body.len() <= MAX_TEXT && r.post.html.len() <= MAX_TEXT {
        return r;
    }
    let note = match (lang, r.file.is_some()) {
        (Language::En, false) => "(Shortened: the full text is in the attached file.)",
        (Language::Nb, false) => "(Forkortet: hele teksten ligger i vedlagt fil.)",
        (Language::En, true) => "(Shortened: see the attached file.)",
        (Language::Nb, true) => "(Forkortet: se vedlagt fil.)",
    };
    let full = std::mem::take(&mut r.post.body);
    let cut = cut_at(&full, MAX_TEXT - 512);
    r.post.body = format!("{cut}…\n{note}");
    // HTML cut anywhere could leave a tag open: the short version is the
    // escaped plain text.
    r.post.html = format!(
        "{}…<br/><i>{}</i>",
        html::escape(cut).replace('\n', "<br/>"),
        html::escape(note)
    );
    if r.post.html.len() > MAX_TEXT {
        // Text that escapes to much more (all `<` or `&`): plainer still.
        r.post.html = html::escape(note);
    }
    if r.file.is_none() {
        r.file = Some(Attachment {
            name: file_name.to_string(),
            mime: "text/plain",
            data: full.into_bytes(),
        });
    }
    r
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn cut_at(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn advisory(style: &Style<'_>, h: &Header, a: &Advisory) -> Post {
    let s = lang::strings(style.lang);
    let head_plain = format!(
        "{} {} ({} {}): {}",
        s.advisory, a.advisory_id, s.revision, a.revision, a.title
    );
    let head_html = format!(
        "<b>{} {}</b> ({} {})",
        html::escape(s.advisory),
        html::escape(&a.advisory_id),
        html::escape(s.revision),
        a.revision,
    );
    let mut d = Doc::new(h.label, &head_plain, &head_html);
    let _ = write!(d.html, "<h4>{}</h4>", html::escape(&a.title));
    d.field(s.severity, lang::severity(style.lang, a.severity));
    d.para(&a.summary);
    d.field(s.cves, &a.cves.join(", "));
    let affected: Vec<String> = a
        .affected
        .iter()
        .map(|p| match &p.versions {
            Some(v) => format!("{} {} {v}", p.vendor, p.product),
            None => format!("{} {}", p.vendor, p.product),
        })
        .collect();
    d.list(s.affected, &affected, false, false);
    d.field(s.you_run, &a.matched_assets.join(", "));
    d.list(s.actions, &a.actions, true, false);
    d.list(s.references, &a.references, false, true);
    let sectors: Vec<&str> = a.sectors.iter().map(|g| g.as_str()).collect();
    d.field(s.sectors, &sectors.join(", "));
    d.footer(&from_line(style, h));
    d.finish(MsgType::Notice, false)
}

fn alert(style: &Style<'_>, h: &Header, a: &Alert) -> Post {
    let s = lang::strings(style.lang);
    let sev = lang::severity(style.lang, a.severity);
    let head_plain = format!("{} ({sev}): {}", s.alert, a.title);
    let head_html = format!(
        "<b>{} ({})</b>: <b>{}</b>",
        html::escape(s.alert),
        html::escape(sev),
        html::escape(&a.title)
    );
    let mut d = Doc::new(h.label, &head_plain, &head_html);
    d.para(&a.body);
    if let Some(id) = &a.advisory_id {
        d.field(s.advisory, id);
    }
    let iocs: Vec<String> = a.indicators.iter().map(indicator_line).collect();
    d.list(s.indicators, &iocs, false, false);
    d.list(s.references, &a.references, false, true);
    d.footer(&from_line(style, h));
    let urgent = style.urgent_alerts && a.urgent;
    d.finish(
        if urgent {
            MsgType::Text
        } else {
            MsgType::Notice
        },
        urgent,
    )
}

fn indicator_line(i: &Indicator) -> String {
    match &i.comment {
        Some(c) if !c.trim().is_empty() => format!("{} {} ({c})", i.kind, i.value),
        _ => format!("{} {}", i.kind, i.value),
    }
}

fn indicators(style: &Style<'_>, h: &Header, b: &IndicatorBatch) -> Post {
    let s = lang::strings(style.lang);
    let head = format!("{} ({})", s.indicators, b.indicators.len());
    let mut d = Doc::new(h.label, &head, &format!("<b>{}</b>", html::escape(&head)));
    if let Some(src) = &b.source {
        d.field(s.source, src);
    }
    if let Some(desc) = &b.description {
        d.para(desc);
    }
    let lines: Vec<String> = b.indicators.iter().map(indicator_line).collect();
    d.list(s.indicators, &lines, false, false);
    d.footer(&from_line(style, h));
    d.finish(MsgType::Notice, false)
}

fn notification(style: &Style<'_>, h: &Header, n: &Notification) -> Post {
    let s = lang::strings(style.lang);
    let mut d = Doc::new(
        h.label,
        s.notification,
        &format!("<b>{}</b>", html::escape(s.notification)),
    );
    d.para(&n.message);
    d.field(s.indicator, &indicator_line(&n.indicator));
    let kind = serde_json::to_value(n.matched.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    d.field(s.matched, &format!("{kind} {}", n.matched.value));
    d.field(s.source, &n.source);
    if let Some(t) = n.first_seen {
        d.field(s.first_seen, &t.to_string());
    }
    if let Some(t) = n.last_seen {
        d.field(s.last_seen, &t.to_string());
    }
    if let Some(id) = &n.advisory_id {
        d.field(s.advisory, id);
    }
    d.footer(&from_line(style, h));
    d.finish(MsgType::Notice, false)
}

fn sighting(style: &Style<'_>, h: &Header, x: &Sighting) -> Post {
    let s = lang::strings(style.lang);
    let head = format!("{}: {} {}", s.sighting, x.kind, x.value);
    let mut d = Doc::new(h.label, &head, &format!("<b>{}</b>", html::escape(&head)));
    d.para(&format!("{} {}", s.seen_at, x.seen_at));
    if let Some(agg) = &x.aggregate {
        let text = match style.lang {
            Language::En => format!(
                "Reported by {} organisations within {} h",
                agg.orgs, agg.window_hours
            ),
            Language::Nb => format!(
                "Rapportert av {} virksomheter innen {} t",
                agg.orgs, agg.window_hours
            ),
        };
        d.para(&text);
    }
    if let Some(n) = &x.note {
        d.field(s.note, n);
    }
    d.footer(&from_line(style, h));
    d.finish(MsgType::Notice, false)
}

fn generic(style: &Style<'_>, h: &Header, kind: Kind) -> Post {
    let k = lang::kind(style.lang, kind);
    let mut d = Doc::new(h.label, k, &html::escape(k));
    d.footer(&from_line(style, h));
    d.finish(MsgType::Notice, false)
}

/// A campaign message in the target org's room: the CSIRT asks where the
/// org stands (opened), reminds (no answer yet) or stops asking (closed),
/// with the command that answers. Posted in the advisory's thread.
pub fn campaign(lang: Language, label: Tlp, c: &Campaign) -> Post {
    let head = match (lang, &c.action) {
        (Language::En, CampaignAction::Opened) => {
            format!("The CSIRT asks for your status on {}", c.about)
        }
        (Language::En, CampaignAction::Reminder { n }) => {
            format!(
                "Reminder {n}: the CSIRT has no status from you on {}",
                c.about
            )
        }
        (Language::En, CampaignAction::Closed) => {
            format!("The CSIRT no longer asks about {}", c.about)
        }
        (Language::Nb, CampaignAction::Opened) => format!("CSIRT ber om status for {}", c.about),
        (Language::Nb, CampaignAction::Reminder { n }) => {
            format!(
                "Påminnelse {n}: CSIRT har ingen status fra dere for {}",
                c.about
            )
        }
        (Language::Nb, CampaignAction::Closed) => format!("CSIRT spør ikke lenger om {}", c.about),
    };
    let mut d = Doc::new(label, &head, &format!("<b>{}</b>", html::escape(&head)));
    d.para(&c.title);
    if let Some(at) = c.deadline {
        let name = match lang {
            Language::En => "Deadline",
            Language::Nb => "Frist",
        };
        d.field(name, &at.strftime("%Y-%m-%d %H:%M UTC").to_string());
    }
    if let Some(st) = c.your_status {
        let name = match lang {
            Language::En => "Your last status",
            Language::Nb => "Deres siste status",
        };
        d.field(name, st.as_str());
    }
    if !matches!(c.action, CampaignAction::Closed) {
        d.para(&match lang {
            Language::En => format!(
                "Answer with `!varde status {} <acknowledged|not_affected|affected|in_progress|remediated|needs_help> [note]`; only the CSIRT sees it.",
                c.about
            ),
            Language::Nb => format!(
                "Svar med `!varde status {} <acknowledged|not_affected|affected|in_progress|remediated|needs_help> [notat]`; bare CSIRT ser det.",
                c.about
            ),
        });
    }
    d.finish(MsgType::Notice, false)
}

/// The short thread reply that follows an edit: what changed in a new
/// revision, for clients that do not show edits.
pub fn revision_note(lang: Language, label: Tlp, a: &Advisory) -> Post {
    let s = lang::strings(lang);
    let head = format!("{} {} ({})", s.updated, a.revision, a.advisory_id);
    let mut d = Doc::new(label, &head, &format!("<b>{}</b>", html::escape(&head)));
    d.field(s.severity, lang::severity(lang, a.severity));
    if let Some(c) = &a.changes {
        d.field(s.changes, c);
    }
    d.finish(MsgType::Notice, false)
}

/// The notice left in a room when a message may not be posted there: the
/// label, kind, envelope id and reason; never the content.
pub fn withheld(
    lang: Language,
    label: Tlp,
    kind: Kind,
    envelope: Uuid,
    room: &str,
    v: &Violation,
) -> Post {
    let s = lang::strings(lang);
    let what = match lang {
        Language::En => format!(
            "A {label} {} ({envelope}) was withheld from this room: {}.",
            lang::kind(lang, kind),
            lang::violation(lang, v)
        ),
        Language::Nb => format!(
            "Et {label} {} ({envelope}) ble holdt tilbake fra dette rommet: {}.",
            lang::kind(lang, kind),
            lang::violation(lang, v)
        ),
    };
    let cmd = format!("varde-bridge release {envelope} {room}");
    Post {
        msgtype: MsgType::Notice,
        body: format!(
            "{label} {}\n{what} {}\n{} `{cmd}`",
            s.withheld_title, s.withheld_no_content, s.withheld_release
        ),
        html: format!(
            "<p>{} <b>{}</b></p><p>{} {}</p><p>{} <code>{}</code></p>",
            html::badge(label),
            html::escape(s.withheld_title),
            html::escape(&what),
            html::escape(s.withheld_no_content),
            html::escape(s.withheld_release),
            html::escape(&cmd)
        ),
        mention_room: false,
    }
}

/// The notice for several digest items withheld at once.
pub fn withheld_many(lang: Language, label: Tlp, count: usize, reasons: &[String]) -> Post {
    let s = lang::strings(lang);
    let what = match lang {
        Language::En => format!(
            "{count} indicator messages up to {label} were withheld from this room: {}.",
            reasons.join("; ")
        ),
        Language::Nb => format!(
            "{count} indikatormeldinger opp til {label} ble holdt tilbake fra dette rommet: {}.",
            reasons.join("; ")
        ),
    };
    Post {
        msgtype: MsgType::Notice,
        body: format!(
            "{label} {}\n{what} {}",
            s.withheld_title, s.withheld_no_content
        ),
        html: format!(
            "<p>{} <b>{}</b></p><p>{} {}</p>",
            html::badge(label),
            html::escape(s.withheld_title),
            html::escape(&what),
            html::escape(s.withheld_no_content)
        ),
        mention_room: false,
    }
}

/// One indicator batch in a digest.
pub struct DigestItem<'a> {
    pub header: &'a Header,
    pub batch: &'a IndicatorBatch,
    pub sender_name: &'a str,
}

/// One message for many indicator batches: counts by type, the first
/// `sample` values, and every value in a CSV file. Labelled with the
/// highest label among the batches.
pub fn digest(
    lang: Language,
    items: &[DigestItem<'_>],
    window: Option<(Timestamp, Timestamp)>,
    sample: usize,
) -> Rendered {
    let s = lang::strings(lang);
    let label = items
        .iter()
        .map(|i| i.header.label)
        .max()
        .unwrap_or(Tlp::Clear);
    let total: usize = items.iter().map(|i| i.batch.indicators.len()).sum();
    let head = match lang {
        Language::En => format!(
            "{}: {total} indicators in {} messages",
            s.digest,
            items.len()
        ),
        Language::Nb => format!(
            "{}: {total} indikatorer i {} meldinger",
            s.digest,
            items.len()
        ),
    };
    let mut d = Doc::new(label, &head, &format!("<b>{}</b>", html::escape(&head)));
    if let Some((from, to)) = window {
        d.para(&format!(
            "{} – {}",
            from.strftime("%Y-%m-%d %H:%M:%S UTC"),
            to.strftime("%H:%M:%S UTC")
        ));
    }
    let mut counts: std::collections::BTreeMap<IndicatorType, usize> = Default::default();
    for i in items {
        for x in &i.batch.indicators {
            *counts.entry(x.kind).or_default() += 1;
        }
    }
    let by_type: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    d.field(s.by_type, &by_type.join(", "));
    let mut first: Vec<String> = items
        .iter()
        .flat_map(|i| i.batch.indicators.iter())
        .take(sample)
        .map(indicator_line)
        .collect();
    if total > first.len() {
        first.push(format!("… {} {}", total - first.len(), s.more));
    }
    d.list(s.indicators, &first, false, false);
    let mut sources: Vec<String> = items
        .iter()
        .map(|i| format!("{} ({})", i.sender_name, i.header.sender.org))
        .collect();
    sources.sort();
    sources.dedup();
    d.field(s.from, &sources.join(", "));
    d.footer(s.csv_note);
    let data = csv_of(items);
    let name = match window {
        Some((from, _)) => format!("indicators-{}.csv", from.strftime("%Y%m%dT%H%M%SZ")),
        None => format!(
            "indicators-{}.csv",
            items.first().map(|i| i.header.id).unwrap_or_default()
        ),
    };
    Rendered {
        post: d.finish(MsgType::Notice, false),
        file: Some(Attachment {
            name,
            mime: "text/csv",
            data,
        }),
    }
}

/// Every indicator of the items as CSV (RFC 4180), one row per value.
pub fn csv_of(items: &[DigestItem<'_>]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "type",
        "value",
        "label",
        "envelope_id",
        "sender",
        "source",
        "first_seen",
        "last_seen",
        "confidence",
        "tags",
        "comment",
    ]);
    for i in items {
        let env = i.header.id.to_string();
        for x in &i.batch.indicators {
            let _ = w.write_record([
                x.kind.as_str(),
                x.value.as_str(),
                i.header.label.as_str(),
                env.as_str(),
                i.header.sender.org.as_str(),
                i.batch.source.as_deref().unwrap_or(""),
                &x.first_seen.map(|t| t.to_string()).unwrap_or_default(),
                &x.last_seen.map(|t| t.to_string()).unwrap_or_default(),
                &x.confidence.map(|c| c.to_string()).unwrap_or_default(),
                &x.tags.join(";"),
                x.comment.as_deref().unwrap_or(""),
            ]);
        }
    }
    // Writing to a Vec cannot fail.
    w.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use varde_schemas::payload::{Product, Severity};
    use varde_schemas::{Audience, KeyId, OrgId, Sender};

    /// The content as it goes over the wire.
    fn json(c: &RoomMessageEventContent) -> serde_json::Value {
        serde_json::to_value(c).unwrap()
    }

    fn header(kind: Kind, label: Tlp) -> Header {
        Header {
            v: 1,
            id: Uuid::now_v7(),
            kind,
            label,
            sender: Sender {
                org: OrgId::new("kcsirt").unwrap(),
                key: KeyId([0; 8]),
            },
            audience: Audience::community(),
            created: Timestamp::now(),
            expires: None,
        }
    }

    fn adv() -> Advisory {
        Advisory {
            advisory_id: "KCSIRT-2026-0042".into(),
            revision: 1,
            title: "Bypass in <NetScaler>".into(),
            summary: "Exploited.".into(),
            severity: Severity::Critical,
            cves: vec!["CVE-2026-12345".into()],
            affected: vec![Product {
                vendor: "Citrix".into(),
                product: "NetScaler".into(),
                versions: Some("< 14.1".into()),
            }],
            actions: vec!["Patch".into()],
            references: vec!["https://example.org/a".into()],
            sectors: vec![],
            published: Timestamp::now(),
            changes: None,
            matched_assets: vec![],
        }
    }

    #[test]
    fn advisory_in_both_languages() {
        let h = header(Kind::Advisory, Tlp::Amber);
        for (lang, word, sev) in [
            (Language::En, "Advisory", "critical"),
            (Language::Nb, "Sikkerhetsvarsel", "kritisk"),
        ] {
            let style = Style {
                lang,
                sender_name: "KommuneCSIRT",
                urgent_alerts: false,
            };
            let r = message(&style, &h, &Payload::Advisory(adv()));
            let p = r.post;
            assert!(p.body.starts_with("TLP:AMBER "), "{}", p.body);
            assert!(
                p.html.starts_with("<p><font color=\"#FFC000\""),
                "{}",
                p.html
            );
            assert!(p.body.contains(word) && p.body.contains(sev));
            assert!(p.body.contains("CVE-2026-12345") && p.body.contains("KommuneCSIRT"));
            assert!(p.html.contains("Bypass in &lt;NetScaler&gt;"));
            assert!(!p.html.contains("<NetScaler>"));
            assert_eq!(p.msgtype, MsgType::Notice);
            assert_eq!(json(&p.content())["m.mentions"], serde_json::json!({}));
        }
    }

    #[test]
    fn oversized_posts_are_cut_and_carry_the_full_text() {
        let style = Style {
            lang: Language::En,
            sender_name: "KommuneCSIRT",
            urgent_alerts: false,
        };
        let body = "Å".repeat(40_000);
        let p = Payload::Alert(Alert {
            title: "Long".into(),
            body: body.clone(),
            severity: Severity::High,
            urgent: false,
            references: vec![],
            indicators: vec![],
            advisory_id: None,
        });
        let r = message(&style, &header(Kind::Alert, Tlp::Green), &p);
        assert!(r.post.body.len() <= MAX_TEXT && r.post.html.len() <= MAX_TEXT);
        assert!(r.post.body.contains("full text is in the attached file"));
        let file = r.file.unwrap();
        assert_eq!(file.mime, "text/plain");
        assert!(String::from_utf8(file.data).unwrap().contains(&body));
        assert!(serde_json::to_vec(&r.post.content()).unwrap().len() < 40 << 10);
    }

    #[test]
    fn urgent_alerts_mention_the_room_only_when_configured() {
        let h = header(Kind::Alert, Tlp::Clear);
        let a = Alert {
            title: "Phishing".into(),
            body: "Block x".into(),
            severity: Severity::High,
            urgent: true,
            references: vec![],
            indicators: vec![],
            advisory_id: None,
        };
        let mut style = Style {
            lang: Language::En,
            sender_name: "KommuneCSIRT",
            urgent_alerts: true,
        };
        let p = message(&style, &h, &Payload::Alert(a.clone())).post;
        assert_eq!(p.msgtype, MsgType::Text);
        assert!(p.body.starts_with("@room TLP:CLEAR"));
        assert_eq!(
            json(&p.content())["m.mentions"],
            serde_json::json!({"room": true})
        );
        style.urgent_alerts = false;
        let p = message(&style, &h, &Payload::Alert(a)).post;
        assert_eq!(p.msgtype, MsgType::Notice);
        assert!(p.body.starts_with("TLP:CLEAR"));
    }

    #[test]
    fn digest_counts_and_csv() {
        let h = header(Kind::Indicator, Tlp::Green);
        let batch = IndicatorBatch {
            source: Some("feed".into()),
            description: None,
            indicators: (0..120)
                .map(|i| {
                    Indicator::new(IndicatorType::Ipv4, &format!("10.0.0.{}", i % 250)).unwrap()
                })
                .chain([Indicator::new(IndicatorType::Domain, "evil.example").unwrap()])
                .collect(),
        };
        let r = digest(
            Language::En,
            &[DigestItem {
                header: &h,
                batch: &batch,
                sender_name: "KommuneCSIRT",
            }],
            None,
            5,
        );
        assert!(r.post.body.contains("121 indicators in 1 messages"));
        assert!(r.post.body.contains("ipv4: 120, domain: 1"));
        assert!(r.post.body.contains("… 116 more"));
        let csv = String::from_utf8(r.file.unwrap().data).unwrap();
        assert_eq!(csv.lines().count(), 122);
        assert!(csv.contains("domain,evil.example,TLP:GREEN"));
    }

    #[test]
    fn withheld_notice_has_no_content() {
        let id = Uuid::now_v7();
        let p = withheld(
            Language::En,
            Tlp::Amber,
            Kind::Advisory,
            id,
            "!r:hs",
            &Violation::NotEncrypted { label: Tlp::Amber },
        );
        assert!(p.body.contains("TLP:AMBER") && p.body.contains(&id.to_string()));
        assert!(p.body.contains("not end-to-end encrypted") || p.body.contains("encrypted"));
        let nb = withheld(
            Language::Nb,
            Tlp::Amber,
            Kind::Advisory,
            id,
            "!r:hs",
            &Violation::NotEncrypted { label: Tlp::Amber },
        );
        assert!(nb.body.contains("holdt tilbake"));
    }

    #[test]
    fn edits_and_threads() {
        let p = Post {
            msgtype: MsgType::Notice,
            body: "b".into(),
            html: "h".into(),
            mention_room: false,
        };
        let orig = EventId::parse("$orig").unwrap();
        let e = json(&p.replacing(&orig));
        assert_eq!(e["m.relates_to"]["rel_type"], "m.replace");
        assert_eq!(e["m.relates_to"]["event_id"], "$orig");
        assert_eq!(e["m.new_content"]["body"], "b");
        assert_eq!(e["m.new_content"]["formatted_body"], "h");
        assert_eq!(e["body"], "* b");
        assert_eq!(e["formatted_body"], "* h");
        // An edit pings nobody anew.
        assert_eq!(e["m.mentions"], serde_json::json!({}));
        let urgent = Post {
            mention_room: true,
            ..p.clone()
        };
        assert_eq!(
            json(&urgent.replacing(&orig))["m.mentions"],
            serde_json::json!({})
        );
        let root = EventId::parse("$root").unwrap();
        let t = json(&p.in_thread(&root));
        assert_eq!(t["m.relates_to"]["rel_type"], "m.thread");
        assert_eq!(t["m.relates_to"]["event_id"], "$root");
        assert_eq!(t["m.relates_to"]["is_falling_back"], true);
        assert_eq!(t["m.relates_to"]["m.in_reply_to"]["event_id"], "$root");
        assert_eq!(t["msgtype"], "m.notice");
    }
}
