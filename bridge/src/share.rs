//! Sharing rooms, both ways.
//!
//! Out: a member's message (text, formatted text, reply, edit, redaction,
//! small file) becomes a `chat` envelope signed by the bridge, attributed
//! to the member (Matrix id, display name, org), with an id derived from
//! the Matrix event so that seeing the event again never shares it twice.
//! A reply or an edit is never labelled lower than what it answers: it
//! takes the higher label and, with it, that message's audience.
//!
//! In: a `chat` envelope from another room becomes an attributed post
//! ("Kari Nordmann (Gjøvik kommune): …"); replies, edits and redactions are
//! mapped to this room's events through the store.

use base64::Engine as _;
use matrix_sdk::Room;
use matrix_sdk::ruma::EventId;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::events::relation::Reply;
use matrix_sdk::ruma::events::room::message::{
    Relation, ReplacementMetadata, RoomMessageEventContent,
};
use uuid::Uuid;
use varde_bus::directory::VerifiedDirectory;
use varde_schemas::payload::{Attachment, Chat, ChatAction, Person};
use varde_schemas::{Audience, Header, Tlp};

use crate::config::Share;
use crate::matrix::{Bot, SendError, txn_id};
use crate::message::Message;
use crate::render::{badge, escape, safe_subset};
use crate::store::{Part, Store};
use crate::timeline::RoomEvent;

/// Where a room's messages go: a configured sharing room or an incident
/// room.
#[derive(Clone, Debug)]
pub struct Target {
    pub label: Tlp,
    pub audience: Audience,
    pub conversation: String,
}

impl From<&Share> for Target {
    fn from(s: &Share) -> Self {
        Target {
            label: s.label,
            audience: s.audience.clone(),
            conversation: s.conversation.clone(),
        }
    }
}

/// A chat envelope to publish.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub id: Uuid,
    pub chat: Chat,
    pub label: Tlp,
    pub audience: Audience,
}

/// Why a member's event is not shared.
#[derive(Debug, thiserror::Error)]
pub enum NotShared {
    #[error("a redaction or edit of a message that was not shared from this room")]
    NotOurs,
    #[error("nothing to share")]
    Empty,
}

/// Whether a member's event is shared, and as what.
#[derive(Debug)]
pub enum Decision {
    Share(Box<Outgoing>),
    NotShared(NotShared),
}

/// The label and audience of an answer to `row`: the higher of the two
/// labels, and the audience that goes with it.
pub fn at_least(target: &Target, replied: Option<(Tlp, &Audience)>) -> (Tlp, Audience) {
    match replied {
        Some((label, audience)) if label > target.label => (label, audience.clone()),
        _ => (target.label, target.audience.clone()),
    }
}

/// Builds the chat envelope for a member's event (files are attached by
/// the caller, who downloads them).
pub fn outgoing(
    store: &Store,
    target: &Target,
    ev: &RoomEvent,
    author: Person,
) -> Result<Decision, crate::store::StoreError> {
    let id = store.derived_id(&["chat", &ev.room_id, &ev.event_id]);
    let mut chat = Chat {
        conversation: target.conversation.clone(),
        action: ChatAction::Message,
        author,
        text: String::new(),
        html: None,
        reply_to: None,
        target: None,
        attachment: None,
        origin_room: Some(ev.room_id.clone()),
        origin_event: Some(ev.event_id.clone()),
    };
    let mut replied = None;
    match &ev.what {
        crate::timeline::What::Message {
            body,
            html,
            reply_to,
            replaces,
            ..
        } => {
            chat.text = body.clone();
            chat.html = html.clone();
            if let Some(r) = reply_to
                && let Some(row) = store.event(&ev.room_id, r)?
            {
                chat.reply_to = Some(row.envelope_id);
                replied = Some(row);
            }
            if let Some(orig) = replaces {
                match store.event(&ev.room_id, orig)? {
                    // Only the member who wrote it edits it (Matrix does not
                    // stop another user from sending an `m.replace`).
                    Some(row) if row.origin && row.author.as_deref() == Some(&ev.sender) => {
                        chat.action = ChatAction::Edit;
                        chat.target = Some(row.envelope_id);
                        // An edit keeps the original's label and audience.
                        replied = Some(row);
                    }
                    _ => return Ok(Decision::NotShared(NotShared::NotOurs)),
                }
            }
            if chat.text.trim().is_empty() && chat.action == ChatAction::Message {
                return Ok(Decision::NotShared(NotShared::Empty));
            }
        }
        crate::timeline::What::Redaction { redacts } => match store.event(&ev.room_id, redacts)? {
            Some(row)
                if row.origin
                    && row.kind == "chat"
                    && row.author.as_deref() == Some(&ev.sender) =>
            {
                chat.action = ChatAction::Redact;
                chat.target = Some(row.envelope_id);
                replied = Some(row);
            }
            _ => return Ok(Decision::NotShared(NotShared::NotOurs)),
        },
        crate::timeline::What::Reaction { .. } => return Ok(Decision::NotShared(NotShared::Empty)),
    }
    let (label, audience) = at_least(target, replied.as_ref().map(|r| (r.label, &r.audience)));
    Ok(Decision::Share(Box::new(Outgoing {
        id,
        chat,
        label,
        audience,
    })))
}

/// A file as an attachment.
pub fn attachment(name: &str, mime: &str, data: &[u8]) -> Attachment {
    Attachment {
        name: name.to_string(),
        mime: mime.to_string(),
        size: data.len() as u64,
        data: base64::engine::general_purpose::STANDARD.encode(data),
    }
}

fn content(label: Tlp, who: &str, chat: &Chat) -> RoomMessageEventContent {
    // Another org's bridge may send more than Matrix takes in one event
    // (its own `max_text_bytes` is not ours to trust): cut, and say so.
    let (text, html) = if crate::render::too_long(&chat.text) {
        let cut = crate::render::cut_at(&chat.text, crate::render::MAX_TEXT - 512);
        (format!("{cut}… (shortened)"), None)
    } else {
        (chat.text.clone(), chat.html.as_deref().map(safe_subset))
    };
    let body = format!("{label} {who}: {text}");
    let shown = match html.filter(|h| !crate::render::too_long(h)) {
        Some(h) => h,
        None => escape(&text).replace('\n', "<br/>"),
    };
    let html = format!("{} <b>{}</b>: {shown}", badge(label), escape(who));
    RoomMessageEventContent::text_html(body, html).add_mentions(Mentions::new())
}

/// Posts a chat envelope into `room` (the policy check was done by the
/// caller). Idempotent through the store and derived transaction ids.
/// `Ok(false)`: refused, an edit or redaction of someone else's words
/// (logged, and done for this room).
pub async fn post(
    bot: &Bot,
    store: &Store,
    dir: &VerifiedDirectory,
    room: &Room,
    msg: &Message,
    chat: &Chat,
) -> Result<bool, SendError> {
    let rid = room.room_id().as_str().to_string();
    let id = msg.header.id;
    let key = id.to_string();
    let who = crate::author::attribution(dir, &msg.header.sender.org, &chat.author);
    let target_event = |t: Option<Uuid>| -> Result<Option<String>, SendError> {
        Ok(match t {
            Some(t) => store.event_of(t, &rid)?.map(|r| r.event_id),
            None => None,
        })
    };
    if matches!(chat.action, ChatAction::Edit | ChatAction::Redact)
        && let Some(t) = chat.target
        && let Some(row) = store.event_of(t, &rid)?
        && let Err(why) = own_words(&msg.header, chat, &row)
    {
        tracing::warn!(room = %rid, envelope = %id, sender = %msg.header.sender.org, target = %t, %why, "edit or redaction of another author's message refused");
        store.mark_done(id, &rid, None)?;
        return Ok(false);
    }
    match chat.action {
        ChatAction::Redact => {
            if let Some(ev) = target_event(chat.target)?
                && let Ok(ev) = EventId::parse(&ev)
            {
                room.redact(&ev, None, Some(txn_id(&key, &rid, Part::Redact).into()))
                    .await?;
            }
            store.mark_done(id, &rid, None)?;
        }
        ChatAction::Edit => {
            let c = content(msg.header.label, &who, chat);
            let sent = match target_event(chat.target)? {
                Some(orig) => {
                    // A shared message mentions nobody, nor does its edit.
                    let meta = ReplacementMetadata::new(
                        crate::matrix::event_id(&orig)?,
                        Some(Mentions::new()),
                    );
                    let edit = c.make_replacement(meta);
                    bot.send(room, edit, &txn_id(&key, &rid, Part::Post))
                        .await?
                }
                // The original never reached this room: show the new text.
                None => bot.send(room, c, &txn_id(&key, &rid, Part::Post)).await?,
            };
            store.record_done(id, &rid, Part::Post, &sent)?;
        }
        ChatAction::Message => {
            let mut c = content(msg.header.label, &who, chat);
            if let Some(r) = target_event(chat.reply_to)? {
                c.relates_to = Some(Relation::Reply(Reply::with_event_id(
                    crate::matrix::event_id(&r)?,
                )));
            }
            let sent = bot.send_once(store, room, &key, Part::Post, c).await?;
            store.record_event_by(
                &rid,
                &sent,
                &msg.header,
                false,
                chat.author.matrix_user.as_deref(),
            )?;
            if let Some(a) = &chat.attachment
                && store.part(&key, &rid, Part::File)?.is_none()
            {
                match base64::engine::general_purpose::STANDARD.decode(&a.data) {
                    Ok(data) => {
                        let mime = a
                            .mime
                            .parse::<mime::Mime>()
                            .unwrap_or(mime::APPLICATION_OCTET_STREAM);
                        let f = bot
                            .send_file_once(store, room, &key, Part::File, (&a.name, &mime, data))
                            .await?;
                        store.record_event(&rid, &f, &msg.header, false)?;
                    }
                    Err(e) => {
                        tracing::warn!(envelope = %id, error = %e, "attachment is not base64; text posted without it");
                        store.record(&key, &rid, Part::File, None)?;
                    }
                }
            }
            store.mark_done(id, &rid, Some(&sent))?;
        }
    }
    Ok(true)
}

/// Why an edit or redaction may not touch a message.
#[derive(Debug, thiserror::Error)]
pub enum NotOwnWords {
    #[error("it targets a message of `{owner}`, not of the sender `{sender}`")]
    OtherOrg { owner: String, sender: String },
    #[error("it targets another member's message")]
    OtherUser,
    #[error("it targets a message that is not a chat message")]
    NotChat,
}

/// Whether `chat` (an edit or redaction) may change the message of `row`:
/// only the sender org that wrote it, and for members' words only the
/// same Matrix user. Advisories, alerts and the rest are never changed by
/// chat; advisories change through revisions of their own sender.
pub fn own_words(
    header: &Header,
    chat: &Chat,
    row: &crate::store::EventRow,
) -> Result<(), NotOwnWords> {
    if row.sender_org != header.sender.org.as_str() {
        return Err(NotOwnWords::OtherOrg {
            owner: row.sender_org.clone(),
            sender: header.sender.org.to_string(),
        });
    }
    if row.kind != "chat" {
        return Err(NotOwnWords::NotChat);
    }
    match (&row.author, &chat.author.matrix_user) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(NotOwnWords::OtherUser),
    }
}
