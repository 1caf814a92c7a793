//! `!varde status`: the bus connection, the lag and the directory version,
//! from the bridge's own health figures (no bus or room access).

use std::sync::atomic::Ordering;

use varde_bus::directory::VerifiedDirectory;

use crate::config::Language;
use crate::room_side::RoomSide;

impl RoomSide {
    pub(super) fn status(&self, lang: Language, dir: &VerifiedDirectory) -> String {
        let h = &self.metrics.health;
        let connected = h.bus_connected.load(Ordering::Relaxed);
        let last = h.last_bus_ms.load(Ordering::Relaxed);
        let last = if last == 0 {
            "-".to_string()
        } else {
            jiff::Timestamp::from_millisecond(last)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        };
        let lag = self.metrics.lag().map_or("-".into(), |n| n.to_string());
        match lang {
            Language::En => format!(
                "Bus: {}. Lag: {lag} messages waiting. Last message: {last}. Directory version {}.",
                if connected {
                    "connected"
                } else {
                    "NOT connected"
                },
                dir.version()
            ),
            Language::Nb => format!(
                "Buss: {}. Etterslep: {lag} meldinger venter. Siste melding: {last}. Katalogversjon {}.",
                if connected {
                    "tilkoblet"
                } else {
                    "IKKE tilkoblet"
                },
                dir.version()
            ),
        }
    }
}
