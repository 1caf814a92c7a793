//! The `acks` table: one `ack` per member and message, claimed before it is
//! published.

use rusqlite::params;
use uuid::Uuid;

use super::{Result, Store, now_ms};

impl Store {
    /// Claims the one acknowledgement of `of` by `user`; false when one was
    /// sent already.
    pub fn claim_ack(&self, of: Uuid, user: &str, ack: Uuid) -> Result<bool> {
        self.with("recording an ack", |c| {
            c.execute(
                "INSERT OR IGNORE INTO acks (of_envelope, user_id, ack_envelope, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![of.to_string(), user, ack.to_string(), now_ms()],
            )
            .map(|n| n == 1)
        })
    }

    /// Gives up a claim whose ack could not be published.
    pub fn release_ack(&self, of: Uuid, user: &str) -> Result<()> {
        self.with("removing an ack", |c| {
            c.execute(
                "DELETE FROM acks WHERE of_envelope = ?1 AND user_id = ?2",
                params![of.to_string(), user],
            )
            .map(|_| ())
        })
    }
}
