//! The room side's state, shared by the event loop (`conversation.rs`),
//! the commands (`commands/`) and the incident rooms (`incident.rs`), and
//! the few things all of them do: find a room's configuration and
//! language, name a member, answer in the room.

use std::sync::Arc;

use matrix_sdk::Room;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::events::relation::{Reply, Thread};
use matrix_sdk::ruma::events::room::message::{Relation, RoomMessageEventContent};
use matrix_sdk::ruma::{OwnedRoomId, UserId};
use varde_bus::directory::DirectoryHandle;
use varde_schemas::OrgId;
use varde_schemas::payload::Person;

use crate::config::{self, Language};
use crate::matrix::{Bot, SendError, txn_id};
use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::store::{Part, Store};
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

impl RoomSide {
    pub(crate) fn configured(&self, room_id: &str) -> Option<&config::Room> {
        self.rooms
            .iter()
            .find(|(_, id)| id.as_str() == room_id)
            .map(|(c, _)| c)
    }

    pub(crate) fn lang(&self, room_id: &str) -> Language {
        match self.configured(room_id) {
            Some(c) => c.language,
            None => match self.store.incident_in_room(room_id) {
                Ok(Some(_)) => self.incidents.language,
                _ => self.commands.language,
            },
        }
    }

    pub(crate) async fn person(&self, room: &Room, user: &str, org: OrgId) -> Person {
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
        let mut content = RoomMessageEventContent::notice_plain(text).add_mentions(Mentions::new());
        let to = crate::matrix::event_id(&ev.event_id)?;
        // A command said in a thread is answered in that thread.
        content.relates_to = Some(match &ev.what {
            What::Message {
                thread_root: Some(root),
                ..
            } => Relation::Thread(Thread::reply(crate::matrix::event_id(root)?, to)),
            _ => Relation::Reply(Reply::with_event_id(to)),
        });
        self.bot
            .send(
                room,
                content,
                &txn_id(&ev.event_id, &ev.room_id, Part::Answer),
            )
            .await
            .map(|_| ())
    }
}
