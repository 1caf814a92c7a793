//! A bus message as the bridge handles it: opened (verified, then
//! decrypted with the bridge's key) and kept with the sealed envelope it
//! came in, which is what the store holds. Both directions use it, so it
//! sits apart from either.

use jiff::Timestamp;
use varde_bus::directory::VerifiedDirectory;
use varde_bus::keys::Identity;
use varde_bus::seal::{self, OpenError};
use varde_schemas::{Header, Payload};

use crate::store::StoredEnvelope;

/// An opened bus message and the sealed envelope it came in.
#[derive(Clone, Debug)]
pub struct Message {
    pub header: Header,
    pub payload: Payload,
    pub envelope: StoredEnvelope,
}

/// Opens a stored envelope again with the bridge's key and the given
/// directory (so a key revoked or a message expired since is refused).
pub fn open_stored(
    identity: &Identity,
    dir: &VerifiedDirectory,
    e: &StoredEnvelope,
) -> Result<Message, OpenError> {
    let v = seal::verify(dir, Some(&e.subject), &e.bytes, Timestamp::now())?;
    let opened = seal::decrypt(identity, v, e.bytes.len())?;
    Ok(Message {
        header: opened.header,
        payload: opened.payload,
        envelope: e.clone(),
    })
}
