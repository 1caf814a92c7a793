//! `!varde sighting <value> [note]`: a member saw an indicator; the
//! sighting goes to the CSIRT's hub only (TLP:AMBER), which publishes
//! counts once enough organisations report the same value.

use varde_schemas::payload::Sighting;
use varde_schemas::{Audience, Payload, Tlp};

use super::{CommandError, Refusal, Request};
use crate::config::Language;
use crate::room_side::RoomSide;

impl RoomSide {
    pub(super) async fn sighting(
        &self,
        req: &Request<'_>,
        value: String,
        note: Option<String>,
    ) -> Result<String, CommandError> {
        let Request {
            room,
            ev,
            lang,
            dir,
            ..
        } = *req;
        let (kind, value) = crate::ioc::understand(&value).map_err(Refusal)?;
        let person = self.person(room, &ev.sender, req.org.clone()).await;
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
}
