//! The CSIRT's campaign desk: opens and closes campaigns (a `campaign`
//! envelope to each target org alone), records the statuses its inbox
//! delivers, and reminds the orgs that have not answered.
//!
//! Exactly once, across crashes: each step is recorded in the store only
//! after its envelope is stored on the bus, and the envelope's id is derived
//! from the store's secret and the step, so a step redone after a crash is
//! the same envelope (the broker's dedup window and every reader's
//! persistent replay memory keep one). A status is acked only after the
//! store holds it, and is keyed by sender key and envelope id.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;
use varde_bus::directory::DirectoryHandle;
use varde_bus::inbox::Delivery;
use varde_bus::keys::Identity;
use varde_bus::seal::{self, Draft};
use varde_bus::transport;
use varde_schemas::payload::{
    Campaign, CampaignAction, Incident, IncidentAction, MAX_ABOUT, MAX_NOTE, Status,
};
use varde_schemas::{Audience, Kind, OrgId, Payload, Tlp};

use crate::picture::Picture;
use crate::store::{CampaignRecord, Store, StoreError};

/// At most this many reminders per org and campaign.
pub const MAX_REMINDERS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    #[error(transparent)]
    Inbox(#[from] varde_bus::inbox::InboxError),
    #[error("no campaign `{0}` (give its id, an id prefix or the advisory id)")]
    NotFound(String),
    #[error("a campaign needs at least one target org")]
    NoTargets,
    #[error("`{0}` is not an org in the directory")]
    UnknownOrg(OrgId),
    #[error("`about` must be 1 to {MAX_ABOUT} bytes and the title at most {MAX_NOTE}")]
    Bounds,
    #[error("the reminder interval must be at least one second")]
    Interval,
}

/// What the CSIRT asks for.
#[derive(Clone, Debug)]
pub struct OpenSpec {
    pub about: String,
    pub title: String,
    pub targets: Vec<OrgId>,
    pub deadline: Option<Timestamp>,
    pub remind_every: Duration,
}

/// What handling one delivery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    Recorded,
    /// Recorded before (a redelivery after a crash).
    Again,
    /// Not a status, or one the desk does not keep.
    Ignored(&'static str),
}

pub struct Desk {
    pub store: Store,
    identity: Arc<Identity>,
    directory: DirectoryHandle,
    js: async_nats::jetstream::Context,
}

impl Desk {
    pub fn new(
        store: Store,
        identity: Arc<Identity>,
        directory: DirectoryHandle,
        js: async_nats::jetstream::Context,
    ) -> Desk {
        Desk {
            store,
            identity,
            directory,
            js,
        }
    }

    /// Records the campaign, then sends each target its opening.
    pub async fn open(
        &mut self,
        spec: OpenSpec,
        now: Timestamp,
    ) -> Result<CampaignRecord, DeskError> {
        if spec.about.is_empty() || spec.about.len() > MAX_ABOUT || spec.title.len() > MAX_NOTE {
            return Err(DeskError::Bounds);
        }
        if spec.remind_every < Duration::from_secs(1) {
            return Err(DeskError::Interval);
        }
        let mut targets = spec.targets.clone();
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return Err(DeskError::NoTargets);
        }
        let dir = self.directory.current();
        if let Some(unknown) = targets.iter().find(|o| dir.org(o.as_str()).is_none()) {
            return Err(DeskError::UnknownOrg(unknown.clone()));
        }
        let c = CampaignRecord {
            id: Uuid::now_v7(),
            about: spec.about,
            title: spec.title,
            opened_at: now,
            deadline: spec.deadline,
            remind_every: spec.remind_every,
            closed_at: None,
        };
        self.store.insert_campaign(&c, &targets)?;
        self.send_pending(now).await?;
        Ok(c)
    }

    /// Closes a campaign and tells its targets.
    pub async fn close(&mut self, key: &str, now: Timestamp) -> Result<CampaignRecord, DeskError> {
        let c = self
            .store
            .find(key)?
            .ok_or_else(|| DeskError::NotFound(key.chars().take(80).collect()))?;
        self.store.close(c.id, now)?;
        self.send_pending(now).await?;
        Ok(self.store.find(&c.id.to_string())?.unwrap_or(c))
    }

    /// Seals `action` of `c` to `org` alone with the step's fixed id and
    /// stores it on the bus (a duplicate PubAck is our own earlier copy).
    /// `&mut self`: the store's connection is `Send` but not `Sync`, and a
    /// shared borrow across the await would keep a desk's futures off
    /// other threads (the hub's sources open campaigns from their tasks).
    async fn send(
        &mut self,
        c: &CampaignRecord,
        org: &OrgId,
        step: &str,
        action: CampaignAction,
    ) -> Result<Uuid, DeskError> {
        let id = self.store.message_id(c.id, org, step);
        let your_status = match action {
            CampaignAction::Reminder { .. } => {
                let statuses = self.store.statuses(org, &c.about)?;
                statuses.last().map(|s| s.state)
            }
            _ => None,
        };
        let payload = Payload::Campaign(Campaign {
            campaign: c.id,
            about: c.about.clone(),
            title: c.title.clone(),
            action,
            deadline: c.deadline,
            your_status,
        });
        let dir = self.directory.current();
        let draft = Draft::new(&payload, Tlp::AmberStrict, Audience::orgs([org.clone()])).id(id);
        let sealed = seal::seal(&self.identity, &dir, draft)?;
        transport::republish(&self.js, &sealed).await?;
        Ok(id)
    }

    /// Sends what the store says is due and not yet sent: openings of open
    /// campaigns and closings of closed ones. Returns how many it sent.
    pub async fn send_pending(&mut self, _now: Timestamp) -> Result<usize, DeskError> {
        let mut sent = 0;
        for c in self.store.campaigns(true)? {
            for t in self.store.targets(c.id)? {
                if c.closed_at.is_none() && !t.opened_sent {
                    self.send(&c, &t.org, "opened", CampaignAction::Opened)
                        .await?;
                    self.store.mark_sent(c.id, &t.org, false)?;
                    sent += 1;
                } else if c.closed_at.is_some() && t.opened_sent && !t.closed_sent {
                    self.send(&c, &t.org, "closed", CampaignAction::Closed)
                        .await?;
                    self.store.mark_sent(c.id, &t.org, true)?;
                    sent += 1;
                }
            }
        }
        Ok(sent)
    }

    /// Sends every reminder due at `now`: to each target of an open
    /// campaign that has not answered, was last asked at least the interval
    /// ago, is before the deadline and has had fewer than `MAX_REMINDERS`.
    /// Returns (campaign, org, n) of each one sent.
    pub async fn remind_due(
        &mut self,
        now: Timestamp,
    ) -> Result<Vec<(Uuid, OrgId, u32)>, DeskError> {
        let mut out = Vec::new();
        for c in self.store.campaigns(false)? {
            if c.deadline.is_some_and(|d| d <= now) {
                continue;
            }
            let every = SignedDuration::try_from(c.remind_every).unwrap_or(SignedDuration::MAX);
            let picture = Picture::of(&self.store, &c, now)?;
            for t in self.store.targets(c.id)? {
                let answered = picture
                    .rows
                    .iter()
                    .any(|r| r.org == t.org && r.standing.is_answer());
                let due = t.last_asked_at.checked_add(every).is_ok_and(|at| at <= now);
                if !t.opened_sent || answered || !due || t.reminders >= MAX_REMINDERS {
                    continue;
                }
                let n = t.reminders + 1;
                self.send(
                    &c,
                    &t.org,
                    &format!("reminder/{n}"),
                    CampaignAction::Reminder { n },
                )
                .await?;
                if self.store.record_reminder(c.id, &t.org, n, now)? {
                    tracing::info!(campaign = %c.id, org = %t.org, n, "reminder sent");
                    out.push((c.id, t.org.clone(), n));
                }
            }
        }
        Ok(out)
    }

    /// Records one delivery of the CSIRT's inbox if it is a status or an
    /// incident the CSIRT takes part in; the caller acks it after this
    /// returns.
    pub fn handle(&mut self, d: &Delivery) -> Result<Handled, DeskError> {
        let h = &d.opened.header;
        match (&d.opened.payload, h.kind) {
            (Payload::Status(s), Kind::Status) => {
                self.record(&h.sender.key, h.id, &h.sender.org, s, h.created)
            }
            (Payload::Incident(i), Kind::Incident) => {
                self.record_incident(&h.sender.org, i, h.created)
            }
            _ => Ok(Handled::Ignored("not a status or incident")),
        }
    }

    /// An incident counts for the board only as its verified sender says:
    /// an opening only from one of its participants, a closing only from a
    /// participant of the incident as first opened (the bridge's rule), so
    /// no member can open or close one in other orgs' names alone.
    pub fn record_incident(
        &mut self,
        sender: &OrgId,
        i: &Incident,
        created: Timestamp,
    ) -> Result<Handled, DeskError> {
        let recorded = match i.action {
            IncidentAction::Open if !i.participants.contains(sender) => {
                return Ok(Handled::Ignored("an incident opened by a non-participant"));
            }
            IncidentAction::Open => self.store.record_incident_open(
                i.incident_id,
                &i.title,
                sender,
                &i.participants,
                created,
            )?,
            IncidentAction::Close => {
                self.store
                    .record_incident_close(i.incident_id, sender, created)?
            }
            IncidentAction::Note => return Ok(Handled::Ignored("an incident note")),
        };
        Ok(if recorded {
            Handled::Recorded
        } else {
            Handled::Again
        })
    }

    /// The org a status counts for is the envelope's verified sender.
    pub fn record(
        &mut self,
        key: &varde_schemas::KeyId,
        envelope: Uuid,
        sender: &OrgId,
        s: &Status,
        created: Timestamp,
    ) -> Result<Handled, DeskError> {
        if *sender == self.identity.org {
            return Ok(Handled::Ignored("the CSIRT's own message"));
        }
        if self
            .store
            .record_status(key, envelope, sender, s, created)?
        {
            tracing::info!(org = %sender, about = %s.about, state = %s.state, "status recorded");
            Ok(Handled::Recorded)
        } else {
            Ok(Handled::Again)
        }
    }
}
