//! The `seen_values` table: the `!varde ioc` index. It holds keyed digests
//! of normalised values pointing at sealed envelopes, never the values.

use rusqlite::params;
use uuid::Uuid;
use varde_schemas::payload::IndicatorType;

use super::{Result, Store, StoredEnvelope, now_ms};

impl Store {
    /// The keyed digest under which a value is indexed.
    fn value_hash(&self, kind: IndicatorType, value: &str) -> String {
        hex::encode(self.digest(&[kind.as_str(), value]))
    }

    /// Indexes the values of a message (digests only) and keeps its sealed
    /// envelope for `ioc`.
    pub fn index_values(
        &self,
        envelope: &StoredEnvelope,
        values: &[(IndicatorType, String)],
    ) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        self.with("indexing values", |c| {
            let tx = c.unchecked_transaction()?;
            let id = envelope.envelope_id.to_string();
            tx.execute(
                "INSERT OR IGNORE INTO seen_envelopes (envelope_id, subject, envelope, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![id, envelope.subject, envelope.bytes, now_ms()],
            )?;
            {
                let mut st = tx.prepare(
                    "INSERT OR IGNORE INTO seen_values (value_hash, envelope_id) VALUES (?1, ?2)",
                )?;
                for (kind, value) in values {
                    st.execute(params![self.value_hash(*kind, value), id])?;
                }
            }
            tx.commit()
        })
    }

    /// Sealed envelopes that mention the value, newest first.
    pub fn seen(
        &self,
        kind: IndicatorType,
        value: &str,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>> {
        self.with("looking up a value", |c| {
            let mut st = c.prepare(
                "SELECT e.envelope_id, e.subject, e.envelope FROM seen_values v JOIN seen_envelopes e ON e.envelope_id = v.envelope_id WHERE v.value_hash = ?1 ORDER BY e.at_ms DESC LIMIT ?2",
            )?;
            let rows = st.query_map(
                params![self.value_hash(kind, value), i64::try_from(limit).unwrap_or(50)],
                |r| {
                    let id: String = r.get(0)?;
                    Ok(StoredEnvelope {
                        envelope_id: Uuid::parse_str(&id).unwrap_or_default(),
                        subject: r.get(1)?,
                        bytes: r.get(2)?,
                    })
                },
            )?;
            rows.collect()
        })
    }
}
