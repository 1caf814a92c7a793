//! `!varde sighting <value> [note]`: a member saw an indicator; the
//! sighting goes to the CSIRT's hub only (TLP:AMBER), which publishes
//! counts once enough organisations report the same value.

use jiff::Timestamp;
use uuid::Uuid;
use varde_schemas::payload::{Person, Sighting};
use varde_schemas::{Audience, OrgId, Payload, Tlp};

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
        // Refused before anything else: a value that is no indicator is
        // the member's typo, not something to send.
        let (kind, value) = crate::ioc::understand(&value).map_err(Refusal)?;
        let person = self.person(room, &ev.sender, req.org.clone()).await;
        let hub = dir.doc.csirt.clone();
        let (payload, label, audience) =
            sighting(kind, value, note, person, &hub, Timestamp::now());
        // One event, one sighting, however often the sync shows it.
        let id = self
            .store
            .derived_id(&["sighting", &ev.room_id, &ev.event_id]);
        match self
            .publisher
            .publish(&payload, label, audience, Some(id))
            .await
        {
            Ok(h) => Ok(sent(lang, &hub, h.label, h.id)),
            Err(e) => Err(Refusal(e.to_string()).into()),
        }
    }
}

/// The sighting, its label and its audience: TLP:AMBER to the CSIRT's hub
/// alone. Which member saw what is never shared with the other members;
/// the hub publishes only counts over enough organisations.
fn sighting(
    kind: varde_schemas::payload::IndicatorType,
    value: String,
    note: Option<String>,
    reporter: Person,
    hub: &OrgId,
    seen_at: Timestamp,
) -> (Payload, Tlp, Audience) {
    let s = Sighting {
        kind,
        value,
        seen_at,
        note,
        reporter: Some(reporter),
        aggregate: None,
    };
    (
        Payload::Sighting(s),
        Tlp::Amber,
        Audience::orgs([hub.clone()]),
    )
}

fn sent(lang: Language, hub: &OrgId, label: Tlp, id: Uuid) -> String {
    match lang {
        Language::En => format!("Sighting sent to {hub} as {label} (id {id})."),
        Language::Nb => format!("Observasjonen er sendt til {hub} som {label} (id {id})."),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kari() -> Person {
        Person {
            matrix_user: Some("@kari:gjovik.test".into()),
            display_name: Some("Kari".into()),
            org: Some(OrgId::new("gjovik").unwrap()),
        }
    }

    #[test]
    fn a_sighting_goes_to_the_csirt_alone_as_amber() {
        let hub = OrgId::new("kcsirt").unwrap();
        let (kind, value) = crate::ioc::understand("Evil.EXAMPLE.").unwrap();
        let at = Timestamp::now();
        let (payload, label, audience) = sighting(
            kind,
            value,
            Some("in our proxy log".into()),
            kari(),
            &hub,
            at,
        );
        assert_eq!(label, Tlp::Amber);
        assert_eq!(audience, Audience::orgs([hub.clone()]));
        let Payload::Sighting(s) = payload else {
            panic!("not a sighting")
        };
        // The value travels in its normal form; no count is claimed.
        assert_eq!(s.value, "evil.example");
        assert_eq!(s.aggregate, None);
        assert_eq!(s.seen_at, at);
        assert_eq!(s.reporter, Some(kari()));
        assert_eq!(s.note.as_deref(), Some("in our proxy log"));
    }

    #[test]
    fn what_is_no_indicator_is_refused_before_sending() {
        let why = crate::ioc::understand("not a value at all").unwrap_err();
        assert!(why.contains("cannot tell what kind of value"), "{why}");
    }

    #[test]
    fn the_answer_names_the_hub_the_label_and_the_id() {
        let hub = OrgId::new("kcsirt").unwrap();
        let id = Uuid::now_v7();
        assert_eq!(
            sent(Language::En, &hub, Tlp::Amber, id),
            format!("Sighting sent to kcsirt as TLP:AMBER (id {id}).")
        );
        assert!(
            sent(Language::Nb, &hub, Tlp::Amber, id)
                .starts_with("Observasjonen er sendt til kcsirt")
        );
    }
}
