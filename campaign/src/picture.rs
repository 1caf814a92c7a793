//! The CSIRT's picture of one campaign: where each target org stands, what
//! was sent to it, and who is past the deadline without being done. Read
//! from the store only (what the CSIRT identity opened).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use varde_schemas::OrgId;
use varde_schemas::payload::RemediationState;

use crate::store::{CampaignRecord, StatusRecord, Store, StoreError};

/// Where one org stands: its latest answer if it gave one (an answer is
/// never undone by a later automatic receipt), else `delivered` when its
/// bridge posted the warning, else pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Pending,
    Delivered,
    #[serde(untagged)]
    Answered(RemediationState),
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Pending => "pending",
            Standing::Delivered => "delivered",
            Standing::Answered(s) => s.as_str(),
        }
    }

    /// Done: nothing left to chase.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            Standing::Answered(RemediationState::Remediated | RemediationState::NotAffected)
        )
    }

    /// An answer from the org's people (stops the reminders).
    pub fn is_answer(self) -> bool {
        matches!(self, Standing::Answered(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub org: OrgId,
    pub standing: Standing,
    pub note: Option<String>,
    pub by: Option<String>,
    /// When the standing was reached.
    pub at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub reminders: u32,
    /// Past the deadline and not done.
    pub escalated: bool,
}

impl Row {
    /// `remediated`, `delivered+reminded`, `pending`.
    pub fn label(&self) -> String {
        if self.reminders > 0 && !self.standing.is_answer() {
            format!("{}+reminded", self.standing.as_str())
        } else {
            self.standing.as_str().to_string()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Picture {
    pub campaign: CampaignRecord,
    pub rows: Vec<Row>,
    /// Orgs per standing.
    pub counts: BTreeMap<&'static str, usize>,
    /// Past the deadline and not done (silent, affected, in progress,
    /// needing help): the CSIRT's escalation list.
    pub escalation: Vec<OrgId>,
}

impl Picture {
    pub fn of(store: &Store, c: &CampaignRecord, now: Timestamp) -> Result<Picture, StoreError> {
        let past_deadline = c.deadline.is_some_and(|d| d <= now) && c.closed_at.is_none();
        // One query for every org's statuses, grouped here.
        let mut by_org: BTreeMap<OrgId, Vec<StatusRecord>> = BTreeMap::new();
        for s in store.statuses_about(&c.about)? {
            by_org.entry(s.org.clone()).or_default().push(s);
        }
        let mut rows = Vec::new();
        for t in store.targets(c.id)? {
            let statuses = by_org.remove(&t.org).unwrap_or_default();
            let delivered_at = statuses
                .iter()
                .find(|s| s.state == RemediationState::Delivered)
                .map(|s| s.at);
            let answer = statuses.iter().rev().find(|s| s.state.is_answer());
            let (standing, note, by, at) = match answer {
                Some(a) => (
                    Standing::Answered(a.state),
                    a.note.clone(),
                    a.by.clone(),
                    Some(a.at),
                ),
                None if delivered_at.is_some() => (Standing::Delivered, None, None, delivered_at),
                None => (Standing::Pending, None, None, None),
            };
            rows.push(Row {
                escalated: past_deadline && !standing.is_done(),
                org: t.org,
                standing,
                note,
                by,
                at,
                delivered_at,
                reminders: t.reminders,
            });
        }
        let mut counts = BTreeMap::new();
        for r in &rows {
            *counts.entry(r.standing.as_str()).or_insert(0) += 1;
        }
        let escalation = rows
            .iter()
            .filter(|r| r.escalated)
            .map(|r| r.org.clone())
            .collect();
        Ok(Picture {
            campaign: c.clone(),
            rows,
            counts,
            escalation,
        })
    }

    /// One line per org: `org,status,reminders,at,by,note`.
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "org",
            "status",
            "reminders",
            "at",
            "delivered_at",
            "by",
            "note",
            "escalated",
        ])?;
        for r in &self.rows {
            w.write_record([
                r.org.as_str(),
                r.standing.as_str(),
                &r.reminders.to_string(),
                &r.at.map(|t| t.to_string()).unwrap_or_default(),
                &r.delivered_at.map(|t| t.to_string()).unwrap_or_default(),
                r.by.as_deref().unwrap_or(""),
                r.note.as_deref().unwrap_or(""),
                if r.escalated { "yes" } else { "no" },
            ])?;
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
