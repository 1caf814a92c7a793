//! The campaign store: campaigns, their targets and what was sent to each,
//! and every status received (keyed by the sender's key and envelope id,
//! so a redelivered status is recorded once).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;
use varde_schemas::payload::{RemediationState, Status};
use varde_schemas::{KeyId, OrgId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("campaign store {path}: cannot create its folder: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("campaign store {path}: {source}")]
    Sql {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("campaign store {path} holds a bad value in {what}: {value}")]
    Corrupt {
        path: String,
        what: &'static str,
        value: String,
    },
}

/// One campaign as the CSIRT opened it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CampaignRecord {
    pub id: Uuid,
    pub about: String,
    pub title: String,
    pub opened_at: Timestamp,
    pub deadline: Option<Timestamp>,
    #[serde(with = "secs")]
    pub remind_every: Duration,
    pub closed_at: Option<Timestamp>,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

/// One target org of a campaign and what the desk has sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub org: OrgId,
    pub opened_sent: bool,
    pub closed_sent: bool,
    pub reminders: u32,
    /// When it was last asked (the opening, then each reminder).
    pub last_asked_at: Timestamp,
}

/// A status as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRecord {
    pub org: OrgId,
    pub state: RemediationState,
    pub note: Option<String>,
    pub by: Option<String>,
    pub at: Timestamp,
}

pub struct Store {
    conn: Connection,
    path: String,
    /// Secret namespace of the ids of what the desk sends.
    ns: Uuid,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    about TEXT NOT NULL,
    title TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    deadline TEXT,
    remind_every_s INTEGER NOT NULL,
    closed_at TEXT
);
CREATE TABLE IF NOT EXISTS targets (
    campaign TEXT NOT NULL REFERENCES campaigns(id),
    org TEXT NOT NULL,
    opened_sent INTEGER NOT NULL DEFAULT 0,
    closed_sent INTEGER NOT NULL DEFAULT 0,
    reminders INTEGER NOT NULL DEFAULT 0,
    last_asked_at TEXT NOT NULL,
    PRIMARY KEY (campaign, org)
);
CREATE TABLE IF NOT EXISTS statuses (
    sender_key TEXT NOT NULL,
    envelope TEXT NOT NULL,
    org TEXT NOT NULL,
    about TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT,
    by_name TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (sender_key, envelope)
);
CREATE INDEX IF NOT EXISTS statuses_by_about ON statuses (about, org, at);
CREATE INDEX IF NOT EXISTS statuses_by_org ON statuses (org, at);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT
);
CREATE TABLE IF NOT EXISTS incident_orgs (
    incident TEXT NOT NULL REFERENCES incidents(id),
    org TEXT NOT NULL,
    PRIMARY KEY (incident, org)
);
";

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let sql = |source| StoreError::Sql {
            path: shown.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: shown.clone(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        let ns: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'ns'", [], |r| r.get(0))
            .optional()
            .map_err(sql)?;
        let ns = match ns {
            Some(s) => Uuid::from_str(&s).map_err(|_| StoreError::Corrupt {
                path: shown.clone(),
                what: "meta.ns",
                value: s,
            })?,
            None => {
                let ns = Uuid::new_v4();
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('ns', ?1)",
                    params![ns.to_string()],
                )
                .map_err(sql)?;
                ns
            }
        };
        Ok(Store {
            conn,
            path: shown,
            ns,
        })
    }

    /// Opens a store the hub made, for reading only (`varde board`): the
    /// process that shows the picture cannot change it.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let sql = |source| StoreError::Sql {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
        Ok(Store {
            conn,
            path: shown,
            // Ids are only made by the writer.
            ns: Uuid::nil(),
        })
    }

    /// Changes when another connection commits: the board's cue to push
    /// an update (SQLite's `data_version`).
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(self.sql())
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Every row of `q` with `p`, each read by `row`.
    fn rows<T>(
        &self,
        q: &str,
        p: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = self.conn.prepare_cached(q).map_err(self.sql())?;
        st.query_map(p, row)
            .map_err(self.sql())?
            .collect::<Result<Vec<T>, _>>()
            .map_err(self.sql())
    }

    fn corrupt(&self, what: &'static str, value: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
            value,
        }
    }

    /// The id of the envelope for `step` ("opened", "reminder/2", "closed")
    /// of `campaign` to `org`: the same on every attempt, unknown to anyone
    /// without the store.
    pub fn message_id(&self, campaign: Uuid, org: &OrgId, step: &str) -> Uuid {
        Uuid::new_v5(&self.ns, format!("{campaign}/{org}/{step}").as_bytes())
    }

    pub fn insert_campaign(
        &mut self,
        c: &CampaignRecord,
        targets: &[OrgId],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = move |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&sql)?;
        tx.execute(
            "INSERT INTO campaigns (id, about, title, opened_at, deadline, remind_every_s)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                c.id.to_string(),
                c.about,
                c.title,
                c.opened_at.to_string(),
                c.deadline.map(|d| d.to_string()),
                c.remind_every.as_secs() as i64,
            ],
        )
        .map_err(&sql)?;
        for org in targets {
            tx.execute(
                "INSERT OR IGNORE INTO targets (campaign, org, last_asked_at) VALUES (?1, ?2, ?3)",
                params![c.id.to_string(), org.as_str(), c.opened_at.to_string()],
            )
            .map_err(&sql)?;
        }
        tx.commit().map_err(&sql)
    }

    fn ts(&self, what: &'static str, s: String) -> Result<Timestamp, StoreError> {
        s.parse().map_err(|_| self.corrupt(what, s))
    }

    fn campaign_from(&self, row: CampaignRow) -> Result<CampaignRecord, StoreError> {
        let (id, about, title, opened_at, deadline, every, closed_at) = row;
        Ok(CampaignRecord {
            id: Uuid::from_str(&id).map_err(|_| self.corrupt("campaigns.id", id.clone()))?,
            about,
            title,
            opened_at: self.ts("campaigns.opened_at", opened_at)?,
            deadline: deadline
                .map(|d| self.ts("campaigns.deadline", d))
                .transpose()?,
            remind_every: Duration::from_secs(every.max(0) as u64),
            closed_at: closed_at
                .map(|d| self.ts("campaigns.closed_at", d))
                .transpose()?,
        })
    }

    /// Campaigns, newest first; closed ones only with `all`.
    pub fn campaigns(&self, all: bool) -> Result<Vec<CampaignRecord>, StoreError> {
        let q = if all {
            "SELECT id, about, title, opened_at, deadline, remind_every_s, closed_at FROM campaigns ORDER BY opened_at DESC, id"
        } else {
            "SELECT id, about, title, opened_at, deadline, remind_every_s, closed_at FROM campaigns WHERE closed_at IS NULL ORDER BY opened_at DESC, id"
        };
        let rows: Vec<CampaignRow> = self.rows(q, [], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        rows.into_iter().map(|r| self.campaign_from(r)).collect()
    }

    /// The campaign with this id, or the newest one about this advisory, or
    /// the one whose id starts with `key` (at least 4 characters).
    pub fn find(&self, key: &str) -> Result<Option<CampaignRecord>, StoreError> {
        let all = self.campaigns(true)?;
        let key = key.trim();
        if let Some(c) = all
            .iter()
            .find(|c| c.id.to_string() == key || c.about == key)
        {
            return Ok(Some(c.clone()));
        }
        if key.len() >= 4 {
            let mut by_prefix = all.iter().filter(|c| c.id.to_string().starts_with(key));
            if let (Some(c), None) = (by_prefix.next(), by_prefix.next()) {
                return Ok(Some(c.clone()));
            }
        }
        Ok(None)
    }

    pub fn targets(&self, campaign: Uuid) -> Result<Vec<Target>, StoreError> {
        let rows: Vec<(String, bool, bool, u32, String)> = self.rows(
            "SELECT org, opened_sent, closed_sent, reminders, last_asked_at FROM targets
             WHERE campaign = ?1 ORDER BY org",
            params![campaign.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        rows.into_iter()
            .map(|(org, opened_sent, closed_sent, reminders, at)| {
                Ok(Target {
                    org: OrgId::new(&org).map_err(|_| self.corrupt("targets.org", org.clone()))?,
                    opened_sent,
                    closed_sent,
                    reminders,
                    last_asked_at: self.ts("targets.last_asked_at", at)?,
                })
            })
            .collect()
    }

    /// Records that the opening (`closing = false`) or the closing of
    /// `campaign` is stored on the bus for `org`.
    pub fn mark_sent(&self, campaign: Uuid, org: &OrgId, closing: bool) -> Result<(), StoreError> {
        let q = if closing {
            "UPDATE targets SET closed_sent = 1 WHERE campaign = ?1 AND org = ?2"
        } else {
            "UPDATE targets SET opened_sent = 1 WHERE campaign = ?1 AND org = ?2"
        };
        self.conn
            .execute(q, params![campaign.to_string(), org.as_str()])
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Records reminder `n` as sent; false when it already was (another
    /// run got there first).
    pub fn record_reminder(
        &self,
        campaign: Uuid,
        org: &OrgId,
        n: u32,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE targets SET reminders = ?3, last_asked_at = ?4
                 WHERE campaign = ?1 AND org = ?2 AND reminders = ?3 - 1",
                params![campaign.to_string(), org.as_str(), n, at.to_string()],
            )
            .map(|changed| changed == 1)
            .map_err(self.sql())
    }

    pub fn close(&self, campaign: Uuid, at: Timestamp) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE campaigns SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL",
                params![campaign.to_string(), at.to_string()],
            )
            .map(|changed| changed == 1)
            .map_err(self.sql())
    }

    /// Records a status from `org` (the verified sender); false when this
    /// envelope was recorded before (a redelivery).
    pub fn record_status(
        &self,
        sender_key: &KeyId,
        envelope: Uuid,
        org: &OrgId,
        s: &Status,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let by =
            s.by.as_ref()
                .and_then(|p| p.display_name.clone().or(p.matrix_user.clone()));
        self.conn
            .execute(
                "INSERT OR IGNORE INTO statuses (sender_key, envelope, org, about, state, note, by_name, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    sender_key.to_hex(),
                    envelope.to_string(),
                    org.as_str(),
                    s.about,
                    s.state.as_str(),
                    s.note,
                    by,
                    at.to_string(),
                ],
            )
            .map(|changed| changed == 1)
            .map_err(self.sql())
    }

    /// Every status `org` sent about `about`, oldest first.
    pub fn statuses(&self, org: &OrgId, about: &str) -> Result<Vec<StatusRecord>, StoreError> {
        self.query_statuses(
            "SELECT org, about, state, note, by_name, at FROM statuses WHERE about = ?1 AND org = ?2
             ORDER BY at, envelope",
            params![about, org.as_str()],
        )
        .map(|v| v.into_iter().map(|(_, s)| s).collect())
    }

    /// Every status about `about`, by org then oldest first (one query for
    /// a whole campaign's picture).
    pub fn statuses_about(&self, about: &str) -> Result<Vec<StatusRecord>, StoreError> {
        self.query_statuses(
            "SELECT org, about, state, note, by_name, at FROM statuses WHERE about = ?1
             ORDER BY org, at, envelope",
            params![about],
        )
        .map(|v| v.into_iter().map(|(_, s)| s).collect())
    }

    /// Every status `org` sent since `since`, with what each was about,
    /// oldest first.
    pub fn statuses_of(
        &self,
        org: &OrgId,
        since: Timestamp,
    ) -> Result<Vec<(String, StatusRecord)>, StoreError> {
        self.query_statuses(
            "SELECT org, about, state, note, by_name, at FROM statuses WHERE org = ?1 AND at >= ?2
             ORDER BY at, envelope",
            params![org.as_str(), since.to_string()],
        )
    }

    /// When `org`'s bridge (or tail) last confirmed a delivery.
    pub fn last_delivered(&self, org: &OrgId) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<String> = self
            .conn
            .query_row(
                "SELECT MAX(at) FROM statuses WHERE org = ?1 AND state = 'delivered'",
                params![org.as_str()],
                |r| r.get(0),
            )
            .map_err(self.sql())?;
        at.map(|a| self.ts("statuses.at", a)).transpose()
    }

    fn query_statuses(
        &self,
        q: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<(String, StatusRecord)>, StoreError> {
        type Raw = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
        );
        let rows: Vec<Raw> = self.rows(q, p, |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.into_iter()
            .map(|(org, about, state, note, by, at)| {
                Ok((
                    about,
                    StatusRecord {
                        org: OrgId::new(&org)
                            .map_err(|_| self.corrupt("statuses.org", org.clone()))?,
                        state: RemediationState::from_str(&state)
                            .map_err(|_| self.corrupt("statuses.state", state.clone()))?,
                        note,
                        by,
                        at: self.ts("statuses.at", at)?,
                    },
                ))
            })
            .collect()
    }

    /// Records an incident the CSIRT takes part in, as opened by `by` (the
    /// verified sender); false when it is known already (the first opening
    /// stands).
    pub fn record_incident_open(
        &mut self,
        id: Uuid,
        title: &str,
        by: &OrgId,
        participants: &[OrgId],
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let sql = move |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&sql)?;
        let new = tx
            .execute(
                "INSERT OR IGNORE INTO incidents (id, title, opened_by, opened_at) VALUES (?1, ?2, ?3, ?4)",
                params![id.to_string(), title, by.as_str(), at.to_string()],
            )
            .map_err(&sql)?
            == 1;
        if new {
            for o in participants {
                tx.execute(
                    "INSERT OR IGNORE INTO incident_orgs (incident, org) VALUES (?1, ?2)",
                    params![id.to_string(), o.as_str()],
                )
                .map_err(&sql)?;
            }
        }
        tx.commit().map_err(&sql)?;
        Ok(new)
    }

    /// Closes an incident if `by` takes part in it; false otherwise or when
    /// it was closed already.
    pub fn record_incident_close(
        &self,
        id: Uuid,
        by: &OrgId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE incidents SET closed_at = ?3 WHERE id = ?1 AND closed_at IS NULL
                 AND EXISTS (SELECT 1 FROM incident_orgs WHERE incident = ?1 AND org = ?2)",
                params![id.to_string(), by.as_str(), at.to_string()],
            )
            .map(|changed| changed == 1)
            .map_err(self.sql())
    }

    /// Open incidents `org` takes part in, newest first.
    pub fn open_incidents(&self, org: &OrgId) -> Result<Vec<IncidentRecord>, StoreError> {
        let rows: Vec<(String, String, String, String)> = self.rows(
            "SELECT i.id, i.title, i.opened_by, i.opened_at FROM incidents i
             JOIN incident_orgs p ON p.incident = i.id
             WHERE p.org = ?1 AND i.closed_at IS NULL ORDER BY i.opened_at DESC",
            params![org.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        rows.into_iter()
            .map(|(id, title, by, at)| {
                Ok(IncidentRecord {
                    id: Uuid::from_str(&id)
                        .map_err(|_| self.corrupt("incidents.id", id.clone()))?,
                    title,
                    opened_by: OrgId::new(&by)
                        .map_err(|_| self.corrupt("incidents.opened_by", by.clone()))?,
                    opened_at: self.ts("incidents.opened_at", at)?,
                })
            })
            .collect()
    }
}

/// An open incident as the CSIRT saw it opened.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IncidentRecord {
    pub id: Uuid,
    pub title: String,
    pub opened_by: OrgId,
    pub opened_at: Timestamp,
}

type CampaignRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    #[test]
    fn ids_survive_reopen_and_steps_are_recorded_once() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.sqlite");
        let mut s = Store::open(&path).unwrap();
        let c = CampaignRecord {
            id: Uuid::now_v7(),
            about: "KCSIRT-2026-0042".into(),
            title: "patch".into(),
            opened_at: Timestamp::now(),
            deadline: None,
            remind_every: Duration::from_secs(60),
            closed_at: None,
        };
        s.insert_campaign(&c, &[org("gjovik"), org("lillehammer")])
            .unwrap();
        let id = s.message_id(c.id, &org("gjovik"), "reminder/1");
        assert!(
            s.record_reminder(c.id, &org("gjovik"), 1, Timestamp::now())
                .unwrap()
        );
        assert!(
            !s.record_reminder(c.id, &org("gjovik"), 1, Timestamp::now())
                .unwrap()
        );
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.message_id(c.id, &org("gjovik"), "reminder/1"), id);
        assert_eq!(s.targets(c.id).unwrap()[0].reminders, 1);
        assert_eq!(s.find("KCSIRT-2026-0042").unwrap().unwrap().id, c.id);
        assert_eq!(s.find(&c.id.to_string()[..8]).unwrap().unwrap().id, c.id);

        let st = Status {
            about: c.about.clone(),
            state: RemediationState::Remediated,
            note: None,
            by: None,
        };
        let key = KeyId([7; 8]);
        let env = Uuid::now_v7();
        assert!(
            s.record_status(&key, env, &org("gjovik"), &st, Timestamp::now())
                .unwrap()
        );
        assert!(
            !s.record_status(&key, env, &org("gjovik"), &st, Timestamp::now())
                .unwrap()
        );
        assert_eq!(s.statuses(&org("gjovik"), &c.about).unwrap().len(), 1);
    }
}
