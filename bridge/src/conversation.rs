//! The room side of the bridge: what members do in the bot's rooms goes
//! to the bus. One task takes the events from the sync (`timeline.rs`) in
//! order and
//! - runs `!varde` commands (directory users only; refusals say why),
//! - turns a ✅ reaction on a bridged alert into one signed `ack`,
//! - shares members' messages of sharing rooms and incident rooms as
//!   `chat` envelopes (`share.rs`).
//!
//! Every event is handled once: the store remembers handled event ids, and
//! events from before the bridge's first start are history, not news.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::FutureExt as _;
use matrix_sdk::Room;
use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;
use varde_bus::directory::{DirectoryHandle, VerifiedDirectory};
use varde_schemas::payload::{Ack, IncidentAction, Person, Sighting};
use varde_schemas::{Audience, OrgId, Payload, Tlp};

use crate::command::{self, Command};
use crate::config::{self, Language};
use crate::matrix::{Bot, SendError, txn_id};
use crate::metrics::Metrics;
use crate::policy::{self, RoomRules, RoomView};
use crate::publish::Publisher;
use crate::share::{self, Decision, Target};
use crate::store::{IncidentState, Store, StoreError};
use crate::timeline::{RoomEvent, What};

/// What the room side shares with the relay and the incident handling.
pub struct RoomSide {
    pub bot: Bot,
    pub store: Arc<Store>,
    pub directory: DirectoryHandle,
    pub publisher: Publisher,
    pub metrics: Arc<Metrics>,
    pub rooms: Vec<(config::Room, OwnedRoomId)>,
    pub commands: config::Commands,
    pub sharing: config::Sharing,
    pub incidents: config::Incidents,
    pub report_room: Option<OwnedRoomId>,
    /// Events before this (ms) are history and not acted upon.
    pub since_ms: i64,
}

/// A reason a command or share is refused, said in the room.
pub struct Refusal(pub String);

/// Why a command has no answer of its own: it was refused (the refusal is
/// said in the room instead), or the homeserver or the store failed and
/// nothing can be said.
pub enum CommandError {
    Refused(Refusal),
    Send(SendError),
}

impl From<Refusal> for CommandError {
    fn from(r: Refusal) -> Self {
        CommandError::Refused(r)
    }
}

impl From<SendError> for CommandError {
    fn from(e: SendError) -> Self {
        CommandError::Send(e)
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::Send(e.into())
    }
}

/// A command being run: the event that gave it, in which room, and the
/// organisation of its sender.
pub struct Request<'a> {
    pub room: &'a Room,
    pub ev: &'a RoomEvent,
    pub lang: Language,
    pub dir: &'a VerifiedDirectory,
    pub org: OrgId,
}

impl RoomSide {
    fn configured(&self, room_id: &str) -> Option<&config::Room> {
        self.rooms
            .iter()
            .find(|(_, id)| id.as_str() == room_id)
            .map(|(c, _)| c)
    }

    fn lang(&self, room_id: &str) -> Language {
        match self.configured(room_id) {
            Some(c) => c.language,
            None => match self.store.incident_in_room(room_id) {
                Ok(Some(_)) => self.incidents.language,
                _ => self.commands.language,
            },
        }
    }

    /// Reads events from the sync until the sender goes away.
    pub async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<RoomEvent>) {
        while let Some(ev) = rx.recv().await {
            if ev.ts_ms < self.since_ms {
                continue;
            }
            match self.store.part(&ev.event_id, &ev.room_id, "handled") {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "store error; event skipped");
                    continue;
                }
            }
            match std::panic::AssertUnwindSafe(self.handle(&ev))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(room = %ev.room_id, event = %ev.event_id, error = %e, "cannot handle a room event");
                }
                Err(_) => {
                    tracing::error!(room = %ev.room_id, event = %ev.event_id, "panic while handling a room event; skipped, the room side goes on");
                    self.metrics.panicked("room_side");
                }
            }
            if let Err(e) = self
                .store
                .record(&ev.event_id, &ev.room_id, "handled", None)
            {
                tracing::error!(error = %e, "cannot record a handled event");
            }
        }
    }

    async fn handle(&self, ev: &RoomEvent) -> Result<(), SendError> {
        let Ok(room_id) = RoomId::parse(&ev.room_id) else {
            return Ok(());
        };
        let Some(room) = self.bot.client.get_room(&room_id) else {
            return Ok(());
        };
        let lang = self.lang(&ev.room_id);
        if let What::Message { body, .. } = &ev.what
            && command::parse(&self.commands.prefix, first_bytes(body, 256)).is_some()
        {
            if body.len() > self.sharing.max_text_bytes {
                tracing::info!(room = %ev.room_id, bytes = body.len(), "command too long; refused");
                return self
                    .answer(
                        &room,
                        ev,
                        &too_long(lang, body.len(), self.sharing.max_text_bytes),
                    )
                    .await;
            }
            let text = match command::parse(&self.commands.prefix, body) {
                Some(Ok(cmd)) => said(lang, self.run_command(&room, ev, lang, cmd).await)?,
                Some(Err(e)) => {
                    tracing::info!(room = %ev.room_id, error = %e, "bad command");
                    bad_command(lang, &e.to_string(), &self.commands.prefix)
                }
                None => return Ok(()),
            };
            return self.answer(&room, ev, &text).await;
        }
        if let What::Reaction { key, target } = &ev.what {
            let key = key.trim_end_matches('\u{fe0f}');
            if key == "✅" || key == "✔" {
                let row = self.store.event(&ev.room_id, target)?;
                if let Some(row) = row.filter(|r| !r.origin && r.kind != "chat") {
                    let text = said(lang, self.ack(&room, ev, row.envelope_id).await)?;
                    return self.answer(&room, ev, &text).await;
                }
            }
            return Ok(());
        }
        // Messages, edits and redactions of sharing and incident rooms.
        let target = match self.configured(&ev.room_id).and_then(|c| c.share.as_ref()) {
            Some(s) => Target::from(s),
            None => match self.store.incident_in_room(&ev.room_id)? {
                Some(i) if i.state == IncidentState::Open => {
                    crate::incident::target(&self.directory.current(), &i)
                }
                _ => return Ok(()),
            },
        };
        self.share_event(&room, ev, lang, &target).await
    }

    async fn share_event(
        &self,
        room: &Room,
        ev: &RoomEvent,
        lang: Language,
        target: &Target,
    ) -> Result<(), SendError> {
        let dir = self.directory.current();
        let Some(org) = dir.org_of_matrix_user(&ev.sender).map(|o| o.id.clone()) else {
            tracing::info!(room = %ev.room_id, "message from a user outside the directory; not shared");
            return Ok(());
        };
        if org != self.publisher.identity.org {
            tracing::info!(room = %ev.room_id, user = %ev.sender, %org, "message from a user of another organisation; not shared (the bridge signs only for its own)");
            self.metrics.refused("other_org_user");
            return Ok(());
        }
        if let What::Message { body, .. } = &ev.what
            && body.len() > self.sharing.max_text_bytes
        {
            tracing::info!(room = %ev.room_id, event = %ev.event_id, bytes = body.len(), "message too long; not shared");
            return self
                .answer(
                    room,
                    ev,
                    &too_long(lang, body.len(), self.sharing.max_text_bytes),
                )
                .await;
        }
        let author = self.person(room, &ev.sender, org).await;
        let mut out = match share::outgoing(&self.store, target, ev, author)? {
            Decision::Share(o) => *o,
            Decision::NotShared(why) => {
                tracing::debug!(room = %ev.room_id, event = %ev.event_id, %why, "not shared");
                return Ok(());
            }
        };
        if let What::Message {
            file: Some(file), ..
        } = &ev.what
        {
            let limit = self.sharing.max_file_bytes;
            if file.size.is_some_and(|s| s > limit) {
                tracing::info!(room = %ev.room_id, event = %ev.event_id, size = file.size, limit, "file above the limit; not shared");
                return self
                    .answer(
                        room,
                        ev,
                        &file_too_large(lang, file.size.unwrap_or_default(), limit),
                    )
                    .await;
            }
            let req = MediaRequestParameters {
                source: file.source.clone(),
                format: MediaFormat::File,
            };
            let data = self
                .bot
                .client
                .media()
                .get_media_content(&req, false)
                .await?;
            if data.len() as u64 > limit {
                return self
                    .answer(room, ev, &file_too_large(lang, data.len() as u64, limit))
                    .await;
            }
            out.chat.attachment = Some(share::attachment(&file.name, &file.mime, &data));
        }
        let payload = Payload::Chat(out.chat.clone());
        match self
            .publisher
            .publish(&payload, out.label, out.audience.clone(), Some(out.id))
            .await
        {
            Ok((header, _)) => {
                if matches!(out.chat.action, varde_schemas::payload::ChatAction::Message) {
                    self.store.record_event_by(
                        &ev.room_id,
                        &ev.event_id,
                        &header,
                        true,
                        Some(&ev.sender),
                    )?;
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(room = %ev.room_id, event = %ev.event_id, error = %e, "cannot share a message");
                self.answer(room, ev, &refused(lang, &e.to_string())).await
            }
        }
    }

    async fn person(&self, room: &Room, user: &str, org: OrgId) -> Person {
        let display_name = match UserId::parse(user) {
            Ok(u) => match room.get_member_no_sync(&u).await {
                Ok(Some(m)) => m.display_name().map(str::to_owned),
                _ => None,
            },
            Err(_) => None,
        };
        Person {
            matrix_user: Some(user.to_string()),
            display_name,
            org: Some(org),
        }
    }

    /// An `m.notice` in reply to the member's event.
    pub async fn answer(&self, room: &Room, ev: &RoomEvent, text: &str) -> Result<(), SendError> {
        let content = json!({
            "msgtype": "m.notice",
            "body": text,
            "m.mentions": {},
            "m.relates_to": { "m.in_reply_to": { "event_id": ev.event_id } },
        });
        self.bot
            .send(room, content, &txn_id(&ev.event_id, &ev.room_id, "answer"))
            .await
            .map(|_| ())
    }

    async fn run_command(
        &self,
        room: &Room,
        ev: &RoomEvent,
        lang: Language,
        cmd: Command,
    ) -> Result<String, CommandError> {
        let dir = self.directory.current();
        let Some(org) = dir.org_of_matrix_user(&ev.sender).map(|o| o.id.clone()) else {
            tracing::info!(room = %ev.room_id, "command from a user outside the directory refused");
            return Err(Refusal(match lang {
                Language::En => format!(
                    "{} is not a user of any organisation in the directory",
                    ev.sender
                ),
                Language::Nb => format!(
                    "{} er ikke bruker i noen organisasjon i katalogen",
                    ev.sender
                ),
            })
            .into());
        };
        tracing::info!(room = %ev.room_id, org = %org, command = command_name(&cmd), "command");
        if signs(&cmd) {
            self.acts_for(lang, &ev.sender, &org)?;
        }
        let req = Request {
            room,
            ev,
            lang,
            dir: &dir,
            org,
        };
        match cmd {
            Command::Help => Ok(command::help(lang, &self.commands.prefix)),
            Command::Status => Ok(self.status(lang, &dir)),
            Command::Share { label, to, text } => self.share_command(&req, label, to, text).await,
            Command::Ack { id } => match Uuid::parse_str(id.trim()) {
                Ok(id) => self.ack(room, ev, id).await,
                Err(_) => Err(Refusal(format!("`{id}` is not a message id")).into()),
            },
            Command::Ioc { value } => self.ioc(&req, &value).await,
            Command::Sighting { value, note } => {
                let (kind, value) = crate::ioc::understand(&value).map_err(Refusal)?;
                let person = self.person(room, &ev.sender, req.org).await;
                let s = Sighting {
                    kind,
                    value,
                    seen_at: jiff::Timestamp::now(),
                    note,
                    reporter: Some(person),
                    aggregate: None,
                };
                let hub = dir.doc.csirt.clone();
                let id = self
                    .store
                    .derived_id(&["sighting", &ev.room_id, &ev.event_id]);
                match self
                    .publisher
                    .publish(
                        &Payload::Sighting(s),
                        Tlp::Amber,
                        Audience::orgs([hub.clone()]),
                        Some(id),
                    )
                    .await
                {
                    Ok((h, _)) => Ok(match lang {
                        Language::En => {
                            format!("Sighting sent to {hub} as {} (id {}).", h.label, h.id)
                        }
                        Language::Nb => format!(
                            "Observasjonen er sendt til {hub} som {} (id {}).",
                            h.label, h.id
                        ),
                    }),
                    Err(e) => Err(Refusal(e.to_string()).into()),
                }
            }
            Command::IncidentOpen { title, label, with } => {
                let person = self.person(room, &ev.sender, req.org.clone()).await;
                crate::incident::open(self, &req, person, title, label, with).await
            }
            Command::IncidentNote { text } => {
                let person = self.person(room, &ev.sender, req.org.clone()).await;
                crate::incident::act(self, &req, person, IncidentAction::Note, Some(text)).await
            }
            Command::IncidentClose { summary } => {
                let person = self.person(room, &ev.sender, req.org.clone()).await;
                crate::incident::act(self, &req, person, IncidentAction::Close, summary).await
            }
        }
    }

    /// The bridge signs what it publishes with its own org's key, so it
    /// acts only for users of that org: anyone else in a room with the bot
    /// would otherwise speak (share, ack, report sightings, open
    /// incidents) in this org's name.
    fn acts_for(&self, lang: Language, user: &str, org: &OrgId) -> Result<(), Refusal> {
        let own = &self.publisher.identity.org;
        if org == own {
            return Ok(());
        }
        tracing::info!(%user, %org, "command from a user of another organisation refused");
        self.metrics.refused("other_org_user");
        Err(Refusal(match lang {
            Language::En => {
                format!("{user} is a user of `{org}`; this bridge acts only for users of `{own}`")
            }
            Language::Nb => format!(
                "{user} er bruker i `{org}`; denne broen handler bare for brukere i `{own}`"
            ),
        }))
    }

    fn status(&self, lang: Language, dir: &VerifiedDirectory) -> String {
        let h = &self.metrics.health;
        let connected = h.bus_connected.load(Ordering::Relaxed);
        let last = h.last_bus_ms.load(Ordering::Relaxed);
        let last = if last == 0 {
            "-".to_string()
        } else {
            jiff::Timestamp::from_millisecond(last)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        };
        let lag = self.metrics.lag().map_or("-".into(), |n| n.to_string());
        match lang {
            Language::En => format!(
                "Bus: {}. Lag: {lag} messages waiting. Last message: {last}. Directory version {}.",
                if connected {
                    "connected"
                } else {
                    "NOT connected"
                },
                dir.version()
            ),
            Language::Nb => format!(
                "Buss: {}. Etterslep: {lag} meldinger venter. Siste melding: {last}. Katalogversjon {}.",
                if connected {
                    "tilkoblet"
                } else {
                    "IKKE tilkoblet"
                },
                dir.version()
            ),
        }
    }

    async fn share_command(
        &self,
        req: &Request<'_>,
        label: Option<Tlp>,
        to: Option<Vec<String>>,
        text: String,
    ) -> Result<String, CommandError> {
        let Request {
            room,
            ev,
            lang,
            dir,
            ref org,
        } = *req;
        let room_share = self.configured(&ev.room_id).and_then(|c| c.share.clone());
        let label = label
            .or(room_share.as_ref().map(|s| s.label))
            .unwrap_or(Tlp::Green);
        let audience = match to {
            Some(names) => match config::audience_of(&names) {
                Ok(a) => a,
                Err(why) => return Err(Refusal(why).into()),
            },
            None => match &room_share {
                Some(s) if varde_bus::audience::check(label, &s.audience).is_ok() => {
                    s.audience.clone()
                }
                _ if label >= Tlp::Amber => Audience::orgs([org.clone()]),
                _ => Audience::community(),
            },
        };
        if label == Tlp::Red {
            return Err(Refusal("TLP:RED cannot be shared from a room".into()).into());
        }
        if let Err(e) = varde_bus::audience::check(label, &audience) {
            return Err(Refusal(e.to_string()).into());
        }
        // A reply never goes out lower than what it answers.
        let mut reply_to = None;
        if let What::Message {
            reply_to: Some(r), ..
        } = &ev.what
            && let Some(row) = self.store.event(&ev.room_id, r)?
        {
            if row.label > label {
                tracing::info!(room = %ev.room_id, replied = %row.label, asked = %label, "share below the replied message's label refused");
                return Err(Refusal(match lang {
                    Language::En => format!(
                        "this is a reply to a {} message; it cannot be shared as {label}",
                        row.label
                    ),
                    Language::Nb => format!(
                        "dette er et svar på en {}-melding; det kan ikke deles som {label}",
                        row.label
                    ),
                })
                .into());
            }
            reply_to = Some(row.envelope_id);
        }
        let view = self.bot.view(room, true).await?;
        if let Err(v) = members_allow(dir, &view, label, &audience) {
            tracing::info!(room = %ev.room_id, label = %label, reason = v.reason(), "share refused: the room's members may not see the label");
            return Err(Refusal(crate::render::violation_text(lang, &v)).into());
        }
        let person = self.person(room, &ev.sender, org.clone()).await;
        let chat = varde_schemas::payload::Chat {
            conversation: room_share
                .map(|s| s.conversation)
                .unwrap_or_else(|| "community".into()),
            action: Default::default(),
            author: person,
            text,
            html: None,
            reply_to,
            target: None,
            attachment: None,
            origin_room: Some(ev.room_id.clone()),
            origin_event: Some(ev.event_id.clone()),
        };
        let id = self.store.derived_id(&["share", &ev.room_id, &ev.event_id]);
        match self
            .publisher
            .publish(&Payload::Chat(chat), label, audience, Some(id))
            .await
        {
            Ok((h, _)) => {
                self.store.record_event_by(
                    &ev.room_id,
                    &ev.event_id,
                    &h,
                    true,
                    Some(&ev.sender),
                )?;
                Ok(match lang {
                    Language::En => {
                        format!("Shared as {} to {} (id {}).", h.label, h.audience, h.id)
                    }
                    Language::Nb => {
                        format!("Delt som {} til {} (id {}).", h.label, h.audience, h.id)
                    }
                })
            }
            Err(e) => Err(Refusal(e.to_string()).into()),
        }
    }

    /// One `ack` per member and message, to the message's sender.
    async fn ack(&self, room: &Room, ev: &RoomEvent, of: Uuid) -> Result<String, CommandError> {
        let lang = self.lang(&ev.room_id);
        let dir = self.directory.current();
        let Some(org) = dir.org_of_matrix_user(&ev.sender).map(|o| o.id.clone()) else {
            tracing::info!(room = %ev.room_id, "ack from a user outside the directory refused");
            return Err(Refusal(format!(
                "{} is not a user of any organisation in the directory",
                ev.sender
            ))
            .into());
        };
        self.acts_for(lang, &ev.sender, &org)?;
        // Only what was posted in this very room: an ack of an id bridged
        // elsewhere would tell the member who sent what to whom.
        let Some(row) = self
            .store
            .event_of(of, &ev.room_id)?
            .filter(|r| !r.origin && r.kind != "chat")
        else {
            return Err(Refusal(match lang {
                Language::En => format!("no message with id {of} was bridged here"),
                Language::Nb => format!("ingen melding med id {of} er videresendt hit"),
            })
            .into());
        };
        let ack_id = self.store.derived_id(&["ack", &of.to_string(), &ev.sender]);
        if !self.store.claim_ack(of, &ev.sender, ack_id)? {
            return Ok(match lang {
                Language::En => format!("{} has already acknowledged {of}.", ev.sender),
                Language::Nb => format!("{} har allerede kvittert for {of}.", ev.sender),
            });
        }
        let person = self.person(room, &ev.sender, org).await;
        let ack = Ack {
            of,
            by: Some(person),
            note: None,
        };
        let to = OrgId::new(row.sender_org.as_str()).map_err(|e| Refusal(e.to_string()))?;
        match self
            .publisher
            .publish(
                &Payload::Ack(ack),
                Tlp::Amber,
                Audience::orgs([to.clone()]),
                Some(ack_id),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(room = %ev.room_id, of = %of, to = %to, "ack sent");
                Ok(match lang {
                    Language::En => format!("Acknowledged {of} to {to}."),
                    Language::Nb => format!("Kvittert for {of} til {to}."),
                })
            }
            Err(e) => {
                let _ = self.store.release_ack(of, &ev.sender);
                Err(Refusal(e.to_string()).into())
            }
        }
    }

    async fn ioc(&self, req: &Request<'_>, value: &str) -> Result<String, CommandError> {
        let Request {
            room,
            ev,
            lang,
            dir,
            ..
        } = *req;
        let (kind, value) = crate::ioc::understand(value).map_err(Refusal)?;
        let view = self.bot.view(room, true).await?;
        let rules = RoomRules {
            ceiling: self
                .configured(&ev.room_id)
                .map_or(Tlp::Green, |c| c.ceiling),
            red: false,
        };
        let mut lines = Vec::new();
        let mut hidden = 0usize;
        for e in self.store.seen(kind, &value, 20)? {
            let Ok(m) = crate::relay::open_stored(&self.publisher.identity, dir, &e) else {
                continue;
            };
            if policy::check(dir, rules, &view, m.header.label, &m.header.audience).is_err() {
                hidden += 1;
                continue;
            }
            let name = dir
                .org(m.header.sender.org.as_str())
                .map(|o| o.name.clone())
                .unwrap_or_else(|| m.header.sender.org.to_string());
            lines.push(crate::ioc::line(&m.header, &m.payload, &name));
        }
        let head = match (lang, lines.is_empty()) {
            (Language::En, true) => {
                format!("Nothing seen about {kind} {value} that this room may see.")
            }
            (Language::Nb, true) => {
                format!("Ingenting sett om {kind} {value} som dette rommet kan se.")
            }
            (Language::En, false) => format!("Seen about {kind} {value}:"),
            (Language::Nb, false) => format!("Sett om {kind} {value}:"),
        };
        let mut text = head;
        for l in lines {
            text.push_str("\n- ");
            text.push_str(&l);
        }
        if hidden > 0 {
            text.push_str(&match lang {
                Language::En => format!("\n({hidden} more above what this room may see.)"),
                Language::Nb => format!("\n({hidden} til over det dette rommet kan se.)"),
            });
        }
        Ok(text)
    }
}

/// What to say in the room about a command: its answer, or why it was
/// refused. A send failure stays an error: nothing can be said then.
fn said(lang: Language, outcome: Result<String, CommandError>) -> Result<String, SendError> {
    match outcome {
        Ok(text) => Ok(text),
        Err(CommandError::Refused(Refusal(why))) => Ok(refused(lang, &why)),
        Err(CommandError::Send(e)) => Err(e),
    }
}

/// The room's rules for a check that is about its members, not its
/// configured ceiling.
fn members_allow(
    dir: &VerifiedDirectory,
    view: &RoomView,
    label: Tlp,
    audience: &Audience,
) -> Result<(), policy::Violation> {
    let rules = RoomRules {
        ceiling: Tlp::Red,
        red: false,
    };
    policy::check(dir, rules, view, label, audience)
}

/// Whether running `c` makes the bridge sign and publish.
fn signs(c: &Command) -> bool {
    !matches!(c, Command::Help | Command::Status | Command::Ioc { .. })
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Help => "help",
        Command::Status => "status",
        Command::Share { .. } => "share",
        Command::Ack { .. } => "ack",
        Command::Ioc { .. } => "ioc",
        Command::Sighting { .. } => "sighting",
        Command::IncidentOpen { .. } => "incident open",
        Command::IncidentNote { .. } => "incident note",
        Command::IncidentClose { .. } => "incident close",
    }
}

/// The start of `s`, cut at a character boundary (to recognise a command
/// without copying a huge message).
fn first_bytes(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub fn refused(lang: Language, why: &str) -> String {
    match lang {
        Language::En => format!("Refused: {why}."),
        Language::Nb => format!("Avvist: {why}."),
    }
}

fn bad_command(lang: Language, why: &str, prefix: &str) -> String {
    match lang {
        Language::En => format!("Cannot run that: {why}. Try `{prefix} help`."),
        Language::Nb => format!("Kan ikke kjøre det: {why}. Prøv `{prefix} help`."),
    }
}

fn too_long(lang: Language, len: usize, limit: usize) -> String {
    match lang {
        Language::En => {
            format!("Not shared or run: the message is {len} bytes; the limit is {limit}.")
        }
        Language::Nb => {
            format!("Ikke delt eller kjørt: meldingen er {len} byte; grensen er {limit}.")
        }
    }
}

fn file_too_large(lang: Language, size: u64, limit: u64) -> String {
    match lang {
        Language::En => format!("File not shared: it is {size} bytes; the limit is {limit}."),
        Language::Nb => format!("Filen er ikke delt: den er {size} byte; grensen er {limit}."),
    }
}
