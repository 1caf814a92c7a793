//! Sealing and publishing as the bridge: what members share, acks,
//! sightings and incidents leave the bridge signed by its key, encrypted
//! for their audience, and are published with the sender org and the
//! envelope id as `Nats-Msg-Id` (a retry is dropped by the broker's
//! duplicate window).

use std::sync::Arc;

use async_nats::jetstream;
use uuid::Uuid;
use varde_bus::directory::DirectoryHandle;
use varde_bus::keys::Identity;
use varde_bus::seal::{self, Draft, SealError};
use varde_bus::transport::{self, TransportError};
use varde_schemas::{Audience, Header, Payload, Tlp};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot seal the message: {0}")]
    Seal(#[from] SealError),
    #[error("cannot publish on the bus: {0}")]
    Transport(#[from] TransportError),
}

/// The bridge's outgoing side of the bus.
#[derive(Clone)]
pub struct Publisher {
    pub js: jetstream::Context,
    pub identity: Arc<Identity>,
    pub directory: DirectoryHandle,
}

impl Publisher {
    /// Seals `payload` for `audience` at `label` (with a fixed id when
    /// given, so a repeat is deduplicated) and publishes every copy.
    /// Returns the header as addressed (the whole audience).
    pub async fn publish(
        &self,
        payload: &Payload,
        label: Tlp,
        audience: Audience,
        id: Option<Uuid>,
    ) -> Result<Header, PublishError> {
        let mut draft = Draft::new(payload, label, audience);
        if let Some(id) = id {
            draft = draft.id(id);
        }
        let sealed = seal::seal(&self.identity, &self.directory.current(), draft)?;
        if id.is_some() {
            // A fixed id is derived with the store's secret, so nobody else
            // can hold it: a duplicate is our own earlier publish (a crash
            // before it was recorded, a repeated ✅), already stored.
            transport::republish(&self.js, &sealed).await?;
        } else {
            transport::publish(&self.js, &sealed).await?;
        }
        tracing::info!(
            envelope = %sealed.header.id,
            kind = %sealed.header.kind,
            label = %sealed.header.label,
            audience = %sealed.header.audience,
            "published"
        );
        Ok(sealed.header)
    }
}
