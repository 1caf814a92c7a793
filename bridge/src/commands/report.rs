//! `!varde status <advisory-id> <state> [note]` (or `!varde status <state>
//! [note]` in the advisory's thread) and ✅ on a CSIRT warning:
//! where this org stands, sealed TLP:AMBER+STRICT to the CSIRT alone
//! (`kind_rules`), so no other member ever sees it. Only the bridge's own
//! org's users may set it (the dispatch checks), and the status counts for
//! the bridge's org: the verified sender.

use uuid::Uuid;
use varde_bus::directory::VerifiedDirectory;
use varde_bus::kind_rules;
use varde_schemas::payload::{MAX_ABOUT, MAX_NOTE, Person, RemediationState, Status};
use varde_schemas::{Audience, OrgId, Payload, Tlp};

use super::{CommandError, Refusal, Request};
use crate::config::Language;
use crate::policy::{self, RoomRules};
use crate::room_side::RoomSide;
use crate::timeline::What;

impl RoomSide {
    pub(super) async fn status_report(
        &self,
        req: &Request<'_>,
        about: Option<String>,
        state: RemediationState,
        note: Option<String>,
    ) -> Result<String, CommandError> {
        let about = match about {
            Some(a) => a,
            None => self.thread_advisory(req)?,
        };
        let person = self.person(req.room, &req.ev.sender, req.org.clone()).await;
        // One event, one status, however often the sync shows it.
        let id = self
            .store
            .derived_id(&["status", &req.ev.room_id, &req.ev.event_id]);
        let csirt = self
            .send_status(req.dir, about, state, note, Some(person), id)
            .await?;
        Ok(sent(req.lang, state, &csirt))
    }

    /// The CSIRT advisory whose thread this command is in (or whose post
    /// it replies to), as this bridge posted it in this room.
    fn thread_advisory(&self, req: &Request<'_>) -> Result<String, CommandError> {
        let What::Message {
            thread_root,
            reply_to,
            ..
        } = &req.ev.what
        else {
            return Err(no_thread(req.lang).into());
        };
        for root in [thread_root, reply_to].into_iter().flatten() {
            if let Some(id) = self
                .store
                .advisory_at(&req.ev.room_id, req.dir.doc.csirt.as_str(), root)
                .map_err(|e| Refusal(e.to_string()))?
            {
                return Ok(id);
            }
        }
        Err(no_thread(req.lang).into())
    }

    /// Seals and publishes a status to the directory's CSIRT with `id`.
    pub(crate) async fn send_status(
        &self,
        dir: &VerifiedDirectory,
        about: String,
        state: RemediationState,
        note: Option<String>,
        by: Option<Person>,
        id: Uuid,
    ) -> Result<OrgId, CommandError> {
        let (label, audience) =
            kind_rules::status_audience(dir).map_err(|e| Refusal(e.to_string()))?;
        let csirt = kind_rules::csirt(dir)
            .map_err(|e| Refusal(e.to_string()))?
            .clone();
        let status = Status {
            about: about.clone(),
            state,
            note,
            by,
        };
        // The CSIRT's desk refuses a status over its bounds: say so here
        // instead of reporting it sent.
        if !status.within_limits() {
            return Err(Refusal(format!(
                "the advisory id must be 1 to {MAX_ABOUT} bytes and the note at most {MAX_NOTE}"
            ))
            .into());
        }
        let payload = Payload::Status(status);
        self.publisher
            .publish(&payload, label, audience, Some(id))
            .await
            .map_err(|e| Refusal(e.to_string()))?;
        self.store.record_own_status(&about, state)?;
        Ok(csirt)
    }

    /// `!varde campaigns`: this org's open campaigns, its last status and
    /// the deadlines (only this org's: each campaign message was sealed to
    /// it alone).
    pub(super) async fn campaigns(&self, req: &Request<'_>) -> Result<String, CommandError> {
        let lang = req.lang;
        // Being asked says "you run the affected product": the answer is a
        // post into this room, so the room must be one that may carry
        // TLP:AMBER+STRICT for this org (encrypted, its members only), and
        // the asker of this org.
        let own = self.publisher.identity.org.clone();
        self.acts_for(lang, &req.ev.sender, &req.org)?;
        let view = self.bot.view(req.room, true).await?;
        let rules = RoomRules {
            ceiling: self
                .configured(&req.ev.room_id)
                .map_or(Tlp::Green, |c| c.ceiling),
            red: false,
        };
        if let Err(v) = policy::check(
            req.dir,
            rules,
            &view,
            Tlp::AmberStrict,
            &Audience::orgs([own]),
        ) {
            return Err(Refusal(match lang {
                Language::En => format!(
                    "campaigns are TLP:AMBER+STRICT and this room cannot carry them: {}",
                    crate::render::violation_text(lang, &v)
                ),
                Language::Nb => format!(
                    "kampanjer er TLP:AMBER+STRICT og dette rommet kan ikke bære dem: {}",
                    crate::render::violation_text(lang, &v)
                ),
            })
            .into());
        }
        let open = self.store.open_campaigns()?;
        if open.is_empty() {
            return Ok(match lang {
                Language::En => "No open campaigns.".into(),
                Language::Nb => "Ingen åpne kampanjer.".into(),
            });
        }
        let none = match lang {
            Language::En => "no status sent",
            Language::Nb => "ingen status sendt",
        };
        let lines: Vec<String> = open
            .iter()
            .map(|c| {
                format!(
                    "{}: {} ({}{})",
                    c.about,
                    c.title,
                    c.status.as_deref().unwrap_or(none),
                    c.deadline
                        .as_deref()
                        .map(|d| match lang {
                            Language::En => format!(", deadline {d}"),
                            Language::Nb => format!(", frist {d}"),
                        })
                        .unwrap_or_default()
                )
            })
            .collect();
        Ok(lines.join("\n"))
    }
}

fn sent(lang: Language, state: RemediationState, csirt: &OrgId) -> String {
    match lang {
        Language::En => format!("Status {state} sent to {csirt} only (TLP:AMBER+STRICT)."),
        Language::Nb => format!("Status {state} er sendt bare til {csirt} (TLP:AMBER+STRICT)."),
    }
}

fn no_thread(lang: Language) -> Refusal {
    Refusal(match lang {
        Language::En => "name the advisory (`status <advisory-id> <state>`), or say it in the thread of the CSIRT's advisory".into(),
        Language::Nb => "oppgi varselet (`status <varsel-id> <tilstand>`), eller skriv det i tråden til CSIRT-ens varsel".into(),
    })
}
