//! `!varde` commands, run: one file per command (`share`, `ack`, `ioc`,
//! `sighting`, `incident`, `status`), each with its refusals; `help`, which
//! only returns the core's help text, is answered in the dispatch. Their
//! parse is
//! varde-bridge-core's `command` (pure, fuzzed without matrix-sdk); this
//! module checks who asks, dispatches, and turns the outcome into what is
//! said in the room.

mod ack;
mod incident;
mod ioc;
mod report;
mod share;
mod sighting;
mod status;

use matrix_sdk::Room;
use uuid::Uuid;
use varde_bus::directory::VerifiedDirectory;
use varde_schemas::payload::IncidentAction;
use varde_schemas::{Audience, OrgId, Tlp};

use crate::command::{self, Command};
use crate::config::Language;
use crate::matrix::SendError;
use crate::policy::{self, RoomRules, RoomView};
use crate::room_side::RoomSide;
use crate::store::StoreError;
use crate::timeline::RoomEvent;

/// A reason a command or share is refused, said in the room.
#[derive(Debug)]
pub struct Refusal(pub String);

/// Why a command has no answer of its own: it was refused (the refusal is
/// said in the room instead), or the homeserver or the store failed and
/// nothing can be said.
#[derive(Debug)]
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
    pub(crate) async fn run_command(
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
        tracing::info!(room = %ev.room_id, org = %org, command = name(&cmd), "command");
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
            Command::Campaigns => self.campaigns(&req).await,
            Command::Report { about, state, note } => {
                self.status_report(&req, about, state, note).await
            }
            Command::Share { label, to, text } => self.share_command(&req, label, to, text).await,
            Command::Ack { id } => match Uuid::parse_str(id.trim()) {
                Ok(id) => self.ack(room, ev, id).await,
                Err(_) => Err(Refusal(format!("`{id}` is not a message id")).into()),
            },
            Command::Ioc { value } => self.ioc(&req, &value).await,
            Command::Sighting { value, note } => self.sighting(&req, value, note).await,
            Command::IncidentOpen { title, label, with } => {
                let person = self.person(room, &ev.sender, req.org.clone()).await;
                incident::open(self, &req, person, title, label, with).await
            }
            Command::IncidentNote { text } => {
                let person = self.person(room, &ev.sender, req.org.clone()).await;
                incident::act(self, &req, person, IncidentAction::Note, Some(text)).await
            }
            Command::IncidentClose { summary } => {
                let person = self.person(room, &ev.sender, req.org.clone()).await;
                incident::act(self, &req, person, IncidentAction::Close, summary).await
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
}

/// What to say in the room about a command: its answer, or why it was
/// refused. A send failure stays an error: nothing can be said then.
pub(crate) fn said(
    lang: Language,
    outcome: Result<String, CommandError>,
) -> Result<String, SendError> {
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
    !matches!(
        c,
        Command::Help | Command::Status | Command::Campaigns | Command::Ioc { .. }
    )
}

fn name(c: &Command) -> &'static str {
    match c {
        Command::Help => "help",
        Command::Status => "status",
        Command::Report { .. } => "status report",
        Command::Campaigns => "campaigns",
        Command::Share { .. } => "share",
        Command::Ack { .. } => "ack",
        Command::Ioc { .. } => "ioc",
        Command::Sighting { .. } => "sighting",
        Command::IncidentOpen { .. } => "incident open",
        Command::IncidentNote { .. } => "incident note",
        Command::IncidentClose { .. } => "incident close",
    }
}

pub fn refused(lang: Language, why: &str) -> String {
    match lang {
        Language::En => format!("Refused: {why}."),
        Language::Nb => format!("Avvist: {why}."),
    }
}

pub(crate) fn bad_command(lang: Language, why: &str, prefix: &str) -> String {
    match lang {
        Language::En => format!("Cannot run that: {why}. Try `{prefix} help`."),
        Language::Nb => format!("Kan ikke kjøre det: {why}. Prøv `{prefix} help`."),
    }
}
