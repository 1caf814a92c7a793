//! Members' events in the bot's rooms, from the sync: the sync handler
//! here, the parse in varde-bridge-core (`timeline::parse`).

use matrix_sdk::Room;
use matrix_sdk::ruma::events::AnySyncTimelineEvent;
use matrix_sdk::ruma::serde::Raw;
use serde_json::Value;
use tokio::sync::mpsc;

pub use varde_bridge_core::timeline::{FileRef, RoomEvent, What, parse};

use crate::matrix::Bot;

/// Registers the sync handler that feeds `tx`. Register before the first
/// sync so that events missed while the bridge was down are seen.
pub fn listen(bot: &Bot, tx: mpsc::UnboundedSender<RoomEvent>) {
    let me = bot.user_id.to_string();
    bot.client
        .add_event_handler(move |raw: Raw<AnySyncTimelineEvent>, room: Room| {
            let tx = tx.clone();
            let me = me.clone();
            async move {
                let Ok(json) = serde_json::from_str::<Value>(raw.json().get()) else {
                    return;
                };
                let Some(ev) = parse(room.room_id().as_str(), &json) else {
                    return;
                };
                // The bot's own posts are never relayed: no loops.
                if ev.sender == me {
                    return;
                }
                let _ = tx.send(ev);
            }
        });
}
