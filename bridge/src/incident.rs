//! Incident coordination across organisations: the incident rooms' bus
//! side (the commands are in `commands/incident.rs`).
//!
//! `!varde incident open "<title>" [tlp:…] [with org,org]` publishes an
//! `incident` envelope to the participating orgs and the CSIRT. Every
//! participating org's bridge (the opener's too, through the bus) creates
//! an end-to-end encrypted room on its own homeserver, invites its
//! configured responders and pins a summary. What members say in an
//! incident room travels as `chat` in conversation `incident:<id>` to the
//! other incident rooms. `incident note` and `incident close` are
//! `incident` envelopes too; closing posts a summary (duration,
//! participants, notes) everywhere, including the CSIRT's report room, and
//! makes the incident rooms read-only.
//!
//! Incident titles are as sensitive as the incident: the store keeps the
//! opening envelope sealed and opens it when a title is needed, and rooms
//! get a neutral name ("Incident 7f3a1c20 (TLP:AMBER)"), since Matrix room
//! names and topics are not end-to-end encrypted.
//!
//! Incident state belongs to verified senders: an incident is opened by
//! one of its participants, notes and chat come only from participants,
//! and only the opener or the CSIRT closes it. Every post into an incident
//! room or the report room passes the same room check as any other post.

use matrix_sdk::Room;
use matrix_sdk::room::power_levels::RoomPowerLevelChanges;
use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::room::pinned_events::RoomPinnedEventsEventContent;
use matrix_sdk::ruma::{OwnedUserId, RoomId};
use varde_bus::directory::VerifiedDirectory;
use varde_schemas::payload::{Chat, Incident, IncidentAction};
use varde_schemas::{Audience, OrgId, Payload, Tlp};

use crate::config::Language;
use crate::matrix::{SendError, txn_id};
use crate::message::Message;
use crate::policy::{self, RoomRules};
use crate::room_side::RoomSide;
use crate::share::{self, Target};
use crate::store::IncidentRow;
use crate::store::Part;

/// The longest incident title, in bytes, in a command and in an envelope
/// from the bus alike.
pub(crate) const MAX_TITLE: usize = 300;

/// The participants and the CSIRT.
pub fn audience(dir: &VerifiedDirectory, participants: &[String]) -> Audience {
    let mut orgs: Vec<OrgId> = participants
        .iter()
        .filter_map(|p| OrgId::new(p.as_str()).ok())
        .collect();
    if !orgs.contains(&dir.doc.csirt) {
        orgs.push(dir.doc.csirt.clone());
    }
    Audience::orgs(orgs)
}

/// Where an incident room's messages go.
pub fn target(dir: &VerifiedDirectory, row: &IncidentRow) -> Target {
    Target {
        label: row.label,
        audience: audience(dir, &row.participants),
        conversation: format!("incident:{}", row.incident_id),
    }
}

/// The org that opened an incident: the sender token of the subject its
/// opening envelope arrived on (checked against the signature then).
pub fn opener(row: &IncidentRow) -> Option<OrgId> {
    varde_bus::subject::parse(&row.envelope.subject)
        .ok()
        .map(|p| p.sender)
}

/// Whether `org` may close the incident: its opener, or the CSIRT.
pub(crate) fn may_close(dir: &VerifiedDirectory, row: &IncidentRow, org: &OrgId) -> bool {
    *org == dir.doc.csirt || opener(row).as_ref() == Some(org)
}

/// Why an incident envelope from the bus is refused.
#[derive(Debug, thiserror::Error)]
enum NotAllowed {
    #[error("`{0}` opens an incident it does not take part in")]
    OpenerNotParticipant(OrgId),
    #[error("incident id already opened by `{opener}`, not by `{sender}`")]
    Squatted { opener: OrgId, sender: OrgId },
    #[error("`{0}` is not a participant of the incident")]
    NotParticipant(OrgId),
    #[error("`{0}` neither opened the incident nor is the CSIRT")]
    MayNotClose(OrgId),
}

/// Whether the verified sender may do what an incident envelope says,
/// given the incident as the store knows it (`None`: not known yet).
fn allowed(
    dir: &VerifiedDirectory,
    msg: &Message,
    i: &Incident,
    row: Option<IncidentRow>,
) -> Result<(), NotAllowed> {
    let sender = &msg.header.sender.org;
    match (i.action, row) {
        (IncidentAction::Open, _) if !i.participants.contains(sender) => {
            Err(NotAllowed::OpenerNotParticipant(sender.clone()))
        }
        (IncidentAction::Open, Some(row)) => match opener(&row) {
            Some(o) if o == *sender => Ok(()),
            Some(o) => Err(NotAllowed::Squatted {
                opener: o,
                sender: sender.clone(),
            }),
            None => Ok(()),
        },
        (IncidentAction::Open, None) => Ok(()),
        // Unknown incidents are ignored further on.
        (_, None) => Ok(()),
        (IncidentAction::Note, Some(row)) if !participates(&row, sender) => {
            Err(NotAllowed::NotParticipant(sender.clone()))
        }
        (IncidentAction::Close, Some(row)) if !may_close(dir, &row, sender) => {
            Err(NotAllowed::MayNotClose(sender.clone()))
        }
        _ => Ok(()),
    }
}

fn participates(row: &IncidentRow, org: &OrgId) -> bool {
    row.participants.iter().any(|p| p == org.as_str())
}

/// A neutral room name: no title (room names are not encrypted).
fn room_name(label: Tlp, incident: uuid::Uuid) -> String {
    let short: String = incident.simple().to_string().chars().take(8).collect();
    format!("Incident {short} ({label})")
}

fn notice(text: &str) -> RoomMessageEventContent {
    RoomMessageEventContent::notice_plain(text).add_mentions(Mentions::new())
}

impl RoomSide {
    /// The incident's opening payload, opened again from the store.
    pub fn open_envelope(&self, row: &IncidentRow) -> Option<Incident> {
        let m = crate::message::open_stored(
            &self.publisher.identity,
            &self.directory.current(),
            &row.envelope,
        )
        .ok()?;
        match m.payload {
            Payload::Incident(i) => Some(i),
            _ => None,
        }
    }

    /// The room check for an incident post: the message's label and
    /// audience against the room's live members and encryption.
    async fn incident_post_allowed(&self, room: &Room, msg: &Message) -> Result<bool, SendError> {
        let dir = self.directory.current();
        let view = self.bot.view(room, true).await?;
        let rules = RoomRules {
            ceiling: Tlp::AmberStrict,
            red: false,
        };
        match policy::check(&dir, rules, &view, msg.header.label, &msg.header.audience) {
            Ok(()) => Ok(true),
            Err(v) => {
                tracing::warn!(room = %room.room_id(), envelope = %msg.header.id, reason = v.reason(), detail = %v, "incident post withheld from the room");
                self.metrics.withheld(room.room_id().as_str(), v.reason());
                Ok(false)
            }
        }
    }

    async fn room_of(&self, row: &IncidentRow) -> Result<Option<Room>, SendError> {
        let Some(id) = &row.room_id else {
            return Ok(None);
        };
        let Ok(id) = RoomId::parse(id) else {
            return Ok(None);
        };
        Ok(Some(self.bot.joined_room(&id).await?))
    }

    async fn report(
        &self,
        key: &str,
        part: Part,
        text: &str,
        msg: &Message,
    ) -> Result<(), SendError> {
        let Some(report) = &self.report_room else {
            return Ok(());
        };
        if self.store.part(key, report.as_str(), part)?.is_some() {
            return Ok(());
        }
        let room = self.bot.joined_room(report).await?;
        if !self.incident_post_allowed(&room, msg).await? {
            self.store.record(key, report.as_str(), part, None)?;
            return Ok(());
        }
        self.bot
            .send_once(&self.store, &room, key, part, notice(text))
            .await?;
        Ok(())
    }

    /// An `incident` envelope or an incident room's `chat` from the bus.
    pub async fn on_bus(&self, msg: &Message) -> Result<(), SendError> {
        match &msg.payload {
            Payload::Incident(i) => self.on_incident(msg, i).await,
            Payload::Chat(c) => self.on_incident_chat(msg, c).await,
            _ => Ok(()),
        }
    }

    async fn on_incident(&self, msg: &Message, i: &Incident) -> Result<(), SendError> {
        let key = msg.header.id.to_string();
        if i.title.trim().is_empty() || i.title.len() > MAX_TITLE || i.participants.is_empty() {
            tracing::warn!(envelope = %msg.header.id, sender = %msg.header.sender.org, "malformed incident envelope (empty or overlong title, or no participants); ignored");
            return Ok(());
        }
        let dir = self.directory.current();
        let known = self.store.incident(i.incident_id)?;
        if let Err(why) = allowed(&dir, msg, i, known) {
            tracing::warn!(envelope = %msg.header.id, sender = %msg.header.sender.org, incident = %i.incident_id, %why, "incident envelope refused");
            self.metrics.refused("incident_state");
            return Ok(());
        }
        let own = &self.publisher.identity.org;
        let participant = i.participants.contains(own);
        let lang = self.incidents.language;
        let names: Vec<String> = i.participants.iter().map(|p| p.to_string()).collect();
        match i.action {
            IncidentAction::Open => {
                if !participant && self.report_room.is_none() {
                    return Ok(());
                }
                self.store.add_incident(
                    i.incident_id,
                    msg.header.label,
                    &names,
                    msg.header.created.as_millisecond(),
                    &msg.envelope,
                )?;
                let Some(row) = self.store.incident(i.incident_id)? else {
                    return Ok(());
                };
                let summary = opening_summary(
                    lang,
                    msg.header.label,
                    i,
                    &crate::author::attribution(&dir, &msg.header.sender.org, &i.by),
                );
                if participant && row.room_id.is_none() {
                    let room = self.create_room(msg.header.label, i).await?;
                    self.store
                        .set_incident_room(i.incident_id, room.room_id().as_str())?;
                    tracing::info!(incident = %i.incident_id, room = %room.room_id(), "incident room created");
                }
                if let Some(row) = self.store.incident(i.incident_id)?
                    && let Some(room) = self.room_of(&row).await?
                {
                    let rid = room.room_id().to_string();
                    if self.store.part(&key, &rid, Part::Pin)?.is_none()
                        && self.incident_post_allowed(&room, msg).await?
                    {
                        let e = self
                            .bot
                            .send(&room, notice(&summary), &txn_id(&key, &rid, Part::Summary))
                            .await?;
                        let pinned = vec![crate::matrix::event_id(&e)?];
                        room.send_state_event(RoomPinnedEventsEventContent::new(pinned))
                            .await?;
                        // Recorded once pinned too (not by `send_once`).
                        self.store.record(&key, &rid, Part::Pin, Some(&e))?;
                    }
                }
                self.report(&key, Part::Opened, &summary, msg).await
            }
            IncidentAction::Note => {
                let Some(row) = self.store.incident(i.incident_id)? else {
                    tracing::warn!(envelope = %msg.header.id, incident = %i.incident_id, "note for an unknown incident; ignored");
                    return Ok(());
                };
                if self.store.part(&key, "-", Part::Note)?.is_none() {
                    self.store.count_note(i.incident_id)?;
                    self.store.record(&key, "-", Part::Note, None)?;
                }
                if let Some(room) = self.room_of(&row).await? {
                    let rid = room.room_id().to_string();
                    if self.store.part(&key, &rid, Part::Post)?.is_none()
                        && self.incident_post_allowed(&room, msg).await?
                    {
                        let who = crate::author::attribution(&dir, &msg.header.sender.org, &i.by);
                        let text = match lang {
                            Language::En => format!(
                                "{} Note from {who}: {}",
                                msg.header.label,
                                i.text.as_deref().unwrap_or("")
                            ),
                            Language::Nb => format!(
                                "{} Notat fra {who}: {}",
                                msg.header.label,
                                i.text.as_deref().unwrap_or("")
                            ),
                        };
                        self.bot
                            .send_once(&self.store, &room, &key, Part::Post, notice(&text))
                            .await?;
                    }
                }
                Ok(())
            }
            IncidentAction::Close => {
                let Some(row) = self.store.incident(i.incident_id)? else {
                    tracing::warn!(envelope = %msg.header.id, incident = %i.incident_id, "close of an unknown incident; ignored");
                    return Ok(());
                };
                let minutes = (msg.header.created.as_millisecond() - row.opened_ms).max(0) / 60_000;
                let summary = closing_summary(
                    lang,
                    msg.header.label,
                    i,
                    minutes,
                    &row.participants,
                    row.notes,
                    &crate::author::attribution(&dir, &msg.header.sender.org, &i.by),
                );
                if let Some(room) = self.room_of(&row).await? {
                    let rid = room.room_id().to_string();
                    if self.store.part(&key, &rid, Part::Summary)?.is_none()
                        && self.incident_post_allowed(&room, msg).await?
                    {
                        self.bot
                            .send_once(&self.store, &room, &key, Part::Summary, notice(&summary))
                            .await?;
                    }
                    // Read-only: only the bot (power 100) may still post.
                    room.apply_power_level_changes(RoomPowerLevelChanges {
                        events_default: Some(100),
                        users_default: Some(0),
                        ..Default::default()
                    })
                    .await?;
                }
                self.store.close_incident(i.incident_id)?;
                tracing::info!(incident = %i.incident_id, "incident closed");
                self.report(&key, Part::Closed, &summary, msg).await
            }
        }
    }

    async fn create_room(&self, label: Tlp, i: &Incident) -> Result<Room, SendError> {
        let mut req = CreateRoom::new();
        req.name = Some(room_name(label, i.incident_id));
        req.preset = Some(RoomPreset::PrivateChat);
        req.invite = self
            .incidents
            .responders
            .iter()
            .filter_map(|r| OwnedUserId::try_from(r.as_str()).ok())
            .collect();
        req.initial_state = vec![
            InitialStateEvent::with_empty_state_key(
                RoomEncryptionEventContent::with_recommended_defaults(),
            )
            .to_raw_any(),
        ];
        Ok(self.bot.client.create_room(req).await?)
    }

    async fn on_incident_chat(&self, msg: &Message, c: &Chat) -> Result<(), SendError> {
        let Some(id) = c
            .conversation
            .strip_prefix("incident:")
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
        else {
            return Ok(());
        };
        let Some(row) = self.store.incident(id)? else {
            tracing::debug!(envelope = %msg.header.id, "chat for an incident this bridge does not take part in");
            return Ok(());
        };
        if !participates(&row, &msg.header.sender.org) {
            tracing::warn!(envelope = %msg.header.id, sender = %msg.header.sender.org, incident = %id, "incident chat from a non-participant refused");
            self.metrics.refused("incident_state");
            return Ok(());
        }
        let Some(room) = self.room_of(&row).await? else {
            return Ok(());
        };
        let rid = room.room_id().to_string();
        if crate::route::is_echo(&msg.header, c, self.publisher.identity.key_id, &rid)
            || self.store.is_done(msg.header.id, &rid)?
        {
            return Ok(());
        }
        let dir = self.directory.current();
        let view = self.bot.view(&room, true).await?;
        let rules = RoomRules {
            ceiling: Tlp::AmberStrict,
            red: false,
        };
        if let Err(v) = policy::check(&dir, rules, &view, msg.header.label, &msg.header.audience) {
            tracing::warn!(room = %rid, envelope = %msg.header.id, reason = v.reason(), detail = %v, "incident message withheld from the incident room");
            self.store.mark_done(msg.header.id, &rid, None)?;
            return Ok(());
        }
        if !share::post(&self.bot, &self.store, &dir, &room, msg, c).await? {
            self.metrics.refused("not_own_words");
        }
        Ok(())
    }
}

fn opening_summary(lang: Language, label: Tlp, i: &Incident, by: &str) -> String {
    let parts: Vec<&str> = i.participants.iter().map(|p| p.as_str()).collect();
    match lang {
        Language::En => format!(
            "{label} Incident: {}\nOpened by {by}. Participants: {}. Incident id {}.\nEverything said here is shared with the other participants' incident rooms.",
            i.title,
            parts.join(", "),
            i.incident_id
        ),
        Language::Nb => format!(
            "{label} Hendelse: {}\nÅpnet av {by}. Deltakere: {}. Hendelses-id {}.\nAlt som sies her deles med de andre deltakernes hendelsesrom.",
            i.title,
            parts.join(", "),
            i.incident_id
        ),
    }
}

fn closing_summary(
    lang: Language,
    label: Tlp,
    i: &Incident,
    minutes: i64,
    participants: &[String],
    notes: i64,
    by: &str,
) -> String {
    let summary = i.text.as_deref().unwrap_or("-");
    match lang {
        Language::En => format!(
            "{label} Incident closed: {}\nClosed by {by}. Duration: {minutes} min. Participants: {}. Notes: {notes}.\nSummary: {summary}",
            i.title,
            participants.join(", ")
        ),
        Language::Nb => format!(
            "{label} Hendelse lukket: {}\nLukket av {by}. Varighet: {minutes} min. Deltakere: {}. Notater: {notes}.\nOppsummering: {summary}",
            i.title,
            participants.join(", ")
        ),
    }
}
