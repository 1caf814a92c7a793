//! What the board shows, read from the campaign store (which holds only
//! what the CSIRT identity opened): the campaigns × organisations matrix
//! and one organisation's page. Plain data; `page` renders it.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use varde_campaign::store::{IncidentRecord, StatusRecord};
use varde_campaign::{CampaignRecord, Picture, Row, Store, StoreError};
use varde_schemas::OrgId;
use varde_schemas::payload::RemediationState;

/// How far back an organisation's page lists the warnings it received.
pub const RECENT: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Open campaigns as columns, every target organisation as a row.
#[derive(Debug)]
pub struct Matrix {
    pub at: Timestamp,
    pub columns: Vec<Picture>,
    pub rows: Vec<MatrixRow>,
}

#[derive(Debug)]
pub struct MatrixRow {
    pub org: OrgId,
    /// One per column; `None` where the org is not a target.
    pub cells: Vec<Option<Row>>,
}

impl Matrix {
    pub fn of(store: &Store, now: Timestamp) -> Result<Matrix, StoreError> {
        let columns = store
            .campaigns(false)?
            .iter()
            .map(|c| Picture::of(store, c, now))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows: BTreeMap<OrgId, Vec<Option<Row>>> = BTreeMap::new();
        for (i, p) in columns.iter().enumerate() {
            for r in &p.rows {
                rows.entry(r.org.clone())
                    .or_insert_with(|| vec![None; columns.len()])[i] = Some(r.clone());
            }
        }
        Ok(Matrix {
            at: now,
            rows: rows
                .into_iter()
                .map(|(org, cells)| MatrixRow { org, cells })
                .collect(),
            columns,
        })
    }
}

/// One warning an org received (a status of any kind from it proves the
/// receipt: its bridge's `delivered`, or its people's answer).
#[derive(Debug)]
pub struct Received {
    pub about: String,
    pub first_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub latest: RemediationState,
}

/// One organisation's page.
#[derive(Debug)]
pub struct OrgPage {
    pub org: OrgId,
    pub at: Timestamp,
    /// Open campaigns it is a target of, with where it stands.
    pub campaigns: Vec<(CampaignRecord, Row)>,
    /// Warnings received in the last [`RECENT`], newest first.
    pub received: Vec<Received>,
    pub incidents: Vec<IncidentRecord>,
    pub last_delivered: Option<Timestamp>,
}

impl OrgPage {
    /// `None` when the store knows nothing of `org`.
    pub fn of(store: &Store, org: &OrgId, now: Timestamp) -> Result<Option<OrgPage>, StoreError> {
        let mut campaigns = Vec::new();
        for c in store.campaigns(false)? {
            let p = Picture::of(store, &c, now)?;
            if let Some(r) = p.rows.into_iter().find(|r| &r.org == org) {
                campaigns.push((c, r));
            }
        }
        let received = received(store.statuses_of(org, now - RECENT)?);
        let incidents = store.open_incidents(org)?;
        let last_delivered = store.last_delivered(org)?;
        if campaigns.is_empty()
            && received.is_empty()
            && incidents.is_empty()
            && last_delivered.is_none()
        {
            return Ok(None);
        }
        Ok(Some(OrgPage {
            org: org.clone(),
            at: now,
            campaigns,
            received,
            incidents,
            last_delivered,
        }))
    }
}

/// Statuses (oldest first) → one entry per warning, newest first.
fn received(statuses: Vec<(String, StatusRecord)>) -> Vec<Received> {
    let mut by_about: Vec<Received> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (about, s) in statuses {
        let i = *index.entry(about.clone()).or_insert_with(|| {
            by_about.push(Received {
                about,
                first_at: s.at,
                delivered_at: None,
                latest: s.state,
            });
            by_about.len() - 1
        });
        let r = &mut by_about[i];
        if s.state == RemediationState::Delivered {
            r.delivered_at.get_or_insert(s.at);
        }
        // An answer is never undone by a later automatic receipt.
        if s.state.is_answer() || !r.latest.is_answer() {
            r.latest = s.state;
        }
    }
    by_about.reverse();
    by_about
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;
    use uuid::Uuid;
    use varde_schemas::KeyId;
    use varde_schemas::payload::Status;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    #[test]
    fn matrix_rows_are_every_target_and_blank_where_not_targeted() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Store::open(&d.path().join("c.sqlite")).unwrap();
        let now = Timestamp::now();
        let mk = |about: &str| CampaignRecord {
            id: Uuid::now_v7(),
            about: about.into(),
            title: "t".into(),
            opened_at: now,
            deadline: None,
            remind_every: Duration::from_secs(60),
            closed_at: None,
        };
        let a = mk("A-1");
        let b = CampaignRecord {
            opened_at: now + SignedDuration::from_secs(1),
            ..mk("B-2")
        };
        s.insert_campaign(&a, &[org("gjovik"), org("hamar")])
            .unwrap();
        s.insert_campaign(&b, &[org("hamar")]).unwrap();
        let st = |about: &str, state| Status {
            about: about.into(),
            state,
            note: None,
            by: None,
        };
        let k = KeyId([1; 8]);
        s.record_status(
            &k,
            Uuid::now_v7(),
            &org("gjovik"),
            &st("A-1", RemediationState::Delivered),
            now,
        )
        .unwrap();
        s.record_status(
            &k,
            Uuid::now_v7(),
            &org("gjovik"),
            &st("A-1", RemediationState::Affected),
            now + SignedDuration::from_secs(1),
        )
        .unwrap();
        s.record_status(
            &k,
            Uuid::now_v7(),
            &org("gjovik"),
            &st("A-1", RemediationState::Delivered),
            now + SignedDuration::from_secs(2),
        )
        .unwrap();

        let m = Matrix::of(&s, now).unwrap();
        assert_eq!(m.columns.len(), 2);
        let names: Vec<_> = m.rows.iter().map(|r| r.org.as_str()).collect();
        assert_eq!(names, ["gjovik", "hamar"]);
        let gjovik: Vec<Option<&str>> = m.rows[0]
            .cells
            .iter()
            .map(|c| c.as_ref().map(|r| r.standing.as_str()))
            .collect();
        // Newest campaign first (B-2, then A-1); gjovik is not in B-2.
        assert_eq!(gjovik, [None, Some("affected")]);

        let page = OrgPage::of(&s, &org("gjovik"), now).unwrap().unwrap();
        assert_eq!(page.received.len(), 1);
        assert_eq!(page.received[0].latest, RemediationState::Affected);
        assert_eq!(page.received[0].delivered_at, Some(now));
        assert!(page.last_delivered.is_some());
        assert!(OrgPage::of(&s, &org("nowhere"), now).unwrap().is_none());
    }
}
