//! Envelopes in the format of before (`VRD1`: each wrap a whole age file of
//! the 32-byte content key). Readers still open them; only tests make them
//! now, to show that they open and that their wraps are checked before any
//! X25519.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use varde_bus::directory::VerifiedDirectory;
use varde_bus::envelope::{self, WrapFormat};
use varde_bus::keys::Identity;
use varde_bus::seal;

/// `copy` (an envelope `seal` made) re-made as `VRD1` around `payload`, for
/// the same header and recipient keys, signed by `signer` (its sender).
pub fn v1(
    signer: &Identity,
    dir: &VerifiedDirectory,
    copy: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let f = envelope::parse(copy).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&key))
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: payload,
                aad: f.header,
            },
        )
        .map_err(|e| e.to_string())?;
    let mut body = nonce.to_vec();
    body.extend_from_slice(&ct);
    let mut wraps = Vec::with_capacity(f.wraps.len());
    for (id, _) in &f.wraps {
        let entry = dir.key(id).ok_or(format!("no key {id} in the directory"))?;
        let file = age::encrypt(&entry.recipient, &key).map_err(|e| e.to_string())?;
        wraps.push((*id, file));
    }
    let mut out = Vec::new();
    envelope::write_signed_as(
        &mut out,
        WrapFormat::AgeFile,
        true,
        f.signer,
        f.header,
        &wraps,
        &body,
    );
    Ok(seal::sign_unchecked(signer, &out).to_vec())
}
