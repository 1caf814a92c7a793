//! `!varde incident open "<title>" [tlp:…] [with org,org]`, `incident
//! note` and `incident close`: each publishes an `incident` envelope to
//! the participants and the CSIRT; what every bridge then does with it is
//! `incident.rs`.

use varde_bus::directory::VerifiedDirectory;
use varde_schemas::payload::{Incident, IncidentAction, Person};
use varde_schemas::{OrgId, Payload, Tlp};

use super::{CommandError, Refusal, Request};
use crate::config::Language;
use crate::incident::{MAX_TITLE, audience, may_close};
use crate::room_side::RoomSide;
use crate::store::IncidentState;

/// What an `incident open` may open: its label (TLP:AMBER unless asked;
/// never TLP:RED, which has no room), a title that fits, and the
/// participants: the opener's org first, then each named org of the
/// directory once.
fn opening(
    lang: Language,
    dir: &VerifiedDirectory,
    org: &OrgId,
    title: &str,
    label: Option<Tlp>,
    with: Vec<String>,
) -> Result<(Tlp, Vec<OrgId>), Refusal> {
    let label = label.unwrap_or(Tlp::Amber);
    if label == Tlp::Red {
        return Err(Refusal(
            "an incident cannot be TLP:RED; use TLP:AMBER+STRICT or TLP:AMBER".into(),
        ));
    }
    if title.len() > MAX_TITLE {
        return Err(Refusal(format!(
            "the title is {} bytes; keep it under {MAX_TITLE}",
            title.len()
        )));
    }
    let mut participants = vec![org.clone()];
    for w in with {
        match dir.org(&w) {
            Some(o) if !participants.contains(&o.id) => participants.push(o.id.clone()),
            Some(_) => {}
            None => {
                return Err(Refusal(match lang {
                    Language::En => format!("`{w}` is not an organisation in the directory"),
                    Language::Nb => format!("`{w}` er ikke en organisasjon i katalogen"),
                }));
            }
        }
    }
    Ok((label, participants))
}

pub async fn open(
    side: &RoomSide,
    req: &Request<'_>,
    by: Person,
    title: String,
    label: Option<Tlp>,
    with: Vec<String>,
) -> Result<String, CommandError> {
    let Request {
        ev,
        lang,
        dir,
        ref org,
        ..
    } = *req;
    let (label, participants) = opening(lang, dir, org, &title, label, with)?;
    let names: Vec<String> = participants.iter().map(|p| p.to_string()).collect();
    let incident_id = side
        .store
        .derived_id(&["incident", &ev.room_id, &ev.event_id]);
    let payload = Payload::Incident(Incident {
        incident_id,
        action: IncidentAction::Open,
        title,
        participants,
        by,
        text: None,
    });
    let id = side
        .store
        .derived_id(&["incident-open", &ev.room_id, &ev.event_id]);
    match side
        .publisher
        .publish(&payload, label, audience(dir, &names), Some(id))
        .await
    {
        Ok(_) => Ok(match lang {
            Language::En => format!(
                "Incident {incident_id} opened as {label} with {}; each organisation's bridge creates its incident room.",
                names.join(", ")
            ),
            Language::Nb => format!(
                "Hendelse {incident_id} åpnet som {label} med {}; hver organisasjons bro lager sitt hendelsesrom.",
                names.join(", ")
            ),
        }),
        Err(e) => Err(Refusal(e.to_string()).into()),
    }
}

/// `incident note` and `incident close`, from an incident room.
pub async fn act(
    side: &RoomSide,
    req: &Request<'_>,
    by: Person,
    action: IncidentAction,
    text: Option<String>,
) -> Result<String, CommandError> {
    let Request { ev, lang, dir, .. } = *req;
    let Some(row) = side.store.incident_in_room(&ev.room_id)? else {
        return Err(Refusal(match lang {
            Language::En => "this is not an incident room".into(),
            Language::Nb => "dette er ikke et hendelsesrom".into(),
        })
        .into());
    };
    if row.state != IncidentState::Open {
        return Err(Refusal(match lang {
            Language::En => "the incident is closed".into(),
            Language::Nb => "hendelsen er lukket".into(),
        })
        .into());
    }
    let own = &side.publisher.identity.org;
    if action == IncidentAction::Close && !may_close(dir, &row, own) {
        return Err(Refusal(match lang {
            Language::En => {
                "only the organisation that opened the incident, or the CSIRT, closes it".into()
            }
            Language::Nb => {
                "bare organisasjonen som åpnet hendelsen, eller CSIRT, kan lukke den".into()
            }
        })
        .into());
    }
    let title = match side.open_envelope(&row) {
        Some(i) => i.title,
        None => {
            return Err(
                Refusal("the incident's opening message cannot be opened any more".into()).into(),
            );
        }
    };
    let payload = Payload::Incident(Incident {
        incident_id: row.incident_id,
        action,
        title,
        participants: row
            .participants
            .iter()
            .filter_map(|p| OrgId::new(p.as_str()).ok())
            .collect(),
        by,
        text,
    });
    let id = side
        .store
        .derived_id(&["incident-act", &ev.room_id, &ev.event_id]);
    match side
        .publisher
        .publish(
            &payload,
            row.label,
            audience(dir, &row.participants),
            Some(id),
        )
        .await
    {
        Ok(_) => Ok(match (lang, action) {
            (Language::En, IncidentAction::Close) => "Closing the incident.".into(),
            (Language::Nb, IncidentAction::Close) => "Lukker hendelsen.".into(),
            (Language::En, _) => "Note recorded.".into(),
            (Language::Nb, _) => "Notatet er registrert.".into(),
        }),
        Err(e) => Err(Refusal(e.to_string()).into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use varde_testkit::synthetic::Synthetic;

    #[test]
    fn opening_checks_label_title_and_names() {
        let world = Synthetic::demo();
        let dir = world.handle().unwrap().current();
        let me = OrgId::new("gjovik").unwrap();
        let with = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();

        let (label, who) = opening(
            Language::En,
            &dir,
            &me,
            "t",
            None,
            with(&["lillehammer", "gjovik", "lillehammer"]),
        )
        .unwrap();
        assert_eq!(label, Tlp::Amber);
        let names: Vec<&str> = who.iter().map(OrgId::as_str).collect();
        assert_eq!(
            names,
            ["gjovik", "lillehammer"],
            "the opener first, each org once"
        );

        let red = opening(Language::En, &dir, &me, "t", Some(Tlp::Red), vec![]).unwrap_err();
        assert!(red.0.contains("TLP:RED"));
        let long = "x".repeat(MAX_TITLE + 1);
        let too_long = opening(Language::En, &dir, &me, &long, None, vec![]).unwrap_err();
        assert!(too_long.0.contains(&(MAX_TITLE + 1).to_string()));
        let unknown = opening(Language::Nb, &dir, &me, "t", None, with(&["atlantis"])).unwrap_err();
        assert_eq!(unknown.0, "`atlantis` er ikke en organisasjon i katalogen");
    }
}
