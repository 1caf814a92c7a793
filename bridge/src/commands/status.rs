//! `!varde status`: the bus connection, the lag and the directory version,
//! from the bridge's own health figures (no bus or room access).

use std::sync::atomic::Ordering;

use varde_bus::directory::VerifiedDirectory;

use crate::config::Language;
use crate::room_side::RoomSide;

impl RoomSide {
    pub(super) fn status(&self, lang: Language, dir: &VerifiedDirectory) -> String {
        let h = &self.metrics.health;
        let health = Health {
            connected: h.bus_connected.load(Ordering::Relaxed),
            last_bus_ms: h.last_bus_ms.load(Ordering::Relaxed),
            lag: self.metrics.lag(),
            directory_version: dir.version(),
        };
        health.said(lang)
    }
}

/// The figures `status` reports.
struct Health {
    connected: bool,
    /// When the last bus message came (Unix ms; 0 when none yet).
    last_bus_ms: i64,
    /// Messages waiting in the bridge's consumer, if known.
    lag: Option<u64>,
    directory_version: u64,
}

impl Health {
    fn said(&self, lang: Language) -> String {
        let last = if self.last_bus_ms == 0 {
            "-".to_string()
        } else {
            jiff::Timestamp::from_millisecond(self.last_bus_ms)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        };
        let lag = self.lag.map_or("-".into(), |n| n.to_string());
        let version = self.directory_version;
        match lang {
            Language::En => format!(
                "Bus: {}. Lag: {lag} messages waiting. Last message: {last}. Directory version {version}.",
                if self.connected {
                    "connected"
                } else {
                    "NOT connected"
                },
            ),
            Language::Nb => format!(
                "Buss: {}. Etterslep: {lag} meldinger venter. Siste melding: {last}. Katalogversjon {version}.",
                if self.connected {
                    "tilkoblet"
                } else {
                    "IKKE tilkoblet"
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_that_never_heard_the_bus_says_so() {
        let h = Health {
            connected: false,
            last_bus_ms: 0,
            lag: None,
            directory_version: 3,
        };
        assert_eq!(
            h.said(Language::En),
            "Bus: NOT connected. Lag: - messages waiting. Last message: -. Directory version 3."
        );
        assert_eq!(
            h.said(Language::Nb),
            "Buss: IKKE tilkoblet. Etterslep: - meldinger venter. Siste melding: -. Katalogversjon 3."
        );
    }

    #[test]
    fn a_connected_bridge_gives_its_lag_and_last_message_in_utc() {
        let h = Health {
            connected: true,
            // 2026-11-30 12:00:00 UTC
            last_bus_ms: 1_796_040_000_000,
            lag: Some(12),
            directory_version: 41,
        };
        assert_eq!(
            h.said(Language::En),
            "Bus: connected. Lag: 12 messages waiting. Last message: 2026-11-30 12:00:00 UTC. Directory version 41."
        );
    }
}
