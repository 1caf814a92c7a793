//! `!varde` commands: parsing (pure, tested here) and their help text in
//! English and Norwegian Bokmål. Running them is `conversation.rs`'s job.

use varde_schemas::Tlp;
use varde_schemas::payload::{RemediationState, UnknownState};

use crate::config::Language;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Status,
    /// `status <advisory-id> <state> [note]`: where this org stands on a
    /// warning, to the CSIRT alone. `status <state> [note]` in the
    /// advisory's thread (or as a reply to it): `about` is `None` and the
    /// bridge takes the advisory from the thread.
    Report {
        about: Option<String>,
        state: RemediationState,
        note: Option<String>,
    },
    /// `campaigns`: this org's open campaigns, its status, the deadlines.
    Campaigns,
    Share {
        label: Option<Tlp>,
        /// `community`, org ids and `group:<g>` names.
        to: Option<Vec<String>>,
        text: String,
    },
    Ack {
        id: String,
    },
    Ioc {
        value: String,
    },
    Sighting {
        value: String,
        note: Option<String>,
    },
    IncidentOpen {
        title: String,
        label: Option<Tlp>,
        with: Vec<String>,
    },
    IncidentNote {
        text: String,
    },
    IncidentClose {
        summary: Option<String>,
    },
}

/// A command that cannot be run as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command `{0}`")]
    Unknown(String),
    #[error("`{command}` needs {what}")]
    Missing {
        command: &'static str,
        what: &'static str,
    },
    #[error("`{0}` is not a TLP label (tlp:clear, tlp:green, tlp:amber, tlp:amber+strict)")]
    BadLabel(String),
    #[error("the incident title must be in quotes: incident open \"<title>\"")]
    Unquoted,
    #[error(transparent)]
    State(#[from] UnknownState),
}

fn label(token: &str) -> Option<Result<Tlp, ParseError>> {
    let lower = token.to_ascii_lowercase();
    let rest = lower.strip_prefix("tlp:")?;
    Some(
        rest.parse::<Tlp>()
            .map_err(|_| ParseError::BadLabel(token.to_string())),
    )
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Splits off the first whitespace-separated word.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// A quoted title at the start of `s` ("…" or “…”), and what follows.
fn quoted(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let (open, close) = match s.chars().next()? {
        '"' => ('"', '"'),
        '“' => ('“', '”'),
        '«' => ('«', '»'),
        _ => return None,
    };
    let inner = &s[open.len_utf8()..];
    let end = inner.find(close)?;
    Some((
        inner[..end].trim().to_string(),
        inner[end + close.len_utf8()..].trim_start(),
    ))
}

/// `None` when `body` is not a command (does not start with `prefix`).
pub fn parse(prefix: &str, body: &str) -> Option<Result<Command, ParseError>> {
    let body = body.trim();
    let rest = body.strip_prefix(prefix)?;
    // `!vardefoo` is not ours.
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    Some(parse_rest(rest.trim()))
}

/// `"patched 14:05"` → `patched 14:05`; nothing → `None`.
fn quoted_note(note: &str) -> Option<String> {
    let note = note
        .trim()
        .trim_matches(|c| c == '"' || c == '“' || c == '”')
        .trim();
    (!note.is_empty()).then(|| note.to_string())
}

fn parse_rest(rest: &str) -> Result<Command, ParseError> {
    let (cmd, args) = word(rest);
    match cmd.to_lowercase().as_str() {
        "" | "help" | "hjelp" => Ok(Command::Help),
        "campaigns" | "kampanjer" => Ok(Command::Campaigns),
        "status" => {
            let (about, rest) = word(args);
            if about.is_empty() {
                return Ok(Command::Status);
            }
            // A state first: the advisory is the thread's (no advisory id
            // is a state's name).
            if let Ok(state) = about.parse::<RemediationState>() {
                return Ok(Command::Report {
                    about: None,
                    state,
                    note: quoted_note(rest),
                });
            }
            let (state, note) = word(rest);
            if state.is_empty() {
                return Err(ParseError::Missing {
                    command: "status",
                    what: "a state (acknowledged, not_affected, affected, in_progress, remediated, needs_help)",
                });
            }
            Ok(Command::Report {
                about: Some(about.to_string()),
                state: state.parse()?,
                note: quoted_note(note),
            })
        }
        "share" | "del" => {
            let mut args = args;
            let mut lbl = None;
            let mut to = None;
            loop {
                let (w, after) = word(args);
                if let Some(l) = label(w) {
                    lbl = Some(l?);
                    args = after;
                } else if w.eq_ignore_ascii_case("to") || w.eq_ignore_ascii_case("til") {
                    let (names, after) = word(after);
                    to = Some(list(names));
                    args = after;
                } else {
                    break;
                }
            }
            if args.trim().is_empty() {
                return Err(ParseError::Missing {
                    command: "share",
                    what: "text to share",
                });
            }
            Ok(Command::Share {
                label: lbl,
                to,
                text: args.trim().to_string(),
            })
        }
        "ack" => {
            let (id, _) = word(args);
            if id.is_empty() {
                return Err(ParseError::Missing {
                    command: "ack",
                    what: "the message id",
                });
            }
            Ok(Command::Ack { id: id.to_string() })
        }
        "ioc" => {
            let (value, _) = word(args);
            if value.is_empty() {
                return Err(ParseError::Missing {
                    command: "ioc",
                    what: "a value (IP, domain, URL, hash, CVE…)",
                });
            }
            Ok(Command::Ioc {
                value: value.to_string(),
            })
        }
        "sighting" | "observasjon" => {
            let (value, note) = word(args);
            if value.is_empty() {
                return Err(ParseError::Missing {
                    command: "sighting",
                    what: "the value you saw",
                });
            }
            Ok(Command::Sighting {
                value: value.to_string(),
                note: (!note.trim().is_empty()).then(|| note.trim().to_string()),
            })
        }
        "incident" | "hendelse" => {
            let (sub, args) = word(args);
            match sub.to_lowercase().as_str() {
                "open" | "åpne" => {
                    let (title, mut rest) = quoted(args).ok_or(ParseError::Unquoted)?;
                    if title.is_empty() {
                        return Err(ParseError::Missing {
                            command: "incident open",
                            what: "a title",
                        });
                    }
                    let mut lbl = None;
                    let mut with = Vec::new();
                    loop {
                        let (w, after) = word(rest);
                        if w.is_empty() {
                            break;
                        }
                        if let Some(l) = label(w) {
                            lbl = Some(l?);
                            rest = after;
                        } else if w.eq_ignore_ascii_case("with") || w.eq_ignore_ascii_case("med") {
                            let (names, after) = word(after);
                            with.extend(list(names));
                            rest = after;
                        } else {
                            return Err(ParseError::Unknown(format!("incident open … {w}")));
                        }
                    }
                    Ok(Command::IncidentOpen {
                        title,
                        label: lbl,
                        with,
                    })
                }
                "note" | "notat" => {
                    if args.trim().is_empty() {
                        return Err(ParseError::Missing {
                            command: "incident note",
                            what: "the note's text",
                        });
                    }
                    Ok(Command::IncidentNote {
                        text: args.trim().to_string(),
                    })
                }
                "close" | "lukk" => Ok(Command::IncidentClose {
                    summary: (!args.trim().is_empty()).then(|| args.trim().to_string()),
                }),
                other => Err(ParseError::Unknown(format!("incident {other}"))),
            }
        }
        other => Err(ParseError::Unknown(other.to_string())),
    }
}

/// The help text, with the configured prefix.
pub fn help(lang: Language, p: &str) -> String {
    match lang {
        Language::En => format!(
            "Varde commands:\n\
             {p} help: this text\n\
             {p} status: bus connection, lag, last message, directory version\n\
             {p} status <advisory-id> <state> [note]: tell the CSIRT, and only the CSIRT, where your organisation stands (acknowledged, not_affected, affected, in_progress, remediated, needs_help; in the advisory's thread the id may be left out; ✅ on the advisory = acknowledged)\n\
             {p} campaigns: what the CSIRT asks your organisation, your last status, the deadlines\n\
             {p} share [tlp:<label>] [to community|<org>,group:<group>] <text>: share text on the bus\n\
             {p} ack <id>: acknowledge a bridged alert to its sender (or react with ✅)\n\
             {p} ioc <value>: what this bridge has seen about a value, within what this room may see\n\
             {p} sighting <value> [note]: report a sighting to the CSIRT\n\
             {p} incident open \"<title>\" [tlp:<label>] [with <org>,<org>]: open an incident with its own rooms\n\
             {p} incident note <text>: add a note (in an incident room)\n\
             {p} incident close [summary]: close the incident (in an incident room)\n\
             Only users of organisations in the directory may run commands."
        ),
        Language::Nb => format!(
            "Varde-kommandoer:\n\
             {p} help: denne teksten\n\
             {p} status: busstilkobling, etterslep, siste melding, katalogversjon\n\
             {p} status <varsel-id> <tilstand> [notat]: fortell CSIRT, og bare CSIRT, hvor organisasjonen står (acknowledged, not_affected, affected, in_progress, remediated, needs_help; i varselets tråd kan id-en utelates; ✅ på varselet = acknowledged)\n\
             {p} campaigns: hva CSIRT ber organisasjonen om, siste status, fristene\n\
             {p} share [tlp:<merking>] [to community|<org>,group:<gruppe>] <tekst>: del tekst på bussen\n\
             {p} ack <id>: kvitter for et videresendt varsel til avsenderen (eller reager med ✅)\n\
             {p} ioc <verdi>: hva broen har sett om en verdi, innenfor det dette rommet kan se\n\
             {p} sighting <verdi> [notat]: meld en observasjon til CSIRT\n\
             {p} incident open \"<tittel>\" [tlp:<merking>] [with <org>,<org>]: åpne en hendelse med egne rom\n\
             {p} incident note <tekst>: legg til et notat (i et hendelsesrom)\n\
             {p} incident close [oppsummering]: lukk hendelsen (i et hendelsesrom)\n\
             Bare brukere i organisasjoner i katalogen kan bruke kommandoer."
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse("!varde", s).unwrap()
    }

    #[test]
    fn parses_commands() {
        assert!(parse("!varde", "hello").is_none());
        assert!(parse("!varde", "!vardex help").is_none());
        assert_eq!(p("!varde"), Ok(Command::Help));
        assert_eq!(p("!varde help"), Ok(Command::Help));
        assert_eq!(p("!varde status"), Ok(Command::Status));
        assert_eq!(p("!varde campaigns"), Ok(Command::Campaigns));
        assert_eq!(
            p("!varde status KCSIRT-2026-0042 remediated \"patched 14:05\""),
            Ok(Command::Report {
                about: Some("KCSIRT-2026-0042".into()),
                state: RemediationState::Remediated,
                note: Some("patched 14:05".into())
            })
        );
        // In the advisory's thread the id may be left out.
        assert_eq!(
            p("!varde status in_progress \"on it\""),
            Ok(Command::Report {
                about: None,
                state: RemediationState::InProgress,
                note: Some("on it".into())
            })
        );
        assert!(matches!(
            p("!varde status KCSIRT-2026-0042 patched"),
            Err(ParseError::State(_))
        ));
        assert!(matches!(
            p("!varde status KCSIRT-2026-0042"),
            Err(ParseError::Missing { .. })
        ));
        assert_eq!(
            p("!varde share tlp:amber to gjovik,group:health  we see it too"),
            Ok(Command::Share {
                label: Some(Tlp::Amber),
                to: Some(vec!["gjovik".into(), "group:health".into()]),
                text: "we see it too".into()
            })
        );
        assert_eq!(
            p("!varde share hello"),
            Ok(Command::Share {
                label: None,
                to: None,
                text: "hello".into()
            })
        );
        assert!(matches!(
            p("!varde share tlp:purple x"),
            Err(ParseError::BadLabel(_))
        ));
        assert!(matches!(p("!varde share"), Err(ParseError::Missing { .. })));
        assert_eq!(
            p("!varde sighting 203.0.113.9 seen in proxy logs"),
            Ok(Command::Sighting {
                value: "203.0.113.9".into(),
                note: Some("seen in proxy logs".into())
            })
        );
        assert_eq!(
            p("!varde incident open \"Ransomware at the school\" tlp:amber with lillehammer"),
            Ok(Command::IncidentOpen {
                title: "Ransomware at the school".into(),
                label: Some(Tlp::Amber),
                with: vec!["lillehammer".into()]
            })
        );
        assert_eq!(p("!varde incident open title"), Err(ParseError::Unquoted));
        assert_eq!(
            p("!varde incident close contained"),
            Ok(Command::IncidentClose {
                summary: Some("contained".into())
            })
        );
        assert!(matches!(p("!varde frobnicate"), Err(ParseError::Unknown(w)) if w == "frobnicate"));
        assert!(help(Language::Nb, "!varde").contains("!varde incident close"));
    }
}
