//! `!varde ack <id>` and a ✅ reaction: one signed `ack` per member and
//! message, to the message's sender, only for what was posted in this room.

use matrix_sdk::Room;
use uuid::Uuid;
use varde_schemas::payload::Ack;
use varde_schemas::{Audience, OrgId, Payload, Tlp};

use super::{CommandError, Refusal};
use crate::config::Language;
use crate::room_side::RoomSide;
use crate::timeline::RoomEvent;

impl RoomSide {
    /// One `ack` per member and message, to the message's sender.
    pub(crate) async fn ack(
        &self,
        room: &Room,
        ev: &RoomEvent,
        of: Uuid,
    ) -> Result<String, CommandError> {
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
}
