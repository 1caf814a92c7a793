//! One hash over several parts, for the bridge's deterministic ids
//! (Matrix transaction ids, envelope ids derived from Matrix events) and
//! the `ioc` index. Parts are separated by a zero byte, which none of them
//! (ids, room ids, normalised values) can contain, so `["ab", "c"]` and
//! `["a", "bc"]` never collide.
//!
//! Anything another organisation could compute in advance is keyed with the
//! store's secret (`keyed`): envelope ids derived from public Matrix ids
//! would otherwise let a member publish first under the id this bridge is
//! about to use (and so occupy its slot in the broker's duplicate window),
//! and an unkeyed index of indicator values can be brute-forced from a
//! stolen store (every IPv4 address in seconds).

use sha2::{Digest, Sha256};

/// An unkeyed digest: for values that are not secret and need no
/// protection from being predicted (Matrix transaction ids, which only the
/// bot's own device can use).
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

/// A keyed digest (BLAKE3 in keyed mode, a PRF): unpredictable without
/// `key`, stable with it.
pub fn keyed(key: &[u8; 32], parts: &[&str]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(&[0]);
        }
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_separated() {
        assert_ne!(of(&["ab", "c"]), of(&["a", "bc"]));
        let k = [7u8; 32];
        assert_ne!(keyed(&k, &["ab", "c"]), keyed(&k, &["a", "bc"]));
    }

    #[test]
    fn keyed_depends_on_the_key() {
        assert_ne!(
            keyed(&[1; 32], &["ack", "x"]),
            keyed(&[2; 32], &["ack", "x"])
        );
        assert_eq!(
            keyed(&[1; 32], &["ack", "x"]),
            keyed(&[1; 32], &["ack", "x"])
        );
    }
}
