//! Kinds whose label and audience follow from what they are, not from the
//! sender's choice. A status is an org's exposure and patch state: it goes
//! TLP:AMBER+STRICT to the CSIRT alone, so no municipality ever sees
//! another's. A campaign message is the CSIRT asking one org: only the
//! CSIRT sends it, TLP:AMBER+STRICT to that org alone, so no org learns who
//! else is asked (being asked says "you run the affected product").
//!
//! Checked when sealing (the sender's mistake, reported before anything is
//! published) and, on the verified header, when opening (a member that
//! seals by hand gets its envelope refused by every reader).

use varde_schemas::directory::OrgKind;
use varde_schemas::{Audience, Header, Kind, OrgId, Payload, Tlp};

use crate::directory::VerifiedDirectory;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindRuleError {
    #[error(
        "a status goes TLP:AMBER+STRICT to the CSIRT alone (the directory's `csirt`); this one is {label} to {audience}"
    )]
    StatusNotToCsirt { label: Tlp, audience: String },
    #[error("only the CSIRT sends campaign messages; `{sender}` is not the directory's `csirt`")]
    CampaignNotFromCsirt { sender: OrgId },
    #[error(
        "a campaign message goes TLP:AMBER+STRICT to one org alone; this one is {label} to {audience}"
    )]
    CampaignNotToOneOrg { label: Tlp, audience: String },
    #[error("the directory's `csirt` is not an org of kind `csirt`: no status can be sent")]
    NoCsirt,
}

/// The directory's CSIRT (its `csirt` field, which must be an org of kind
/// `csirt`).
fn is_csirt(dir: &VerifiedDirectory, org: &str) -> bool {
    dir.doc.csirt.as_str() == org && dir.org(org).is_some_and(|o| o.kind == OrgKind::Csirt)
}

/// The one org an AMBER+STRICT audience names, if that is all it names.
fn single_org(label: Tlp, a: &Audience) -> Option<&OrgId> {
    match (
        label,
        a.community,
        a.groups.is_empty(),
        a.people.is_empty(),
        a.orgs.as_slice(),
    ) {
        (Tlp::AmberStrict, false, true, true, [one]) => Some(one),
        _ => None,
    }
}

fn describe(a: &Audience) -> String {
    let mut parts = Vec::new();
    if a.community {
        parts.push("the community".to_string());
    }
    parts.extend(a.groups.iter().map(|g| format!("group {g}")));
    parts.extend(a.orgs.iter().map(|o| format!("org {o}")));
    if !a.people.is_empty() {
        parts.push(format!("{} named key(s)", a.people.len()));
    }
    if parts.is_empty() {
        "nobody".into()
    } else {
        parts.join(", ")
    }
}

/// The rule of `kind` for a message of `sender` labelled `label` to `a`.
/// Kinds without a rule pass.
pub fn check(
    dir: &VerifiedDirectory,
    sender: &OrgId,
    kind: Kind,
    label: Tlp,
    a: &Audience,
) -> Result<(), KindRuleError> {
    match kind {
        Kind::Status => match single_org(label, a) {
            Some(to) if is_csirt(dir, to.as_str()) => Ok(()),
            _ => Err(KindRuleError::StatusNotToCsirt {
                label,
                audience: describe(a),
            }),
        },
        Kind::Campaign => {
            if !is_csirt(dir, sender.as_str()) {
                return Err(KindRuleError::CampaignNotFromCsirt {
                    sender: sender.clone(),
                });
            }
            match single_org(label, a) {
                Some(_) => Ok(()),
                None => Err(KindRuleError::CampaignNotToOneOrg {
                    label,
                    audience: describe(a),
                }),
            }
        }
        _ => Ok(()),
    }
}

/// The CSIRT a status goes to: the directory's `csirt`.
pub fn csirt(dir: &VerifiedDirectory) -> Result<&OrgId, KindRuleError> {
    let c = &dir.doc.csirt;
    if is_csirt(dir, c.as_str()) {
        Ok(c)
    } else {
        Err(KindRuleError::NoCsirt)
    }
}

/// What a `delivered` receipt for this message is about, when one is due:
/// the CSIRT's advisories (by advisory id) and alerts (by envelope id), read
/// by anyone but the CSIRT. The bridge sends one when it posts such a
/// message, `varde tail --durable` when it shows one.
pub fn receipt_about(
    dir: &VerifiedDirectory,
    me: &OrgId,
    h: &Header,
    p: &Payload,
) -> Option<String> {
    if h.sender.org != dir.doc.csirt || h.sender.org == *me {
        return None;
    }
    match p {
        Payload::Advisory(a) => Some(a.advisory_id.clone()),
        Payload::Alert(_) => Some(h.id.to_string()),
        _ => None,
    }
}

/// The label and audience a status must have in `dir`.
pub fn status_audience(dir: &VerifiedDirectory) -> Result<(Tlp, Audience), KindRuleError> {
    Ok((Tlp::AmberStrict, Audience::orgs([csirt(dir)?.clone()])))
}
