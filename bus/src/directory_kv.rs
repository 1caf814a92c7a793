//! The signed directory in the JetStream KV bucket `varde-directory`:
//! the CSIRT pushes, every process watches and adopts newer versions
//! without a restart. The KV is only a distribution channel; trust comes
//! from the root signature and the version check in `DirectoryHandle`.

use async_nats::jetstream::{self, kv};
use futures::StreamExt;

use crate::directory::{self, DirectoryHandle, Offer};
use crate::transport::{DIRECTORY_BUCKET, DIRECTORY_KEY, TransportError};

async fn bucket(js: &jetstream::Context) -> Result<kv::Store, TransportError> {
    js.get_key_value(DIRECTORY_BUCKET)
        .await
        .map_err(|e| TransportError::JetStream {
            op: "open directory bucket",
            detail: format!("{e} (has `varde bus init` been run?)"),
        })
}

/// Stores a signed directory after checking it against `roots`, refusing
/// to overwrite a newer version already in the bucket.
pub async fn push(
    js: &jetstream::Context,
    signed: &[u8],
    roots: &[ed25519_dalek::VerifyingKey],
) -> Result<u64, PushError> {
    let new = directory::verify(signed, roots)?;
    let kv = bucket(js).await?;
    // The newest validly signed version anywhere in the key's history is
    // the floor: a junk value on top must not open the door to a rollback.
    if let Some(have) = newest_valid(&kv, roots).await?
        && have > new.version()
    {
        return Err(PushError::Older {
            have,
            got: new.version(),
        });
    }
    let current = kv
        .entry(DIRECTORY_KEY)
        .await
        .map_err(|e| TransportError::JetStream {
            op: "read directory",
            detail: e.to_string(),
        })?;
    // Compare-and-set on the revision we read, so two operators pushing at
    // once cannot silently overwrite each other.
    let res = match current {
        Some(entry) => kv
            .update(DIRECTORY_KEY, signed.to_vec().into(), entry.revision)
            .await
            .map_err(|e| e.to_string()),
        None => kv
            .create(DIRECTORY_KEY, signed.to_vec().into())
            .await
            .map_err(|e| e.to_string()),
    };
    res.map_err(|detail| TransportError::JetStream {
        op: "write directory",
        detail,
    })?;
    Ok(new.version())
}

async fn newest_valid(
    kv: &kv::Store,
    roots: &[ed25519_dalek::VerifyingKey],
) -> Result<Option<u64>, TransportError> {
    let mut history = match kv.history(DIRECTORY_KEY).await {
        Ok(h) => h,
        // No value yet.
        Err(_) => return Ok(None),
    };
    let mut best = None;
    while let Some(entry) = history.next().await {
        let Ok(entry) = entry else { break };
        if entry.operation == kv::Operation::Put
            && let Ok(d) = directory::verify(&entry.value, roots)
        {
            best = best.max(Some(d.version()));
        }
    }
    Ok(best)
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Directory(#[from] directory::DirectoryError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the bucket already holds version {have}; refusing to push older version {got}")]
    Older { have: u64, got: u64 },
}

/// The signed directory currently in the bucket, if any.
pub async fn fetch(js: &jetstream::Context) -> Result<Option<Vec<u8>>, TransportError> {
    let kv = bucket(js).await?;
    kv.get(DIRECTORY_KEY)
        .await
        .map(|o| o.map(|b| b.to_vec()))
        .map_err(|e| TransportError::JetStream {
            op: "read directory",
            detail: e.to_string(),
        })
}

/// Offers every value the bucket holds now and later to `handle`; returns
/// only when the watch ends (connection closed for good). Bad or older
/// directories are logged and ignored: the current one stays in force.
pub async fn watch(js: jetstream::Context, handle: DirectoryHandle) -> Result<(), TransportError> {
    let kv = bucket(&js).await?;
    let mut w = kv
        .watch(DIRECTORY_KEY)
        .await
        .map_err(|e| TransportError::JetStream {
            op: "watch directory",
            detail: e.to_string(),
        })?;
    while let Some(entry) = w.next().await {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "directory watch error");
                continue;
            }
        };
        if entry.operation != kv::Operation::Put {
            continue;
        }
        match handle.offer(&entry.value) {
            Ok(Offer::Accepted { from, to }) => {
                tracing::info!(from, to, "adopted newer directory from the KV bucket")
            }
            Ok(Offer::Unchanged) => {}
            Err(directory::DirectoryError::RolledBack { .. }) => {
                // History replay of older revisions: expected, not an alarm.
                tracing::debug!(
                    revision = entry.revision,
                    "older directory in KV history ignored"
                )
            }
            Err(e) => {
                tracing::warn!(revision = entry.revision, error = %e, "directory from KV refused")
            }
        }
    }
    Ok(())
}
