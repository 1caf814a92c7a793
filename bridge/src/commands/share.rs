//! `!varde share [tlp:…] [to …] <text>`: a member's words as a signed
//! `chat`, never lower than the message it replies to, never to a room
//! whose members may not see the label.

use varde_schemas::{Audience, OrgId, Payload, Tlp};

use super::{CommandError, Refusal, Request, members_allow};
use crate::config::{self, Language, Share};
use crate::room_side::RoomSide;
use crate::timeline::What;

impl RoomSide {
    pub(super) async fn share_command(
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
        let (label, audience) = label_and_audience(label, to, room_share.as_ref(), org)?;
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
            Ok(h) => {
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
}

/// The label and audience a share goes out with: what the member asked
/// for, else the sharing room's, else TLP:GREEN to the community (or the
/// member's own org from TLP:AMBER up). Never TLP:RED, and never an
/// audience the label does not allow (`audience::check`, as when sealing).
fn label_and_audience(
    label: Option<Tlp>,
    to: Option<Vec<String>>,
    room_share: Option<&Share>,
    org: &OrgId,
) -> Result<(Tlp, Audience), Refusal> {
    let label = label.or(room_share.map(|s| s.label)).unwrap_or(Tlp::Green);
    let audience = match to {
        Some(names) => config::audience_of(&names).map_err(Refusal)?,
        None => match room_share {
            Some(s) if varde_bus::audience::check(label, &s.audience).is_ok() => s.audience.clone(),
            _ if label >= Tlp::Amber => Audience::orgs([org.clone()]),
            _ => Audience::community(),
        },
    };
    if label == Tlp::Red {
        return Err(Refusal("TLP:RED cannot be shared from a room".into()));
    }
    varde_bus::audience::check(label, &audience).map_err(|e| Refusal(e.to_string()))?;
    Ok((label, audience))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use varde_schemas::GroupId;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    fn refused(r: Result<(Tlp, Audience), Refusal>) -> String {
        match r {
            Ok(ok) => panic!("shared as {ok:?}"),
            Err(Refusal(why)) => why,
        }
    }

    #[test]
    fn defaults_come_from_the_room_then_green_to_the_community() {
        let me = org("gjovik");
        assert_eq!(
            label_and_audience(None, None, None, &me).unwrap(),
            (Tlp::Green, Audience::community())
        );
        let room = Share {
            label: Tlp::Amber,
            audience: Audience::orgs([org("gjovik"), org("hamar")]),
            conversation: "innlandet".into(),
        };
        assert_eq!(
            label_and_audience(None, None, Some(&room), &me).unwrap(),
            (Tlp::Amber, room.audience.clone())
        );
        // AMBER asked in a plain room: the member's own org only.
        assert_eq!(
            label_and_audience(Some(Tlp::Amber), None, None, &me).unwrap(),
            (Tlp::Amber, Audience::orgs([me.clone()]))
        );
        // A room shared with a group: AMBER+STRICT may not go to groups,
        // so it goes to the member's own org, not to the room's audience.
        let grouped = Share {
            label: Tlp::Green,
            audience: Audience::groups([GroupId::new("innlandet").unwrap()]),
            conversation: "innlandet".into(),
        };
        assert_eq!(
            label_and_audience(Some(Tlp::AmberStrict), None, Some(&grouped), &me).unwrap(),
            (Tlp::AmberStrict, Audience::orgs([me.clone()]))
        );
        assert_eq!(
            label_and_audience(None, None, Some(&grouped), &me).unwrap(),
            (Tlp::Green, grouped.audience.clone())
        );
    }

    #[test]
    fn red_and_audiences_the_label_forbids_are_refused() {
        let me = org("gjovik");
        assert!(refused(label_and_audience(Some(Tlp::Red), None, None, &me)).contains("TLP:RED"));
        // AMBER to the whole community is what `audience::check` forbids.
        let why = refused(label_and_audience(
            Some(Tlp::Amber),
            Some(vec!["community".into()]),
            None,
            &me,
        ));
        assert!(!why.is_empty());
        let why = refused(label_and_audience(
            Some(Tlp::Green),
            Some(vec!["not a name!".into()]),
            None,
            &me,
        ));
        assert!(!why.is_empty());
    }
}
