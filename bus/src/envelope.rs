//! The envelope's byte layout. Everything is length-prefixed, so the parser
//! never guesses; it only slices, and nothing is parsed as JSON or decrypted
//! until the signature over these exact bytes has been checked (`seal.rs`).
//!
//! ```text
//! magic     4  "VRD1"
//! flags     1  bit 0: body encrypted (every label but CLEAR)
//! signer    8  key id of the signing key
//! header    u32 BE length + JSON (UTF-8)            ─┐
//! keys      u32 BE count + count × (key id 8,         │ signed
//!                     u32 BE length + age file)        │ (BLAKE3 of these
//! body      u32 BE length + (nonce 24 + AEAD output)   │  bytes, then ed25519)
//!           or, for CLEAR, the payload JSON          ─┘
//! signature 64 ed25519
//! ```
//! Each wrap is a complete standard age file (one X25519 stanza) whose
//! plaintext is the 32-byte content key, so `age -d` can open it.

use varde_schemas::KeyId;

pub const MAGIC: &[u8; 4] = b"VRD1";
pub const FLAG_ENCRYPTED: u8 = 1;
/// Hard ceiling on a whole envelope (DESIGN.md "Sealing").
pub const MAX_ENVELOPE: usize = 1 << 20;
/// Hard ceiling on recipient keys per envelope.
pub const MAX_RECIPIENTS: usize = 2_000;
/// Headers are small; a huge one is an attack on the JSON parser.
pub const MAX_HEADER: usize = 64 << 10;
pub const SIGNATURE_LEN: usize = 64;

/// A structurally valid envelope, borrowed from the received bytes.
#[derive(Debug)]
pub struct Framed<'a> {
    pub flags: u8,
    pub signer: KeyId,
    pub header: &'a [u8],
    pub wraps: Vec<(KeyId, &'a [u8])>,
    pub body: &'a [u8],
    /// Everything the signature covers.
    pub signed: &'a [u8],
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why bytes are not a framed envelope. `seal::OpenError` wraps these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("envelope is {size} bytes; the limit is {MAX_ENVELOPE}")]
    Oversized { size: usize },
    #[error("envelope lists {count} recipient keys; the limit is {MAX_RECIPIENTS}")]
    TooManyRecipients { count: usize },
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(FrameError::Malformed(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self, what: &'static str) -> Result<usize, FrameError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn key_id(&mut self, what: &'static str) -> Result<KeyId, FrameError> {
        let b = self.take(8, what)?;
        let mut id = [0u8; 8];
        id.copy_from_slice(b);
        Ok(KeyId(id))
    }
}

/// Slices `bytes` into its parts, checking every length.
pub fn parse(bytes: &[u8]) -> Result<Framed<'_>, FrameError> {
    if bytes.len() > MAX_ENVELOPE {
        return Err(FrameError::Oversized { size: bytes.len() });
    }
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.take(4, "truncated before magic")? != MAGIC {
        return Err(FrameError::Malformed("not a Varde v1 envelope (bad magic)"));
    }
    let flags = r.take(1, "truncated in flags")?[0];
    if flags & !FLAG_ENCRYPTED != 0 {
        return Err(FrameError::Malformed("unknown flag bits"));
    }
    let signer = r.key_id("truncated in signer key id")?;
    let hlen = r.u32("truncated in header length")?;
    if hlen > MAX_HEADER {
        return Err(FrameError::Malformed("header longer than 64 KiB"));
    }
    let header = r.take(hlen, "truncated in header")?;
    let count = r.u32("truncated in key count")?;
    if count > MAX_RECIPIENTS {
        return Err(FrameError::TooManyRecipients { count });
    }
    if flags & FLAG_ENCRYPTED == 0 && count != 0 {
        return Err(FrameError::Malformed(
            "unencrypted envelope with recipient keys",
        ));
    }
    let mut wraps = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.key_id("truncated in key list")?;
        let len = r.u32("truncated in key list")?;
        wraps.push((id, r.take(len, "truncated in key list")?));
    }
    let blen = r.u32("truncated in body length")?;
    let body = r.take(blen, "truncated in body")?;
    let signed_end = r.pos;
    let sig = r.take(SIGNATURE_LEN, "truncated in signature")?;
    if r.pos != bytes.len() {
        return Err(FrameError::Malformed("trailing bytes after signature"));
    }
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(sig);
    Ok(Framed {
        flags,
        signer,
        header,
        wraps,
        body,
        signed: &bytes[..signed_end],
        signature,
    })
}

/// Writes the signed part; the caller appends the signature.
pub fn write_signed(
    out: &mut Vec<u8>,
    encrypted: bool,
    signer: KeyId,
    header: &[u8],
    wraps: &[(KeyId, Vec<u8>)],
    body: &[u8],
) {
    let wraps_len: usize = wraps.iter().map(|(_, w)| 12 + w.len()).sum();
    out.reserve(4 + 1 + 8 + 4 + header.len() + 4 + wraps_len + 4 + body.len() + SIGNATURE_LEN);
    out.extend_from_slice(MAGIC);
    out.push(if encrypted { FLAG_ENCRYPTED } else { 0 });
    out.extend_from_slice(&signer.0);
    push_len(out, header.len());
    out.extend_from_slice(header);
    push_len(out, wraps.len());
    for (id, w) in wraps {
        out.extend_from_slice(&id.0);
        push_len(out, w.len());
        out.extend_from_slice(w);
    }
    push_len(out, body.len());
    out.extend_from_slice(body);
}

fn push_len(out: &mut Vec<u8>, n: usize) {
    // Lengths are bounded by MAX_ENVELOPE (checked by the sealer), so they
    // always fit in u32.
    out.extend_from_slice(&(n as u32).to_be_bytes());
}
