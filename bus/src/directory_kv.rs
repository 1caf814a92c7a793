//! The signed directory in the JetStream KV bucket `varde-directory`:
//! the CSIRT pushes, every process watches and adopts newer versions
//! without a restart. The KV is only a distribution channel; trust comes
//! from the root signature and the version check in `DirectoryHandle`.

use async_nats::jetstream::{self, kv};
use futures::StreamExt;

use crate::directory::{self, DirectoryHandle, Offer};
use crate::transport::{DIRECTORY_BUCKET, DIRECTORY_KEY, TransportError, js_err};

async fn bucket(js: &jetstream::Context) -> Result<kv::Store, TransportError> {
    js.get_key_value(DIRECTORY_BUCKET).await.map_err(js_err(
        "open of the directory bucket (has `varde bus init` been run?)",
    ))
}

/// Stores a signed directory after checking it against `roots`, refusing
/// to overwrite a newer version already in the bucket. The streams of its
/// new orgs and groups are made first, so no member holding the new
/// directory can address a scope that has no stream yet.
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
    crate::transport::ensure_streams(js, &new).await?;
    let current = kv
        .entry(DIRECTORY_KEY)
        .await
        .map_err(js_err("read directory"))?;
    // Compare-and-set on the revision we read, so two operators pushing at
    // once cannot silently overwrite each other.
    let res = match current {
        Some(entry) => kv
            .update(DIRECTORY_KEY, signed.to_vec().into(), entry.revision)
            .await
            .map_err(js_err("write directory")),
        None => kv
            .create(DIRECTORY_KEY, signed.to_vec().into())
            .await
            .map_err(js_err("write directory")),
    };
    res?;
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
        .map_err(js_err("read directory"))
}

/// How often a watcher re-reads the bucket. Live updates arrive at once
/// through the subscription; this only catches one published while the
/// connection was down (a core subscription does not replay).
pub const RESYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The subject every put to the directory key is published on.
pub fn directory_subject() -> String {
    format!("$KV.{DIRECTORY_BUCKET}.{DIRECTORY_KEY}")
}

/// Offers every value the bucket holds now and later to `handle`; returns
/// only when the watch ends (connection closed for good). Bad or older
/// directories are logged and ignored: the current one stays in force.
///
/// Why not `kv.watch`: a KV watch is an ordered consumer on the bucket's
/// stream, and letting members create consumers there would let a
/// compromised member also create durable ones (the server cannot tell them
/// apart by subject) and pile up state on the broker. Instead a watcher
/// holds a plain subscription to the key's subject (no server-side state)
/// and reads the last value with a direct get at start and every
/// [`RESYNC_EVERY`].
pub async fn watch(js: jetstream::Context, handle: DirectoryHandle) -> Result<(), TransportError> {
    let kv = bucket(&js).await?;
    // Subscribe before the first read, so no put falls between the two.
    let mut live = js
        .client()
        .subscribe(directory_subject())
        .await
        .map_err(js_err("watch directory"))?;
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = live.next() => {
                let Some(msg) = msg else { return Ok(()) };
                // Deletes and purges carry a `KV-Operation` header and no
                // directory; only a put is worth offering.
                let is_put = msg.headers.as_ref().is_none_or(|h| h.get("KV-Operation").is_none());
                if is_put {
                    offer(&handle, &msg.payload, "subscription");
                }
            }
            _ = resync.tick() => match kv.get(DIRECTORY_KEY).await {
                Ok(Some(value)) => offer(&handle, &value, "resync"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "directory resync failed; will retry"),
            },
        }
    }
}

/// Offers one value; refusals are logged, never fatal.
fn offer(handle: &DirectoryHandle, value: &[u8], via: &'static str) {
    match handle.offer(value) {
        Ok(Offer::Accepted { from, to }) => {
            tracing::info!(from, to, via, "adopted newer directory from the KV bucket")
        }
        Ok(Offer::Unchanged) => {}
        Err(directory::DirectoryError::RolledBack { .. }) => {
            // The resync can race a newer live update: expected, not an alarm.
            tracing::debug!(via, "older directory from the KV bucket ignored")
        }
        Err(e) => tracing::warn!(via, error = %e, "directory from KV refused"),
    }
}
