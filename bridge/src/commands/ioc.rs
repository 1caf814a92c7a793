//! `!varde ioc <value>`: what the bridge has seen about a value, limited to
//! what this room's members may see.

use varde_schemas::Tlp;

use super::{CommandError, Refusal, Request};
use crate::config::Language;
use crate::policy::{self, RoomRules};
use crate::room_side::RoomSide;

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
        let view = self.bot.view(room, true).await?;
        let rules = RoomRules {
            ceiling: self
                .configured(&ev.room_id)
                .map_or(Tlp::Green, |c| c.ceiling),
            red: false,
        };
        let mut lines = Vec::new();
        let mut hidden = 0usize;
        for e in self.store.seen(kind, &value, 20)? {
            let Ok(m) = crate::message::open_stored(&self.publisher.identity, dir, &e) else {
                continue;
            };
            if policy::check(dir, rules, &view, m.header.label, &m.header.audience).is_err() {
                hidden += 1;
                continue;
            }
            let name = dir
                .org(m.header.sender.org.as_str())
                .map(|o| o.name.clone())
                .unwrap_or_else(|| m.header.sender.org.to_string());
            lines.push(crate::ioc::line(&m.header, &m.payload, &name));
        }
        let head = match (lang, lines.is_empty()) {
            (Language::En, true) => {
                format!("Nothing seen about {kind} {value} that this room may see.")
            }
            (Language::Nb, true) => {
                format!("Ingenting sett om {kind} {value} som dette rommet kan se.")
            }
            (Language::En, false) => format!("Seen about {kind} {value}:"),
            (Language::Nb, false) => format!("Sett om {kind} {value}:"),
        };
        let mut text = head;
        for l in lines {
            text.push_str("\n- ");
            text.push_str(&l);
        }
        if hidden > 0 {
            text.push_str(&match lang {
                Language::En => format!("\n({hidden} more above what this room may see.)"),
                Language::Nb => format!("\n({hidden} til over det dette rommet kan se.)"),
            });
        }
        Ok(text)
    }
}
