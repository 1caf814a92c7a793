//! Who said it. The verified envelope names the sender org (its key signed
//! the bytes); a payload's `author`, `by` or `reporter` is only the sender's
//! own account of which of *its* people spoke. So a payload that names
//! another org, or a Matrix user the directory lists under another org, is
//! refused, and a post is always attributed to the verified sender org's
//! directory name, with the payload's display name shown only as a
//! person's name within that org.

use varde_bus::directory::VerifiedDirectory;
use varde_schemas::payload::Person;
use varde_schemas::{Header, OrgId, Payload};

/// Longest display name shown in a room; longer ones are cut.
const MAX_NAME_CHARS: usize = 64;

/// A payload that claims to speak for someone its sender is not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Impersonation {
    #[error("the payload names org `{claimed}` but the envelope is signed by `{sender}`")]
    OtherOrg { claimed: OrgId, sender: OrgId },
    #[error(
        "the payload names {user}, a user of `{org}`, but the envelope is signed by `{sender}`"
    )]
    OtherOrgsUser {
        user: String,
        org: OrgId,
        sender: OrgId,
    },
}

impl Impersonation {
    /// Stable short name for metrics.
    pub fn reason(&self) -> &'static str {
        "impersonation"
    }
}

/// Checks one person named by a payload against the verified sender.
pub fn check_person(
    dir: &VerifiedDirectory,
    sender: &OrgId,
    p: &Person,
) -> Result<(), Impersonation> {
    if let Some(claimed) = &p.org
        && claimed != sender
    {
        return Err(Impersonation::OtherOrg {
            claimed: claimed.clone(),
            sender: sender.clone(),
        });
    }
    if let Some(user) = &p.matrix_user
        && let Some(org) = dir.org_of_matrix_user(user)
        && org.id != *sender
    {
        return Err(Impersonation::OtherOrgsUser {
            user: user.clone(),
            org: org.id.clone(),
            sender: sender.clone(),
        });
    }
    Ok(())
}

/// Checks every person a payload names as its author.
pub fn check(
    dir: &VerifiedDirectory,
    header: &Header,
    payload: &Payload,
) -> Result<(), Impersonation> {
    let person = match payload {
        Payload::Chat(c) => Some(&c.author),
        Payload::Incident(i) => Some(&i.by),
        Payload::Ack(a) => a.by.as_ref(),
        Payload::Sighting(s) => s.reporter.as_ref(),
        _ => None,
    };
    match person {
        Some(p) => check_person(dir, &header.sender.org, p),
        None => Ok(()),
    }
}

/// "Kari Nordmann (Gjøvik kommune)": the person's name as the sender gave
/// it, and the verified sender org's name from the directory.
pub fn attribution(dir: &VerifiedDirectory, sender: &OrgId, p: &Person) -> String {
    let who = p
        .display_name
        .as_deref()
        .map(display_name)
        .filter(|n| !n.is_empty())
        .or_else(|| p.matrix_user.as_deref().map(display_name))
        .unwrap_or_else(|| "?".into());
    let org = dir
        .org(sender.as_str())
        .map(|o| o.name.clone())
        .unwrap_or_else(|| sender.to_string());
    format!("{who} ({org})")
}

/// A display name fit to show: no control or bidi characters (which could
/// reorder what follows), white space folded, at most `MAX_NAME_CHARS`.
fn display_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_control() || is_bidi(c) { ' ' } else { c })
        .collect();
    let folded = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => format!("{}…", folded.get(..cut).unwrap_or_default()),
        None => folded,
    }
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_cleaned_and_cut() {
        assert_eq!(display_name("Kari\u{202e}  Nordmann\n"), "Kari Nordmann");
        let long = "x".repeat(100);
        assert_eq!(display_name(&long).chars().count(), MAX_NAME_CHARS + 1);
        assert_eq!(display_name("Bodø Ærlig"), "Bodø Ærlig");
    }
}
