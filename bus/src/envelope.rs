//! The envelope's byte layout. Everything is length-prefixed, so the parser
//! never guesses; it only slices, and nothing is parsed as JSON or decrypted
//! until the signature over these exact bytes has been checked (`seal.rs`).
//!
//! ```text
//! magic     4  "VRD2" (written), "VRD1" (still read)
//! flags     1  bit 0: body encrypted (every label but CLEAR)
//! signer    8  key id of the signing key
//! header    u32 BE length + JSON (UTF-8)            ─┐
//! keys      u32 BE count + count × (key id 8,         │ signed
//!                     u32 BE length + wrap)            │ (BLAKE3 of these
//! body      u32 BE length + (nonce 24 + AEAD output)   │  bytes, then ed25519)
//!           or, for CLEAR, the payload JSON          ─┘
//! signature 64 ed25519
//! ```
//! In `VRD2` each wrap is age's X25519 stanza in 64 bytes (`wrap.rs`). In
//! `VRD1` each wrap was a complete single-recipient age file (about 335
//! bytes) whose plaintext is the 32-byte content key; such envelopes are
//! still opened, after `check_wrap`.

use varde_schemas::KeyId;

/// The format `seal` writes.
pub const MAGIC: &[u8; 4] = b"VRD2";
/// The format of before: one age file per wrap.
pub const MAGIC_V1: &[u8; 4] = b"VRD1";
pub const FLAG_ENCRYPTED: u8 = 1;
/// Where the signer's key id starts (after magic and flags).
pub const SIGNER_AT: usize = 5;
/// Hard ceiling on a whole envelope (README "How a message is sealed").
pub const MAX_ENVELOPE: usize = 1 << 20;
/// Hard ceiling on recipient keys per envelope.
pub const MAX_RECIPIENTS: usize = 2_000;
/// Headers are small; a huge one is an attack on the JSON parser.
pub const MAX_HEADER: usize = 64 << 10;
pub const SIGNATURE_LEN: usize = 64;

/// How the envelope's wraps hold the content key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapFormat {
    /// `VRD1`: a single-recipient age file of the 32-byte content key.
    AgeFile,
    /// `VRD2`: age's X25519 stanza of a file key (`wrap.rs`).
    Stanza,
}

impl WrapFormat {
    fn magic(self) -> &'static [u8; 4] {
        match self {
            WrapFormat::AgeFile => MAGIC_V1,
            WrapFormat::Stanza => MAGIC,
        }
    }

    /// The magic as text, as `varde inspect` shows it.
    pub fn name(self) -> &'static str {
        // Both magics are ASCII.
        std::str::from_utf8(self.magic()).unwrap_or("?")
    }

    /// What each wrap is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            WrapFormat::AgeFile => "a single-recipient age file per key",
            WrapFormat::Stanza => "age's X25519 stanza per key, 64 bytes",
        }
    }
}

/// A structurally valid envelope, borrowed from the received bytes.
#[derive(Debug)]
pub struct Framed<'a> {
    pub format: WrapFormat,
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
    let format = match r.take(4, "truncated before magic")? {
        m if m == MAGIC => WrapFormat::Stanza,
        m if m == MAGIC_V1 => WrapFormat::AgeFile,
        _ => {
            return Err(FrameError::Malformed(
                "not a Varde envelope (magic is neither VRD2 nor VRD1)",
            ));
        }
    };
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
        format,
        flags,
        signer,
        header,
        wraps,
        body,
        signed: &bytes[..signed_end],
        signature,
    })
}

/// Writes the signed part in the current format; the caller appends the
/// signature.
pub fn write_signed(
    out: &mut Vec<u8>,
    encrypted: bool,
    signer: KeyId,
    header: &[u8],
    wraps: &[(KeyId, Vec<u8>)],
    body: &[u8],
) {
    write_signed_as(
        out,
        WrapFormat::Stanza,
        encrypted,
        signer,
        header,
        wraps,
        body,
    );
}

/// Writes the signed part in `format` (tests of the old format use `AgeFile`).
pub fn write_signed_as(
    out: &mut Vec<u8>,
    format: WrapFormat,
    encrypted: bool,
    signer: KeyId,
    header: &[u8],
    wraps: &[(KeyId, Vec<u8>)],
    body: &[u8],
) {
    let wraps_len: usize = wraps.iter().map(|(_, w)| 12 + w.len()).sum();
    out.reserve(4 + 1 + 8 + 4 + header.len() + 4 + wraps_len + 4 + body.len() + SIGNATURE_LEN);
    out.extend_from_slice(format.magic());
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

/// Largest `VRD1` wrap a recipient will try to open. A wrap of a 32-byte content
/// key is about 250 bytes (plus up to ~250 for one grease stanza from the
/// age crate); anything much bigger is not a wrap we made.
pub const MAX_WRAP: usize = 1 << 10;
/// Stanzas besides the one X25519 stanza (age implementations add random
/// "grease" stanzas to keep parsers honest).
pub const MAX_OTHER_STANZAS: usize = 4;
/// One stanza, argument line and body: grease bodies are at most 100 bytes
/// (136 base64 characters) and their argument line at most 66 characters.
pub const MAX_STANZA: usize = 320;

/// Why a wrap is refused before any X25519 operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    #[error("wrap is {size} bytes; the limit is {MAX_WRAP}")]
    Oversized { size: usize },
    #[error("wrap is not an age v1 file")]
    NotAge,
    #[error("wrap has {count} X25519 stanzas; a wrap holds exactly one")]
    X25519Count { count: usize },
    #[error("wrap has {count} other stanzas; the limit is {MAX_OTHER_STANZAS}")]
    TooManyStanzas { count: usize },
    #[error("a stanza of the wrap is {size} bytes; the limit is {MAX_STANZA}")]
    StanzaTooLong { size: usize },
    #[error("wrap header has no MAC line")]
    NoMac,
    #[error("wrap is {size} bytes; an X25519 stanza wrap is {}", crate::wrap::LEN)]
    StanzaLength { size: usize },
}

/// Checks the shape of one recipient's wrap so that opening it costs one
/// X25519 operation whatever the sender put in: the age crate tries every
/// X25519 stanza of a file in turn, so a signed envelope whose wrap holds
/// thousands of them would otherwise cost a recipient seconds to minutes.
/// Only counts lines; age itself parses the header again afterwards.
pub fn check_wrap(wrap: &[u8]) -> Result<(), WrapError> {
    if wrap.len() > MAX_WRAP {
        return Err(WrapError::Oversized { size: wrap.len() });
    }
    // The binary payload follows the MAC line; lines are only read up to it.
    let mut lines = wrap.split(|b| *b == b'\n');
    if lines.next() != Some(b"age-encryption.org/v1".as_slice()) {
        return Err(WrapError::NotAge);
    }
    let (mut x25519, mut others) = (0usize, 0usize);
    // Size of the stanza being read (argument line plus body lines).
    let mut stanza: Option<usize> = None;
    for line in lines {
        if line.starts_with(b"---") {
            return match (x25519, others) {
                (1, o) if o <= MAX_OTHER_STANZAS => Ok(()),
                (1, o) => Err(WrapError::TooManyStanzas { count: o }),
                (n, _) => Err(WrapError::X25519Count { count: n }),
            };
        }
        if let Some(args) = line.strip_prefix(b"-> ") {
            let tag = args.split(|b| *b == b' ').next().unwrap_or_default();
            if tag == b"X25519" {
                x25519 += 1;
            } else {
                others += 1;
            }
            if x25519 > 1 {
                return Err(WrapError::X25519Count { count: x25519 });
            }
            if others > MAX_OTHER_STANZAS {
                return Err(WrapError::TooManyStanzas { count: others });
            }
            stanza = Some(line.len() + 1);
        } else if let Some(size) = &mut stanza {
            *size += line.len() + 1;
        } else {
            // Body text before any stanza.
            return Err(WrapError::NotAge);
        }
        if let Some(size) = stanza
            && size > MAX_STANZA
        {
            return Err(WrapError::StanzaTooLong { size });
        }
    }
    Err(WrapError::NoMac)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SHARE: &str = "TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc";

    fn wrap(stanzas: &[String]) -> Vec<u8> {
        let mut w = b"age-encryption.org/v1\n".to_vec();
        for s in stanzas {
            w.extend_from_slice(s.as_bytes());
        }
        w.extend_from_slice(format!("--- {SHARE}\n").as_bytes());
        w.extend_from_slice(&[0x0a, 0xff, 0x00, b'-', b'>']);
        w
    }

    fn x25519() -> String {
        format!("-> X25519 {SHARE}\n{SHARE}\n")
    }

    #[test]
    fn a_real_wrap_passes() {
        let id = age::x25519::Identity::generate();
        for _ in 0..50 {
            // The age crate adds a random grease stanza to some files.
            let w = age::encrypt(&id.to_public(), &[7u8; 32]).unwrap();
            check_wrap(&w).unwrap();
        }
        check_wrap(&wrap(&[x25519()])).unwrap();
        let grease = format!("-> a-grease b c\n{}\n{}\n", "A".repeat(64), "B".repeat(8));
        check_wrap(&wrap(&[grease.clone(), x25519(), grease])).unwrap();
    }

    #[test]
    fn stanza_counter_refuses_what_would_cost_more_than_one_x25519() {
        assert_eq!(
            check_wrap(&wrap(&[x25519(), x25519()])),
            Err(WrapError::X25519Count { count: 2 })
        );
        assert_eq!(
            check_wrap(&wrap(&[])),
            Err(WrapError::X25519Count { count: 0 })
        );
        let grease = "-> g-grease\n\n".to_string();
        let mut five = vec![grease; 5];
        five.push(x25519());
        assert_eq!(
            check_wrap(&wrap(&five)),
            Err(WrapError::TooManyStanzas { count: 5 })
        );
        let long = format!("-> g-grease\n{}\n\n", "A".repeat(64 * 5));
        assert!(matches!(
            check_wrap(&wrap(&[long, x25519()])),
            Err(WrapError::StanzaTooLong { .. })
        ));
        let big = vec![b'A'; MAX_WRAP + 1];
        assert_eq!(
            check_wrap(&big),
            Err(WrapError::Oversized { size: MAX_WRAP + 1 })
        );
    }

    #[test]
    fn stanza_counter_never_panics_on_junk() {
        for junk in [
            &b""[..],
            b"age-encryption.org/v1",
            b"age-encryption.org/v1\n",
            b"age-encryption.org/v1\n-> \n---",
            b"age-encryption.org/v1\n->\n--- x\n",
            b"age-encryption.org/v1\nbody first\n--- x\n",
            b"\xff\xfe\n\n\n",
        ] {
            assert!(check_wrap(junk).is_err(), "{junk:?}");
        }
        // One X25519 stanza with no body line at all still has a MAC line.
        check_wrap(b"age-encryption.org/v1\n-> X25519 a\n--- x\n").unwrap();
    }
}
