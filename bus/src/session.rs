//! A process's working set: its settings, its identity, the verified
//! directory and a connection to the bus, with the check that the identity
//! is one the directory knows.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::directory::DirectoryHandle;
use crate::keys::Identity;
use crate::settings::{BusSettings, Loaded};

/// What most commands need: settings, identity, directory and a connection.
pub struct Session<S> {
    pub settings: Loaded<S>,
    pub identity: Arc<Identity>,
    pub directory: DirectoryHandle,
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
}

impl<S: BusSettings + DeserializeOwned> Session<S> {
    /// Reads `config`, loads the identity's keys, connects, and takes the
    /// newest verified directory (file, state or KV bucket).
    pub async fn connect(config: &Path) -> anyhow::Result<Session<S>> {
        let settings: Loaded<S> = Loaded::read(config)?;
        let identity = settings.identity()?;
        let client = settings.nats().connect().await?;
        let js = crate::transport::jetstream(client.clone());
        // The KV copy may be newer than the configured file.
        let kv = crate::directory_kv::fetch(&js).await.ok().flatten();
        let directory = settings.directory_handle(kv)?;
        check_identity_registered(&directory, &identity)?;
        Ok(Session {
            settings,
            identity,
            directory,
            client,
            js,
        })
    }
}

/// Refuses to run with a key the directory does not know, has revoked or
/// lets expire, saying so plainly.
pub fn check_identity_registered(dir: &DirectoryHandle, id: &Identity) -> anyhow::Result<()> {
    let d = dir.current();
    let Some(k) = d.key(&id.key_id) else {
        anyhow::bail!(
            "key {} of `{}` is not in directory version {}; send your public card to the CSIRT (varde keygen wrote it) and wait for the next directory",
            id.key_id,
            id.org,
            d.version()
        );
    };
    let org = &d.org_at(k.org).id;
    if *org != id.org {
        anyhow::bail!(
            "key {} is registered to `{org}` in the directory, but the configuration says `{}`",
            id.key_id,
            id.org
        );
    }
    match k.unusable(jiff::Timestamp::now()) {
        Some(crate::directory::KeyState::Revoked(at)) => {
            anyhow::bail!(
                "key {} of `{org}` was revoked at {at}; generate a new key",
                id.key_id
            )
        }
        Some(crate::directory::KeyState::Expired(at)) => {
            anyhow::bail!(
                "key {} of `{org}` expired at {at}; generate a new key",
                id.key_id
            )
        }
        None => Ok(()),
    }
}
