//! A recipient's wrap in the current envelope format (`VRD2`): age's own
//! X25519 recipient stanza, stored as its two binary parts.
//!
//! The stanza is made by `age::x25519::Recipient::wrap_file_key` and opened
//! by `age::x25519::Identity::unwrap_stanza`: the same X25519, HKDF-SHA256
//! and ChaCha20-Poly1305 as in an age file. What is left out is the file
//! around it (version line, header MAC, STREAM nonce and tag, and the random
//! grease stanza the age crate adds to every file): 64 bytes a key instead
//! of about 335. A community message is wrapped for every key of the
//! directory (1,503 at national size), so that framing was 78% of its bytes.
//!
//! ```text
//! ephemeral share  32  (the stanza's argument, base64 in an age file)
//! wrapped file key 32  (16-byte age file key + 16-byte Poly1305 tag)
//! ```
//!
//! The 16-byte file key is stretched to the 32-byte content key with
//! HKDF-SHA256 salted with the body's nonce, as age derives its payload key.

use age::secrecy::ExposeSecret;
use age::{Identity as _, Recipient as _};
use age_core::format::{FileKey, Stanza};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// Bytes of one wrap.
pub const LEN: usize = 64;
const SHARE_LEN: usize = 32;
/// age's stanza tag for X25519 recipients.
const TAG: &str = "X25519";
/// Domain separation of the content key derived from the file key.
const CONTENT_KEY_LABEL: &[u8] = b"varde/v2/content-key";

/// Why a wrap could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StanzaError {
    #[error("age made a wrap that is not one X25519 stanza of a 32-byte share and a 32-byte body")]
    Unexpected,
    #[error("wrap is {size} bytes; a wrap is {LEN}")]
    Length { size: usize },
    #[error("age refused the stanza: {0}")]
    Age(String),
    #[error("the wrap does not open with this identity (not wrapped for it, or altered)")]
    NotOpened,
}

/// A fresh random file key.
pub fn file_key() -> FileKey {
    let mut k = Box::new([0u8; 16]);
    OsRng.fill_bytes(k.as_mut());
    FileKey::new(k)
}

/// The 32-byte content key of a body whose nonce is `nonce`.
pub fn content_key(file_key: &FileKey, nonce: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(age_core::primitives::hkdf(
        nonce,
        CONTENT_KEY_LABEL,
        file_key.expose_secret(),
    ))
}

/// Wraps `file_key` for `recipient`: one ephemeral X25519.
pub fn seal(
    recipient: &age::x25519::Recipient,
    file_key: &FileKey,
) -> Result<Vec<u8>, StanzaError> {
    let (stanzas, _) = recipient
        .wrap_file_key(file_key)
        .map_err(|e| StanzaError::Age(e.to_string()))?;
    let [stanza] = stanzas.as_slice() else {
        return Err(StanzaError::Unexpected);
    };
    let share = match stanza.args.as_slice() {
        [arg] if stanza.tag == TAG => STANDARD_NO_PAD
            .decode(arg)
            .map_err(|_| StanzaError::Unexpected)?,
        _ => return Err(StanzaError::Unexpected),
    };
    if share.len() != SHARE_LEN || stanza.body.len() != LEN - SHARE_LEN {
        return Err(StanzaError::Unexpected);
    }
    let mut out = share;
    out.extend_from_slice(&stanza.body);
    Ok(out)
}

/// Opens a wrap with `identity`: a length check, then exactly one X25519.
pub fn open(identity: &age::x25519::Identity, wrap: &[u8]) -> Result<FileKey, StanzaError> {
    if wrap.len() != LEN {
        return Err(StanzaError::Length { size: wrap.len() });
    }
    let (share, body) = wrap.split_at(SHARE_LEN);
    let stanza = Stanza {
        tag: TAG.to_string(),
        args: vec![STANDARD_NO_PAD.encode(share)],
        body: body.to_vec(),
    };
    match identity.unwrap_stanza(&stanza) {
        Some(Ok(key)) => Ok(key),
        Some(Err(e)) => Err(StanzaError::Age(e.to_string())),
        // age's answer when the stanza's tag does not authenticate.
        None => Err(StanzaError::NotOpened),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_wrap_is_64_bytes_and_opens_only_for_its_recipient() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let fk = file_key();
        let w = seal(&id.to_public(), &fk).unwrap();
        assert_eq!(w.len(), LEN);
        let opened = open(&id, &w).unwrap();
        assert_eq!(opened.expose_secret(), fk.expose_secret());
        assert_eq!(open(&other, &w).err(), Some(StanzaError::NotOpened));
        // Any flipped bit is caught by the stanza's Poly1305 tag (or makes
        // a different share, which unwraps to nothing).
        for i in [0, 31, 32, 63] {
            let mut bad = w.clone();
            bad[i] ^= 1;
            assert!(open(&id, &bad).is_err(), "bit flip at {i}");
        }
        for size in [0, 63, 65, 250] {
            assert_eq!(
                open(&id, &vec![0u8; size]).err(),
                Some(StanzaError::Length { size })
            );
        }
        // The all-zero share gives an all-zero shared secret: refused by age.
        assert!(open(&id, &[0u8; LEN]).is_err());
    }

    #[test]
    fn the_content_key_depends_on_the_nonce_and_the_file_key() {
        let fk = file_key();
        let a = content_key(&fk, &[1u8; 24]);
        assert_eq!(*a, *content_key(&fk, &[1u8; 24]));
        assert_ne!(*a, *content_key(&fk, &[2u8; 24]));
        assert_ne!(*a, *content_key(&file_key(), &[1u8; 24]));
    }
}
