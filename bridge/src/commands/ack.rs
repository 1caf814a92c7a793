//! `!varde ack <id>` and a ✅ reaction: one signed `ack` per member and
//! message, to the message's sender, only for what was posted in this room.

use matrix_sdk::Room;
use uuid::Uuid;
use varde_schemas::payload::{Ack, Person, RemediationState};
use varde_schemas::{Audience, OrgId, Payload, Tlp};

use super::{CommandError, Refusal};
use crate::config::Language;
use crate::room_side::RoomSide;
use crate::store::Store;
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
        let (to, ack_id) = match plan(&self.store, lang, &ev.room_id, &ev.sender, of)? {
            Plan::Send { to, id } => (to, id),
            Plan::Already(answer) => return Ok(answer),
        };
        let person = self.person(room, &ev.sender, org).await;
        let ack = Ack {
            of,
            by: Some(person.clone()),
            note: None,
        };
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
                self.acknowledged(ev, of, person).await;
                Ok(sent(lang, of, &to))
            }
            Err(e) => {
                let _ = self.store.release_ack(of, &ev.sender);
                Err(Refusal(e.to_string()).into())
            }
        }
    }
}

impl RoomSide {
    /// An ack of a CSIRT advisory or alert is also this org's
    /// `acknowledged` status for its campaign (to the CSIRT alone). A
    /// failure is logged: the ack itself went out.
    async fn acknowledged(&self, ev: &RoomEvent, of: Uuid, by: Person) {
        let dir = self.directory.current();
        let Ok(Some(row)) = self.store.event_of(of, &ev.room_id) else {
            return;
        };
        if row.sender_org != dir.doc.csirt.as_str() {
            return;
        }
        let about = match row.kind.as_str() {
            "advisory" => match self
                .store
                .advisory_at(&ev.room_id, &row.sender_org, &row.event_id)
            {
                Ok(Some(a)) => a,
                _ => return,
            },
            "alert" => of.to_string(),
            _ => return,
        };
        let id = self.store.derived_id(&["acknowledged", &about, &ev.sender]);
        match self
            .send_status(
                &dir,
                about,
                RemediationState::Acknowledged,
                None,
                Some(by),
                id,
            )
            .await
        {
            Ok(_) => tracing::info!(room = %ev.room_id, of = %of, "acknowledged status sent"),
            Err(e) => {
                tracing::warn!(room = %ev.room_id, of = %of, error = ?e, "acknowledged status not sent")
            }
        }
    }
}

/// What an ack of `of` by `user` in `room` comes to, before anything is
/// published.
#[derive(Debug, PartialEq)]
enum Plan {
    /// Publish the ack with this id to the message's sender.
    Send { to: OrgId, id: Uuid },
    /// The member acknowledged it before: this is the answer.
    Already(String),
}

/// Only what the bridge posted in this very room may be acknowledged from
/// it (an ack of an id bridged elsewhere would tell the member who sent
/// what to whom), and not a member's shared chat. The ack is claimed in the
/// store, so a second ✅ or `!varde ack` is answered instead of sent; its
/// id is derived with the store's secret, so no other org can publish an
/// envelope with it first.
fn plan(
    store: &Store,
    lang: Language,
    room: &str,
    user: &str,
    of: Uuid,
) -> Result<Plan, CommandError> {
    let Some(row) = store
        .event_of(of, room)?
        .filter(|r| !r.origin && r.kind != "chat")
    else {
        return Err(Refusal(match lang {
            Language::En => format!("no message with id {of} was bridged here"),
            Language::Nb => format!("ingen melding med id {of} er videresendt hit"),
        })
        .into());
    };
    let to = OrgId::new(row.sender_org.as_str()).map_err(|e| Refusal(e.to_string()))?;
    let id = store.derived_id(&["ack", &of.to_string(), user]);
    if !store.claim_ack(of, user, id)? {
        return Ok(Plan::Already(match lang {
            Language::En => format!("{user} has already acknowledged {of}."),
            Language::Nb => format!("{user} har allerede kvittert for {of}."),
        }));
    }
    Ok(Plan::Send { to, id })
}

fn sent(lang: Language, of: Uuid, to: &OrgId) -> String {
    match lang {
        Language::En => format!("Acknowledged {of} to {to}."),
        Language::Nb => format!("Kvittert for {of} til {to}."),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use varde_schemas::{Header, KeyId, Kind, Sender};

    fn header(kind: Kind, sender: &str) -> Header {
        Header {
            v: 1,
            id: Uuid::now_v7(),
            kind,
            label: Tlp::Green,
            audience: Audience::community(),
            sender: Sender {
                org: OrgId::new(sender).unwrap(),
                key: KeyId([7; 8]),
            },
            created: jiff::Timestamp::now(),
            expires: None,
        }
    }

    fn refusal(r: Result<Plan, CommandError>) -> String {
        match r {
            Err(CommandError::Refused(Refusal(why))) => why,
            Err(CommandError::Send(e)) => panic!("store error {e}"),
            Ok(p) => panic!("not refused: {p:?}"),
        }
    }

    #[test]
    fn acks_go_to_the_sender_once_per_member_and_only_from_the_room() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("b.sqlite3")).unwrap();
        let alert = header(Kind::Alert, "kcsirt");
        store.record_event("!a:hs", "$post", &alert, false).unwrap();
        let (kari, ola) = ("@kari:gjovik.test", "@ola:gjovik.test");

        let Plan::Send { to, id } = plan(&store, Language::En, "!a:hs", kari, alert.id).unwrap()
        else {
            panic!("not sent")
        };
        assert_eq!(to.as_str(), "kcsirt");
        // The same member again: answered, not sent twice.
        assert_eq!(
            plan(&store, Language::En, "!a:hs", kari, alert.id).unwrap(),
            Plan::Already(format!("{kari} has already acknowledged {}.", alert.id))
        );
        // Another member: an ack of their own, with another id.
        let Plan::Send { id: other, .. } =
            plan(&store, Language::Nb, "!a:hs", ola, alert.id).unwrap()
        else {
            panic!("not sent")
        };
        assert_ne!(id, other);

        // Bridged into another room only: no ack from this one, and the
        // answer does not say where it went.
        let why = refusal(plan(&store, Language::En, "!b:hs", kari, alert.id));
        assert_eq!(
            why,
            format!("no message with id {} was bridged here", alert.id)
        );
        assert!(!why.contains("!a:hs"));
    }

    #[test]
    fn shared_chat_and_members_own_messages_take_no_ack() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("b.sqlite3")).unwrap();
        let chat = header(Kind::Chat, "hamar");
        store.record_event("!a:hs", "$chat", &chat, false).unwrap();
        let own = header(Kind::Alert, "gjovik");
        store.record_event("!a:hs", "$own", &own, true).unwrap();
        for of in [chat.id, own.id, Uuid::now_v7()] {
            let why = refusal(plan(&store, Language::Nb, "!a:hs", "@kari:gjovik.test", of));
            assert!(why.starts_with("ingen melding med id"), "{why}");
        }
    }

    #[test]
    fn the_ids_cannot_be_computed_by_another_store() {
        // Two bridges (two stores) derive different ids for the same ack:
        // the id rests on the store's secret, not on public values.
        let d = tempfile::tempdir().unwrap();
        let alert = header(Kind::Alert, "kcsirt");
        let mut ids = Vec::new();
        for name in ["one.sqlite3", "two.sqlite3"] {
            let store = Store::open(&d.path().join(name)).unwrap();
            store.record_event("!a:hs", "$post", &alert, false).unwrap();
            match plan(&store, Language::En, "!a:hs", "@kari:gjovik.test", alert.id).unwrap() {
                Plan::Send { id, .. } => ids.push(id),
                other => panic!("{other:?}"),
            }
        }
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn the_answer_names_the_message_and_its_sender() {
        let of = Uuid::now_v7();
        let to = OrgId::new("kcsirt").unwrap();
        assert_eq!(
            sent(Language::En, of, &to),
            format!("Acknowledged {of} to kcsirt.")
        );
        assert_eq!(
            sent(Language::Nb, of, &to),
            format!("Kvittert for {of} til kcsirt.")
        );
    }
}
