use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Person;

/// What a chat envelope does to the conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatAction {
    #[default]
    Message,
    Edit,
    Redact,
}

/// A member's message relayed from a Matrix room (or the CLI).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Chat {
    /// Conversation key: bridges subscribe rooms to conversations
    /// (`community`, `incident:<uuid>`, a configured name).
    pub conversation: String,
    #[serde(default)]
    pub action: ChatAction,
    pub author: Person,
    /// Plain text (empty for a redaction).
    #[serde(default)]
    pub text: String,
    /// Sanitised `org.matrix.custom.html` body, if the origin had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Envelope id of the message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Uuid>,
    /// For edits and redactions: the envelope id of the original message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Origin room and event, so the origin bridge can recognise its own
    /// messages and never re-post them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_event: Option<String>,
}

/// A small file carried inline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// Standard base64 of the file contents.
    pub data: String,
}
