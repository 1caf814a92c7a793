//! Durations as operators write them: `30s`, `2m`, `24h`, `7d`.

use std::time::Duration;

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like 30s, 2m, 24h or 7d: {e}"))
}

/// `now - d` as a timestamp (for `--since`).
pub fn ago(d: Duration) -> jiff::Timestamp {
    let d = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
    jiff::Timestamp::now()
        .checked_sub(d)
        .unwrap_or(jiff::Timestamp::MIN)
}
