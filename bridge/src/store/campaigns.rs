//! The `campaigns` and `own_status` tables: what the CSIRT asked this org
//! (from its campaign messages) and the last status this bridge sent per
//! warning, for `!varde campaigns`. Only this org's own: the CSIRT seals
//! each campaign message to one org alone.

use rusqlite::params;
use varde_schemas::payload::{Campaign, CampaignAction, RemediationState};

use super::{Result, Store, now_ms};

/// One open campaign as this org knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenCampaign {
    pub about: String,
    pub title: String,
    pub deadline: Option<String>,
    /// The last status this bridge sent about it.
    pub status: Option<String>,
}

impl Store {
    /// Records a campaign message (opening, reminder or closing).
    pub fn record_campaign(&self, c: &Campaign) -> Result<()> {
        let closed = matches!(c.action, CampaignAction::Closed);
        self.with("recording a campaign", |conn| {
            conn.execute(
                "INSERT INTO campaigns (campaign, about, title, deadline, closed, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(campaign) DO UPDATE SET
                   title = excluded.title, deadline = excluded.deadline,
                   closed = MAX(campaigns.closed, excluded.closed), updated_ms = excluded.updated_ms",
                params![
                    c.campaign.to_string(),
                    c.about,
                    c.title,
                    c.deadline.map(|d| d.to_string()),
                    closed,
                    now_ms()
                ],
            )
            .map(|_| ())
        })
    }

    /// Remembers the last status this bridge sent about `about`; an
    /// automatic `delivered` never replaces a person's answer.
    pub fn record_own_status(&self, about: &str, state: RemediationState) -> Result<()> {
        self.with("recording a status", |conn| {
            conn.execute(
                "INSERT INTO own_status (about, state, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(about) DO UPDATE SET state = excluded.state, at_ms = excluded.at_ms
                 WHERE excluded.state != 'delivered'",
                params![about, state.as_str(), now_ms()],
            )
            .map(|_| ())
        })
    }

    /// Open campaigns, deadline first, with this org's last status.
    pub fn open_campaigns(&self) -> Result<Vec<OpenCampaign>> {
        self.with("listing campaigns", |conn| {
            let mut st = conn.prepare(
                "SELECT c.about, c.title, c.deadline, s.state FROM campaigns c
                 LEFT JOIN own_status s ON s.about = c.about
                 WHERE c.closed = 0 ORDER BY c.deadline IS NULL, c.deadline, c.about",
            )?;
            let rows = st.query_map([], |r| {
                Ok(OpenCampaign {
                    about: r.get(0)?,
                    title: r.get(1)?,
                    deadline: r.get(2)?,
                    status: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }
}
