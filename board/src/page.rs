//! HTML of the board. maud escapes every value, so a member's note or a
//! title cannot become markup; the only script is our own `board.js`
//! (the Content-Security-Policy allows nothing else).
//!
//! Each page is a frame around a fragment (`<main id="live">`); live
//! updates fetch the fragment again, so there is one renderer, here.

use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};
use varde_campaign::{Picture, Row};

use crate::view::{Matrix, OrgPage};

/// The page around a fragment. `fragment` is where `board.js` fetches the
/// fragment again on each change.
pub fn frame(title: &str, fragment: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Varde board" }
                link rel="stylesheet" href="/assets/board.css";
                script src="/assets/board.js" defer {}
            }
            body data-version="0" {
                header {
                    a.home href="/" { "Varde" }
                    span.sub { "the CSIRT's picture (read-only)" }
                    span #conn .conn title="live updates" { "not live" }
                }
                main #live data-fragment=(fragment) { (body) }
            }
        }
    }
}

fn when(t: Option<Timestamp>) -> String {
    t.map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".into())
}

fn cell_class(r: &Row) -> String {
    let mut c = format!("cell s-{}", r.standing.as_str());
    if r.reminders > 0 && !r.standing.is_answer() {
        c.push_str(" reminded");
    }
    if r.escalated {
        c.push_str(" escalated");
    }
    c
}

fn cell_title(r: &Row) -> String {
    let mut t = format!("{}: {}", r.org, r.label());
    if let Some(at) = r.at {
        t.push_str(&format!(" at {}", when(Some(at))));
    }
    if let Some(by) = &r.by {
        t.push_str(&format!(" by {by}"));
    }
    if r.escalated {
        t.push_str(", past the deadline");
    }
    t
}

fn counts(p: &Picture) -> Markup {
    html! {
        ul.counts {
            @for (state, n) in &p.counts {
                li.count.(format!("s-{state}")) data-state=(state) { (n) " " (state.replace('_', " ")) }
            }
            @if !p.escalation.is_empty() {
                li.count.escalation data-state="escalated" { (p.escalation.len()) " past deadline" }
            }
        }
    }
}

const LEGEND: &[&str] = &[
    "pending",
    "delivered",
    "acknowledged",
    "not_affected",
    "affected",
    "in_progress",
    "needs_help",
    "remediated",
];

fn legend() -> Markup {
    html! {
        ul.legend {
            @for s in LEGEND { li.(format!("s-{s}")) { (s.replace('_', " ")) } }
            li.escalated { "past deadline" }
        }
    }
}

/// The campaigns × organisations matrix.
pub fn matrix(m: &Matrix) -> Markup {
    html! {
        h1 { "Open campaigns" }
        p.meta { (m.columns.len()) " campaign(s), " (m.rows.len()) " organisation(s); as of " (when(Some(m.at))) }
        @if m.columns.is_empty() {
            p.empty { "No open campaigns. Open one with " code { "varde campaign open" } "." }
        } @else {
            (legend())
            div.scroll {
                table #matrix {
                    thead {
                        tr {
                            th.org { "Organisation" }
                            @for p in &m.columns {
                                th.campaign data-campaign=(p.campaign.id) {
                                    a href=(format!("/campaign/{}", p.campaign.id)) { (p.campaign.about) }
                                    div.title { (p.campaign.title) }
                                    div.deadline { "deadline " (when(p.campaign.deadline)) }
                                    (counts(p))
                                }
                            }
                        }
                    }
                    tbody {
                        @for row in &m.rows {
                            tr data-org=(row.org) {
                                th.org { a href=(format!("/org/{}", row.org)) { (row.org) } }
                                @for (i, cell) in row.cells.iter().enumerate() {
                                    @match cell {
                                        Some(r) => {
                                            td class=(cell_class(r)) data-org=(r.org)
                                                data-campaign=(m.columns[i].campaign.id)
                                                data-state=(r.standing.as_str())
                                                title=(cell_title(r)) { (r.label()) }
                                        }
                                        None => { td.cell.none { "" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One campaign: every target with its note, and the exports.
pub fn campaign(p: &Picture) -> Markup {
    let c = &p.campaign;
    html! {
        h1 { (c.about) }
        p.title { (c.title) }
        p.meta {
            "opened " (when(Some(c.opened_at))) " · deadline " (when(c.deadline))
            " · reminders every " (humanize(c.remind_every))
            @if let Some(at) = c.closed_at { " · closed " (when(Some(at))) }
        }
        p.exports {
            a href=(format!("/campaign/{}/export.csv", c.id)) download { "CSV" }
            " · "
            a href=(format!("/campaign/{}/export.json", c.id)) download { "JSON" }
        }
        (counts(p))
        table.rows {
            thead { tr { th { "Organisation" } th { "Status" } th { "Since" } th { "By" } th { "Note" } th { "Reminders" } } }
            tbody {
                @for r in &p.rows {
                    tr data-org=(r.org) {
                        th { a href=(format!("/org/{}", r.org)) { (r.org) } }
                        td class=(cell_class(r)) data-state=(r.standing.as_str()) { (r.label()) }
                        td { (when(r.at)) }
                        td { (r.by.as_deref().unwrap_or("")) }
                        td.note { (r.note.as_deref().unwrap_or("")) }
                        td { (r.reminders) }
                    }
                }
            }
        }
    }
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 && s > 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 && s > 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 && s > 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// One organisation: its open campaigns, warnings received, open
/// incidents and when its bridge last delivered.
pub fn org(o: &OrgPage) -> Markup {
    html! {
        h1 { (o.org) }
        p.meta #last-delivered { "Bridge last delivered: " (when(o.last_delivered)) }
        h2 { "Open campaigns" }
        @if o.campaigns.is_empty() { p.empty { "none" } } @else {
            table.rows #org-campaigns {
                thead { tr { th { "Warning" } th { "Asked" } th { "Status" } th { "Deadline" } th { "Reminders" } } }
                tbody {
                    @for (c, r) in &o.campaigns {
                        tr {
                            td { a href=(format!("/campaign/{}", c.id)) { (c.about) } }
                            td { (c.title) }
                            td class=(cell_class(r)) data-state=(r.standing.as_str()) { (r.label()) }
                            td { (when(c.deadline)) }
                            td { (r.reminders) }
                        }
                    }
                }
            }
        }
        h2 { "Warnings received, last 30 days" }
        @if o.received.is_empty() { p.empty { "none" } } @else {
            table.rows #org-received {
                thead { tr { th { "Warning" } th { "First heard" } th { "Delivered" } th { "Latest status" } } }
                tbody {
                    @for r in &o.received {
                        tr {
                            td { (r.about) }
                            td { (when(Some(r.first_at))) }
                            td { (when(r.delivered_at)) }
                            td class=(format!("s-{}", r.latest.as_str())) { (r.latest.as_str()) }
                        }
                    }
                }
            }
        }
        h2 { "Open incidents" }
        @if o.incidents.is_empty() { p.empty { "none" } } @else {
            table.rows #org-incidents {
                thead { tr { th { "Incident" } th { "Opened by" } th { "Since" } } }
                tbody {
                    @for i in &o.incidents {
                        tr { td { (i.title) } td { (i.opened_by) } td { (when(Some(i.opened_at))) } }
                    }
                }
            }
        }
    }
}

pub fn not_found(what: &str) -> Markup {
    html! { h1 { "Not found" } p { (what) } p { a href="/" { "Back to the board" } } }
}
