//! The hub's sink: payloads are sealed on blocking threads (at most one
//! per core; published in the order they came) with pipelined PubAcks, so sealing a
//! 370-recipient batch, the broker round trip and reading the next records
//! overlap.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use varde_schemas::{Audience, Payload, Tlp};

use varde_bus::directory::VerifiedDirectory;
use varde_bus::keys::Identity;
use varde_bus::seal::{self, Draft, SealError, Sealed};
use varde_bus::transport::{self, Pending, TransportError};

/// One envelope to seal and publish.
#[derive(Debug)]
pub struct Work {
    pub payload: Payload,
    pub label: Tlp,
    pub audience: Audience,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot seal a {kind} for {audience}: {source}")]
    Seal {
        kind: varde_schemas::Kind,
        audience: String,
        #[source]
        source: SealError,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("sealing thread failed: {0}")]
    Join(String),
}

/// What the publisher did.
#[derive(Debug, Default, Clone)]
pub struct Published {
    pub envelopes: u64,
    pub copies: u64,
}

/// A running publisher. Send `Work` into it; `finish` waits for every
/// PubAck.
pub struct Publisher {
    tx: mpsc::UnboundedSender<Work>,
    task: JoinHandle<Result<Published, PublishError>>,
}

/// PubAcks awaited at most this far behind the sends.
const IN_FLIGHT: usize = 512;

/// Sealed or sealing envelopes held in publishing order (bounded memory:
/// at most this many 1 MiB envelopes).
const SEAL_QUEUE: usize = 64;

impl Publisher {
    pub fn start(
        js: async_nats::jetstream::Context,
        identity: Arc<Identity>,
        dir: Arc<VerifiedDirectory>,
    ) -> Publisher {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(js, identity, dir, rx));
        Publisher { tx, task }
    }

    /// Queues one envelope. Never blocks: the input is already in memory.
    pub fn send(&self, w: Work) -> bool {
        self.tx.send(w).is_ok()
    }

    pub fn sender(&self) -> mpsc::UnboundedSender<Work> {
        self.tx.clone()
    }

    pub async fn finish(self) -> Result<Published, PublishError> {
        drop(self.tx);
        self.task
            .await
            .map_err(|e| PublishError::Join(e.to_string()))?
    }
}

fn seal_one(identity: &Identity, dir: &VerifiedDirectory, w: Work) -> Result<Sealed, PublishError> {
    let kind = w.payload.kind();
    let audience = w.audience.to_string();
    seal::seal(identity, dir, Draft::new(&w.payload, w.label, w.audience)).map_err(|source| {
        PublishError::Seal {
            kind,
            audience,
            source,
        }
    })
}

async fn run(
    js: async_nats::jetstream::Context,
    identity: Arc<Identity>,
    dir: Arc<VerifiedDirectory>,
    mut rx: mpsc::UnboundedReceiver<Work>,
) -> Result<Published, PublishError> {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut sealing: VecDeque<JoinHandle<Result<Sealed, PublishError>>> = VecDeque::new();
    let mut acks: VecDeque<Vec<Pending>> = VecDeque::new();
    let mut out = Published::default();

    async fn sent(
        js: &async_nats::jetstream::Context,
        h: JoinHandle<Result<Sealed, PublishError>>,
        acks: &mut VecDeque<Vec<Pending>>,
        out: &mut Published,
    ) -> Result<(), PublishError> {
        let sealed = h.await.map_err(|e| PublishError::Join(e.to_string()))??;
        acks.push_back(transport::send(js, &sealed).await?);
        while acks.len() > IN_FLIGHT {
            if let Some(p) = acks.pop_front() {
                confirmed(p, out).await?;
            }
        }
        Ok(())
    }

    async fn confirmed(p: Vec<Pending>, out: &mut Published) -> Result<(), PublishError> {
        let stored = transport::confirm(p).await?;
        out.envelopes += 1;
        out.copies += stored.len() as u64;
        Ok(())
    }

    // Seals run on at most one blocking thread per core (the permits), but
    // many may wait in order behind a slow one: a 371-recipient batch at
    // the head of the queue must not leave the other core idle while the
    // small notifications behind it are ready.
    let cores = Arc::new(Semaphore::new(parallel));
    while let Some(w) = rx.recv().await {
        while sealing.front().is_some_and(JoinHandle::is_finished) {
            if let Some(h) = sealing.pop_front() {
                sent(&js, h, &mut acks, &mut out).await?;
            }
        }
        let permit = cores
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PublishError::Join(e.to_string()))?;
        let (id, d) = (identity.clone(), dir.clone());
        sealing.push_back(tokio::task::spawn_blocking(move || {
            let sealed = seal_one(&id, &d, w);
            drop(permit);
            sealed
        }));
        while sealing.len() > SEAL_QUEUE {
            if let Some(h) = sealing.pop_front() {
                sent(&js, h, &mut acks, &mut out).await?;
            }
        }
    }
    while let Some(h) = sealing.pop_front() {
        sent(&js, h, &mut acks, &mut out).await?;
    }
    while let Some(p) = acks.pop_front() {
        confirmed(p, &mut out).await?;
    }
    Ok(out)
}
