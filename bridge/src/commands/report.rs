//! `!varde status <advisory-id> <state> [note]` and ✅ on a CSIRT warning:
//! where this org stands, sealed TLP:AMBER+STRICT to the CSIRT alone
//! (`kind_rules`), so no other member ever sees it. Only the bridge's own
//! org's users may set it (the dispatch checks), and the status counts for
//! the bridge's org: the verified sender.

use uuid::Uuid;
use varde_bus::directory::VerifiedDirectory;
use varde_bus::kind_rules;
use varde_schemas::payload::{Person, RemediationState, Status};
use varde_schemas::{OrgId, Payload};

use super::{CommandError, Refusal, Request};
use crate::config::Language;
use crate::room_side::RoomSide;

impl RoomSide {
    pub(super) async fn status_report(
        &self,
        req: &Request<'_>,
        about: String,
        state: RemediationState,
        note: Option<String>,
    ) -> Result<String, CommandError> {
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
        let payload = Payload::Status(Status {
            about,
            state,
            note,
            by,
        });
        self.publisher
            .publish(&payload, label, audience, Some(id))
            .await
            .map_err(|e| Refusal(e.to_string()))?;
        Ok(csirt)
    }
}

fn sent(lang: Language, state: RemediationState, csirt: &OrgId) -> String {
    match lang {
        Language::En => format!("Status {state} sent to {csirt} only (TLP:AMBER+STRICT)."),
        Language::Nb => format!("Status {state} er sendt bare til {csirt} (TLP:AMBER+STRICT)."),
    }
}
