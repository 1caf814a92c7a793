//! One SHA-256 over several parts, for the bridge's deterministic ids
//! (Matrix transaction ids, envelope ids derived from Matrix events) and
//! the `ioc` index. Parts are separated by a zero byte, which none of them
//! (ids, room ids, normalised values) can contain, so `["ab", "c"]` and
//! `["a", "bc"]` never collide.

use sha2::{Digest, Sha256};

pub fn of(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0]);
        }
        h.update(p.as_bytes());
    }
    h.finalize().into()
}
