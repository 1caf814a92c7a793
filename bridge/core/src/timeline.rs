//! What members do in the bot's rooms, as the bridge needs it: messages
//! (with reply, edit and file details), redactions and reactions, read from
//! the sync (decrypted by matrix-sdk in encrypted rooms) and handed, in
//! order, to the room side (varde-bridge's `conversation.rs`). The parse
//! is here, apart from the sync, so that it is unit-tested and fuzzed
//! without building matrix-sdk.

use ruma::events::room::MediaSource;
use ruma::events::room::message::{MessageType, RoomMessageEventContent};
use serde_json::Value;

/// A file a member sent.
#[derive(Clone, Debug)]
pub struct FileRef {
    pub name: String,
    pub mime: String,
    pub size: Option<u64>,
    pub source: MediaSource,
}

#[derive(Clone, Debug)]
pub enum What {
    Message {
        msgtype: String,
        body: String,
        html: Option<String>,
        /// Event id this message replies to.
        reply_to: Option<String>,
        /// Event id this message edits (`m.replace`).
        replaces: Option<String>,
        /// Root of the thread this message is in (`m.thread`).
        thread_root: Option<String>,
        file: Option<FileRef>,
    },
    Redaction {
        redacts: String,
    },
    Reaction {
        key: String,
        target: String,
    },
}

/// One member event in a room the bot is in.
#[derive(Clone, Debug)]
pub struct RoomEvent {
    pub room_id: String,
    pub event_id: String,
    pub sender: String,
    pub ts_ms: i64,
    /// Size of the event's JSON, for limits.
    pub size: usize,
    pub what: What,
}

fn s(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Drops a reply fallback (`> <@user> quoted…` lines and the blank line
/// after them) from the start of a reply's body.
fn strip_reply_fallback(body: &str) -> String {
    if !body.starts_with("> ") {
        return body.to_string();
    }
    let mut lines = body.lines().skip_while(|l| l.starts_with("> "));
    let mut rest: Vec<&str> = Vec::new();
    if let Some(first) = lines.next()
        && !first.is_empty()
    {
        rest.push(first);
    }
    rest.extend(lines);
    rest.join("\n")
}

fn strip_html_reply(html: &str) -> String {
    match (html.find("<mx-reply>"), html.find("</mx-reply>")) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}", &html[..a], &html[b + "</mx-reply>".len()..])
        }
        _ => html.to_string(),
    }
}

/// Reads a timeline event as JSON; `None` for what the bridge ignores.
pub fn parse(room_id: &str, json: &Value) -> Option<RoomEvent> {
    let event_id = s(json, "/event_id")?;
    let sender = s(json, "/sender")?;
    let ts_ms = json
        .get("origin_server_ts")
        .and_then(Value::as_i64)
        .unwrap_or_default();
    let size = serde_json::to_vec(json)
        .map(|b| b.len())
        .unwrap_or_default();
    let content = json.get("content")?;
    let what = match json.get("type").and_then(Value::as_str)? {
        "m.room.message" => {
            let replaces = (s(content, "/m.relates_to/rel_type").as_deref() == Some("m.replace"))
                .then(|| s(content, "/m.relates_to/event_id"))
                .flatten();
            // An edit's new text is in m.new_content.
            let shown = match (&replaces, content.get("m.new_content")) {
                (Some(_), Some(new)) => new,
                _ => content,
            };
            let msgtype = s(shown, "/msgtype").unwrap_or_default();
            let reply_to = s(content, "/m.relates_to/m.in_reply_to/event_id");
            let thread_root = (s(content, "/m.relates_to/rel_type").as_deref() == Some("m.thread"))
                .then(|| s(content, "/m.relates_to/event_id"))
                .flatten();
            let mut body = s(shown, "/body").unwrap_or_default();
            let mut html = (s(shown, "/format").as_deref() == Some("org.matrix.custom.html"))
                .then(|| s(shown, "/formatted_body"))
                .flatten();
            if reply_to.is_some() {
                body = strip_reply_fallback(&body);
                html = html.map(|h| strip_html_reply(&h));
            }
            let file = match msgtype.as_str() {
                "m.file" | "m.image" | "m.audio" | "m.video" => {
                    serde_json::from_value::<RoomMessageEventContent>(shown.clone())
                        .ok()
                        .and_then(|c| file_ref(c.msgtype))
                }
                _ => None,
            };
            What::Message {
                msgtype,
                body,
                html,
                reply_to,
                replaces,
                thread_root,
                file,
            }
        }
        "m.room.redaction" => {
            // Room v11 has `redacts` in the content, older versions at the top.
            let redacts = s(content, "/redacts").or_else(|| s(json, "/redacts"))?;
            What::Redaction { redacts }
        }
        "m.reaction" => {
            if s(content, "/m.relates_to/rel_type").as_deref() != Some("m.annotation") {
                return None;
            }
            What::Reaction {
                key: s(content, "/m.relates_to/key")?,
                target: s(content, "/m.relates_to/event_id")?,
            }
        }
        _ => return None,
    };
    Some(RoomEvent {
        room_id: room_id.to_string(),
        event_id,
        sender,
        ts_ms,
        size,
        what,
    })
}

fn file_ref(m: MessageType) -> Option<FileRef> {
    let (name, mime, size, source) = match m {
        MessageType::File(f) => {
            let info = f.info.as_deref();
            (
                f.filename.clone().unwrap_or(f.body.clone()),
                info.and_then(|i| i.mimetype.clone()),
                info.and_then(|i| i.size.map(u64::from)),
                f.source,
            )
        }
        MessageType::Image(f) => {
            let info = f.info.as_deref();
            (
                f.filename.clone().unwrap_or(f.body.clone()),
                info.and_then(|i| i.mimetype.clone()),
                info.and_then(|i| i.size.map(u64::from)),
                f.source,
            )
        }
        _ => return None,
    };
    Some(FileRef {
        name,
        mime: mime.unwrap_or_else(|| "application/octet-stream".into()),
        size,
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_edits_replies_redactions_reactions() {
        let edit = json!({
            "type": "m.room.message", "event_id": "$2", "sender": "@k:a", "origin_server_ts": 5,
            "content": {
                "msgtype": "m.text", "body": "* fixed",
                "m.new_content": { "msgtype": "m.text", "body": "fixed" },
                "m.relates_to": { "rel_type": "m.replace", "event_id": "$1" }
            }
        });
        let e = parse("!r:a", &edit).unwrap();
        match e.what {
            What::Message { body, replaces, .. } => {
                assert_eq!(body, "fixed");
                assert_eq!(replaces.as_deref(), Some("$1"));
            }
            other => panic!("{other:?}"),
        }
        let reply = json!({
            "type": "m.room.message", "event_id": "$3", "sender": "@k:a",
            "content": {
                "msgtype": "m.text", "body": "> <@o:a> hi\n\nyes",
                "m.relates_to": { "m.in_reply_to": { "event_id": "$1" } }
            }
        });
        match parse("!r:a", &reply).unwrap().what {
            What::Message { body, reply_to, .. } => {
                assert_eq!(body, "yes");
                assert_eq!(reply_to.as_deref(), Some("$1"));
            }
            other => panic!("{other:?}"),
        }
        let red = json!({"type": "m.room.redaction", "event_id": "$4", "sender": "@k:a", "content": {"redacts": "$1"}});
        assert!(
            matches!(parse("!r:a", &red).unwrap().what, What::Redaction { redacts } if redacts == "$1")
        );
        let react = json!({"type": "m.reaction", "event_id": "$5", "sender": "@k:a",
            "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$1", "key": "✅"}}});
        assert!(
            matches!(parse("!r:a", &react).unwrap().what, What::Reaction { key, .. } if key == "✅")
        );
        let state =
            json!({"type": "m.room.topic", "event_id": "$6", "sender": "@k:a", "content": {}});
        assert!(parse("!r:a", &state).is_none());
    }
}
