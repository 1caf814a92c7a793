//! Which configured rooms a bus message is for: the room's filters (kinds,
//! groups, label range). Whether the room may *show* it is the policy's
//! question (`policy.rs`), asked later against the live room.

use varde_schemas::payload::Chat;
use varde_schemas::{Header, KeyId, Kind, Payload};

use crate::config::Room;

/// Whether a sharing room takes a `chat` envelope: same conversation, and
/// not the room it came from (no echo). The label is the policy's
/// question, asked before the post.
pub fn wants_chat(
    room: &Room,
    room_id: &str,
    header: &Header,
    chat: &Chat,
    own_key: KeyId,
) -> bool {
    room.share
        .as_ref()
        .is_some_and(|s| s.conversation == chat.conversation)
        && !is_echo(header, chat, own_key, room_id)
}

/// Whether a chat envelope would come back to the room it came from (the
/// bridge's own post, from this room).
pub fn is_echo(header: &Header, chat: &Chat, own_key: KeyId, room_id: &str) -> bool {
    header.sender.key == own_key && chat.origin_room.as_deref() == Some(room_id)
}

/// Whether `room`'s filters select this message.
pub fn wants(room: &Room, header: &Header, payload: &Payload) -> bool {
    if header.kind == Kind::Chat {
        return false;
    }
    if !room.kinds.contains(&header.kind) {
        return false;
    }
    if header.label < room.min_label || header.label > room.max_label {
        return false;
    }
    if room.groups.is_empty() {
        return true;
    }
    // A message says which sectors it concerns through its audience's
    // groups and (advisories) its sectors. One that names none concerns
    // everybody and passes.
    let sectors = match payload {
        Payload::Advisory(a) => a.sectors.as_slice(),
        _ => &[],
    };
    let named: Vec<_> = header.audience.groups.iter().chain(sectors).collect();
    named.is_empty() || named.iter().any(|g| room.groups.contains(g))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::{Language, RoomRef};
    use jiff::Timestamp;
    use uuid::Uuid;
    use varde_schemas::payload::{Alert, Severity};
    use varde_schemas::{Audience, GroupId, KeyId, Kind, OrgId, Sender, Tlp};

    fn room() -> Room {
        Room {
            index: 0,
            reference: RoomRef::Id("!a:b".into()),
            name: "a".into(),
            kinds: vec![Kind::Alert],
            groups: vec![GroupId::new("health").unwrap()],
            min_label: Tlp::Clear,
            max_label: Tlp::Amber,
            ceiling: Tlp::Amber,
            language: Language::En,
            red: false,
            urgent_alerts: false,
            digest: None,
            share: None,
        }
    }

    fn msg(kind: Kind, label: Tlp, audience: Audience) -> (Header, Payload) {
        let header = Header {
            v: 1,
            id: Uuid::now_v7(),
            kind,
            label,
            sender: Sender {
                org: OrgId::new("kcsirt").unwrap(),
                key: KeyId([0; 8]),
            },
            audience,
            created: Timestamp::now(),
            expires: None,
        };
        let payload = Payload::Alert(Alert {
            title: "t".into(),
            body: "b".into(),
            severity: Severity::High,
            urgent: false,
            references: vec![],
            indicators: vec![],
            advisory_id: None,
        });
        (header, payload)
    }

    #[test]
    fn filters() {
        let r = room();
        let health = Audience::groups([GroupId::new("health").unwrap()]);
        let school = Audience::groups([GroupId::new("school").unwrap()]);
        let (h, p) = msg(Kind::Alert, Tlp::Green, health.clone());
        assert!(wants(&r, &h, &p));
        let (h, p) = msg(Kind::Alert, Tlp::Green, school);
        assert!(!wants(&r, &h, &p));
        let (h, p) = msg(Kind::Alert, Tlp::Clear, Audience::community());
        assert!(wants(&r, &h, &p), "no group named: concerns everybody");
        let (h, p) = msg(Kind::Advisory, Tlp::Green, health.clone());
        assert!(!wants(&r, &h, &p), "kind filtered");
        let (h, p) = msg(Kind::Alert, Tlp::AmberStrict, health);
        assert!(!wants(&r, &h, &p), "above the label range");
    }
}
