//! `!varde ioc <value>`: what the bridge has seen about a value, limited to
//! what this room's members may see.

use varde_bus::directory::VerifiedDirectory;
use varde_schemas::Tlp;
use varde_schemas::payload::IndicatorType;

use super::{CommandError, Refusal, Request};
use crate::config::Language;
use crate::message::Message;
use crate::policy::{self, RoomRules, RoomView};
use crate::room_side::RoomSide;

/// How many recent messages about a value are looked at.
const RECENT: usize = 20;

impl RoomSide {
    pub(super) async fn ioc(&self, req: &Request<'_>, value: &str) -> Result<String, CommandError> {
        let Request {
            room,
            ev,
            lang,
            dir,
            ..
        } = *req;
        let (kind, value) = crate::ioc::understand(value).map_err(Refusal)?;
        // The live member list: the answer is a post into this room.
        let view = self.bot.view(room, true).await?;
        let rules = RoomRules {
            ceiling: self
                .configured(&ev.room_id)
                .map_or(Tlp::Green, |c| c.ceiling),
            red: false,
        };
        // Opened again with the current directory: a message whose key was
        // revoked or that expired since says nothing any more.
        let seen: Vec<Message> = self
            .store
            .seen(kind, &value, RECENT)?
            .iter()
            .filter_map(|e| crate::message::open_stored(&self.publisher.identity, dir, e).ok())
            .collect();
        let (lines, hidden) = visible(dir, rules, &view, &seen);
        Ok(answer(lang, kind, &value, &lines, hidden))
    }
}

/// One line per message this room may see (the same check as a post into
/// it), and how many more it may not.
fn visible(
    dir: &VerifiedDirectory,
    rules: RoomRules,
    view: &RoomView,
    seen: &[Message],
) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut hidden = 0usize;
    for m in seen {
        if policy::check(dir, rules, view, m.header.label, &m.header.audience).is_err() {
            hidden += 1;
            continue;
        }
        let name = dir
            .org(m.header.sender.org.as_str())
            .map(|o| o.name.clone())
            .unwrap_or_else(|| m.header.sender.org.to_string());
        lines.push(crate::ioc::line(&m.header, &m.payload, &name));
    }
    (lines, hidden)
}

/// The answer: what may be seen, and only the count of the rest (never
/// their labels, senders or ids).
fn answer(
    lang: Language,
    kind: IndicatorType,
    value: &str,
    lines: &[String],
    hidden: usize,
) -> String {
    let mut text = match (lang, lines.is_empty()) {
        (Language::En, true) => {
            format!("Nothing seen about {kind} {value} that this room may see.")
        }
        (Language::Nb, true) => {
            format!("Ingenting sett om {kind} {value} som dette rommet kan se.")
        }
        (Language::En, false) => format!("Seen about {kind} {value}:"),
        (Language::Nb, false) => format!("Sett om {kind} {value}:"),
    };
    for l in lines {
        text.push_str("\n- ");
        text.push_str(l);
    }
    if hidden > 0 {
        text.push_str(&match lang {
            Language::En => format!("\n({hidden} more above what this room may see.)"),
            Language::Nb => format!("\n({hidden} til over det dette rommet kan se.)"),
        });
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use uuid::Uuid;
    use varde_schemas::payload::{Alert, Severity};
    use varde_schemas::{Audience, Header, Kind, OrgId, Payload, Sender};
    use varde_testkit::synthetic::Synthetic;

    use crate::store::StoredEnvelope;

    fn alert(dir: &VerifiedDirectory, sender: &str, label: Tlp, audience: Audience) -> Message {
        let key = dir.org(sender).unwrap().keys[0].id;
        let header = Header {
            v: 1,
            id: Uuid::now_v7(),
            kind: Kind::Alert,
            label,
            sender: Sender {
                org: OrgId::new(sender).unwrap(),
                key,
            },
            audience,
            created: jiff::Timestamp::now(),
            expires: None,
        };
        let payload = Payload::Alert(Alert {
            title: format!("{label} from {sender}"),
            body: "evil.example".into(),
            severity: Severity::High,
            urgent: false,
            references: vec![],
            indicators: vec![],
            advisory_id: None,
        });
        let envelope = StoredEnvelope {
            envelope_id: header.id,
            subject: String::new(),
            bytes: vec![],
        };
        Message {
            header,
            payload,
            envelope,
        }
    }

    fn gjovik_room() -> RoomView {
        RoomView {
            encrypted: true,
            members: vec!["@kari:gjovik.test".into()],
            open_to_join: false,
            world_readable: false,
        }
    }

    fn directory() -> std::sync::Arc<VerifiedDirectory> {
        let mut s = Synthetic::demo();
        s.org_mut("gjovik").unwrap().matrix.servers = vec!["gjovik.test".into()];
        s.handle().unwrap().current()
    }

    #[test]
    fn a_room_sees_what_it_may_and_only_a_count_of_the_rest() {
        let dir = directory();
        let gjovik = OrgId::new("gjovik").unwrap();
        let lillehammer = OrgId::new("lillehammer").unwrap();
        let seen = [
            alert(&dir, "kcsirt", Tlp::Green, Audience::community()),
            // Above the room's ceiling.
            alert(&dir, "kcsirt", Tlp::Amber, Audience::orgs([gjovik.clone()])),
            // Another org's business.
            alert(&dir, "kcsirt", Tlp::Amber, Audience::orgs([lillehammer])),
        ];
        let green = RoomRules {
            ceiling: Tlp::Green,
            red: false,
        };
        let (lines, hidden) = visible(&dir, green, &gjovik_room(), &seen);
        assert_eq!(hidden, 2);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("TLP:GREEN alert"), "{}", lines[0]);
        assert!(lines[0].contains("KommuneCSIRT"), "{}", lines[0]);

        // An AMBER room of gjovik's members sees gjovik's AMBER too, never
        // lillehammer's.
        let amber = RoomRules {
            ceiling: Tlp::Amber,
            red: false,
        };
        let (lines, hidden) = visible(&dir, amber, &gjovik_room(), &seen);
        assert_eq!((lines.len(), hidden), (2, 1));
        assert!(lines.iter().all(|l| !l.contains("lillehammer")));

        // An unencrypted room sees no AMBER, whatever its ceiling.
        let plain = RoomView {
            encrypted: false,
            ..gjovik_room()
        };
        let (lines, hidden) = visible(&dir, amber, &plain, &seen);
        assert_eq!((lines.len(), hidden), (1, 2));
        assert!(lines[0].starts_with("TLP:GREEN"), "{}", lines[0]);
    }

    #[test]
    fn the_answer_counts_what_is_hidden_without_naming_it() {
        let lines = vec!["TLP:GREEN alert x (KommuneCSIRT, 2026-11-30 10:00 UTC)".to_string()];
        let text = answer(
            Language::En,
            IndicatorType::Domain,
            "evil.example",
            &lines,
            2,
        );
        assert_eq!(
            text,
            "Seen about domain evil.example:\n- TLP:GREEN alert x (KommuneCSIRT, 2026-11-30 10:00 UTC)\n(2 more above what this room may see.)"
        );
        assert_eq!(
            answer(Language::Nb, IndicatorType::Domain, "evil.example", &[], 0),
            "Ingenting sett om domain evil.example som dette rommet kan se."
        );
        assert!(
            answer(Language::En, IndicatorType::Domain, "evil.example", &[], 1)
                .ends_with("(1 more above what this room may see.)")
        );
    }
}
