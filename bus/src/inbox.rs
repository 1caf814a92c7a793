//! Receiving: one pull consumer on each scope stream the identity reads
//! (the community, its groups, its own org; see `subject`), merged into
//! one flow of messages that are verified and opened one by one. A message that can never be opened is
//! terminated (not redelivered) and counted; nothing a sender does can stop
//! the loop. Opening runs on the blocking pool: its cost is bounded (one
//! X25519), but it is CPU work, and heartbeats and acks of other messages
//! must not wait on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use jiff::Timestamp;

use crate::directory::DirectoryHandle;
use crate::seal::{OpenError, Opened, Opener, ReplayKey};
use crate::subject::{self, SubjectError};
use crate::transport::BoxError;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(
        "consumer `{name}` on stream {stream} is not available: {source} (is `varde bus init` done, the directory pushed and the consumer provisioned?)"
    )]
    Consumer {
        name: String,
        stream: String,
        #[source]
        source: BoxError,
    },
    #[error("cannot read filter: {0}")]
    Filter(#[from] SubjectError),
    #[error("receiving from consumer `{name}` failed: {source}")]
    Receive {
        name: String,
        #[source]
        source: BoxError,
    },
    /// The reader's replay memory (`Opener::persistent`) cannot be kept.
    #[error(transparent)]
    ReplayFile(#[from] crate::replay::ReplayFileError),
}

/// Which consumer to read.
#[derive(Clone, Debug)]
pub struct InboxConfig {
    /// Durable name; `None` for a short-lived ephemeral consumer (tail).
    pub durable: Option<String>,
    /// What this identity may read (see `subject::readable_filters`).
    pub filters: Vec<String>,
    /// Create or update the consumer (development, operator credentials).
    /// With provisioned broker permissions the operator creates it and
    /// members may only bind.
    pub create: bool,
    /// Where an ephemeral consumer starts.
    pub start: Option<Timestamp>,
    /// Time to process one message before the broker redelivers it.
    pub ack_wait: Duration,
    /// Safety net against a message that crashes its handler.
    pub max_deliver: i64,
    /// Deliveries of an envelope from a not-yet-known sender before it is
    /// terminated (our directory may lag a new member's first message).
    pub unknown_sender_attempts: i64,
    /// Delay before such an envelope is offered again (times the attempt).
    pub unknown_sender_delay: Duration,
    /// Messages fetched per pull request. Fetched messages wait in the
    /// client until `next` returns them, their ack_wait already running, so
    /// a slow consumer (the Matrix bridge) keeps this small.
    pub batch: usize,
}

impl InboxConfig {
    pub fn durable(name: impl Into<String>, filters: Vec<String>) -> Self {
        InboxConfig {
            durable: Some(name.into()),
            filters,
            create: true,
            start: None,
            ack_wait: Duration::from_secs(30),
            max_deliver: 20,
            unknown_sender_attempts: 5,
            unknown_sender_delay: Duration::from_secs(5),
            batch: 256,
        }
    }

    pub fn ephemeral(filters: Vec<String>, start: Option<Timestamp>) -> Self {
        InboxConfig {
            durable: None,
            start,
            ..InboxConfig::durable("", filters)
        }
    }

    pub fn bind_only(mut self) -> Self {
        self.create = false;
        self
    }

    /// The consumer to make on each stream the filters read from, by
    /// stream name: unfiltered where a filter is the whole stream.
    pub fn consumer_configs(&self) -> Result<Vec<(String, pull::Config)>, SubjectError> {
        let mut by_stream: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        for f in &self.filters {
            let read = subject::stream_read(f)?;
            let entry = by_stream.entry(read.stream).or_insert(Some(Vec::new()));
            match (entry.as_mut(), read.filter) {
                (Some(list), Some(f)) => list.push(f),
                // The whole stream: no filter, whatever else was asked.
                _ => *entry = None,
            }
        }
        Ok(by_stream
            .into_iter()
            .map(|(stream, filters)| {
                let mut c = self.consumer_config();
                c.filter_subjects = filters.unwrap_or_default();
                (stream, c)
            })
            .collect())
    }

    fn consumer_config(&self) -> pull::Config {
        let deliver_policy = match self.start {
            Some(t) => jetstream::consumer::DeliverPolicy::ByStartTime {
                start_time: time_of(t),
            },
            None if self.durable.is_some() => jetstream::consumer::DeliverPolicy::All,
            None => jetstream::consumer::DeliverPolicy::New,
        };
        pull::Config {
            durable_name: self.durable.clone(),
            filter_subjects: self.filters.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
            deliver_policy,
            max_ack_pending: 10_000,
            inactive_threshold: if self.durable.is_some() {
                Duration::ZERO
            } else {
                Duration::from_secs(60)
            },
            ..Default::default()
        }
    }
}

fn time_of(t: Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Counters for metrics and `status`.
#[derive(Default, Debug)]
pub struct InboxStats {
    pub delivered: AtomicU64,
    pub opened: AtomicU64,
    pub duplicates: AtomicU64,
    pub not_for_us: AtomicU64,
    pub terminated: AtomicU64,
    pub retried: AtomicU64,
    by_reason: std::sync::Mutex<BTreeMap<&'static str, u64>>,
    last_opened: std::sync::Mutex<Option<Timestamp>>,
    pub pending: AtomicU64,
}

impl InboxStats {
    fn refused(&self, reason: &'static str) {
        *self
            .by_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Refusals by `OpenError::reason()`.
    pub fn refused_by_reason(&self) -> BTreeMap<&'static str, u64> {
        self.by_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn last_opened(&self) -> Option<Timestamp> {
        *self.last_opened.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One opened message. Ack it once handled; until then the broker holds it.
pub struct Delivery {
    pub opened: Opened,
    pub subject: String,
    pub stream_sequence: u64,
    /// Messages left for this reader after this one (all its streams).
    pub pending: u64,
    pub delivered_count: i64,
    msg: jetstream::Message,
    hold: Hold,
}

/// A delivery's claim on its envelope in the `Opener`.
struct Hold {
    opener: Arc<Opener>,
    key: ReplayKey,
}

impl Hold {
    /// Done with the envelope: a later copy is a replay. With a replay file
    /// this writes to disk (now and then a compaction), so it runs on the
    /// blocking pool.
    async fn settle(&self) {
        if self.opener.is_persistent() {
            let (opener, key) = (self.opener.clone(), self.key);
            if let Err(e) = tokio::task::spawn_blocking(move || opener.settle_key(&key)).await {
                tracing::warn!(error = %e, "recording a settled envelope failed");
            }
        } else {
            self.opener.settle_key(&self.key);
        }
    }
}

/// Dropped without an ack or term (the handler gave up, the process is
/// shutting down): the broker will redeliver it, and that copy must open.
/// After an ack or term this does nothing.
impl Drop for Hold {
    fn drop(&mut self) {
        self.opener.release_key(&self.key);
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.opened.header.id)
            .field("subject", &self.subject)
            .field("seq", &self.stream_sequence)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    async fn reply(&self, kind: AckKind, what: &str) -> Result<(), InboxError> {
        self.msg
            .ack_with(kind)
            .await
            .map_err(|e| InboxError::Receive {
                name: what.into(),
                source: e,
            })
    }

    /// The sealed envelope exactly as received, for consumers that keep a
    /// message to handle later (and open it again then) without storing
    /// its plaintext.
    pub fn envelope(&self) -> &[u8] {
        &self.msg.payload
    }

    pub async fn ack(&self) -> Result<(), InboxError> {
        // Settled even if the ack is lost: its redelivery is then acked
        // as a replay, not handled twice.
        self.hold.settle().await;
        self.reply(AckKind::Ack, "ack").await
    }

    /// Double ack: waits until the broker confirmed the ack, for callers
    /// that must not see the message again after a crash.
    pub async fn ack_confirmed(&self) -> Result<(), InboxError> {
        self.hold.settle().await;
        self.msg
            .double_ack()
            .await
            .map_err(|e| InboxError::Receive {
                name: "ack".into(),
                source: e,
            })
    }

    /// Asks for redelivery after `delay`.
    pub async fn nak(&self, delay: Duration) -> Result<(), InboxError> {
        self.hold.opener.release_key(&self.hold.key);
        self.reply(AckKind::Nak(Some(delay)), "nak").await
    }

    /// Tells the broker we are still working on it (resets ack_wait).
    pub async fn in_progress(&self) -> Result<(), InboxError> {
        self.reply(AckKind::Progress, "progress").await
    }

    pub async fn term(&self) -> Result<(), InboxError> {
        self.hold.settle().await;
        self.reply(AckKind::Term, "term").await
    }
}

/// A consumer that yields only messages this identity could open.
pub struct Inbox {
    name: String,
    /// The consumers' message streams, merged: no order across streams,
    /// each stream's own order kept.
    messages: futures::stream::SelectAll<pull::Stream>,
    /// Messages left on each stream's consumer, summed into `stats.pending`.
    pending: BTreeMap<String, u64>,
    opener: Arc<Opener>,
    directory: DirectoryHandle,
    stats: Arc<InboxStats>,
    unknown_sender_attempts: i64,
    unknown_sender_delay: Duration,
    /// A message being opened on the blocking pool. Kept here, not in the
    /// `next` future, so a caller that drops `next` (a timeout, a select)
    /// finds it again on the next call instead of losing it.
    opening: Option<Opening>,
}

/// One message and the blocking task opening it.
struct Opening {
    msg: jetstream::Message,
    subject: String,
    seq: u64,
    pending: u64,
    delivered: i64,
    task: Option<tokio::task::JoinHandle<Result<Opened, OpenError>>>,
    opener: Arc<Opener>,
}

/// The inbox went away with an open in flight: once it finishes, give the
/// envelope back so the broker's redelivery opens again.
impl Drop for Opening {
    fn drop(&mut self) {
        if let Some(task) = self.task.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let opener = self.opener.clone();
            rt.spawn(async move {
                if let Ok(Ok(opened)) = task.await {
                    opener.release_key(&ReplayKey::of(&opened.header));
                }
            });
        }
    }
}

/// JetStream answered "consumer not found" (10014), as opposed to any other
/// failure of the lookup.
fn consumer_not_found(e: &async_nats::Error) -> bool {
    use jetstream::context::{ConsumerInfoError, ConsumerInfoErrorKind};
    e.downcast_ref::<ConsumerInfoError>()
        .is_some_and(|c| c.kind() == ConsumerInfoErrorKind::NotFound)
}

/// The consumer `config` on `stream`: bound (provisioned), created or
/// reconciled (development), or a new ephemeral one.
async fn bind(
    js: &jetstream::Context,
    cfg: &InboxConfig,
    stream: &str,
    config: pull::Config,
) -> Result<jetstream::consumer::Consumer<pull::Config>, BoxError> {
    match (&cfg.durable, cfg.create) {
        (Some(durable), false) => Ok(js.get_consumer_from_stream(durable, stream).await?),
        (Some(durable), true) => {
            let stream = js.get_stream(stream).await?;
            match stream.get_consumer::<pull::Config>(durable).await {
                // Keep its position; only reconcile the filters.
                Ok(existing)
                    if existing.cached_info().config.filter_subjects == config.filter_subjects =>
                {
                    Ok(existing)
                }
                Ok(_) => Ok(stream.update_consumer(config).await?),
                // Only a consumer that is not there is created, as
                // `transport::init` does for the stream: a timeout or a
                // refusal is reported, not answered with a create.
                Err(e) if consumer_not_found(&e) => Ok(stream.create_consumer(config).await?),
                Err(e) => Err(e),
            }
        }
        (None, _) => Ok(js.get_stream(stream).await?.create_consumer(config).await?),
    }
}

impl Inbox {
    pub async fn open(
        js: &jetstream::Context,
        cfg: &InboxConfig,
        opener: Arc<Opener>,
        directory: DirectoryHandle,
    ) -> Result<Inbox, InboxError> {
        let name = cfg.durable.clone().unwrap_or_else(|| "(ephemeral)".into());
        let mut messages = futures::stream::SelectAll::new();
        let mut pending = BTreeMap::new();
        for (stream, config) in cfg.consumer_configs()? {
            let consumer =
                bind(js, cfg, &stream, config)
                    .await
                    .map_err(|e| InboxError::Consumer {
                        name: name.clone(),
                        stream: stream.clone(),
                        source: e,
                    })?;
            pending.insert(stream.clone(), consumer.cached_info().num_pending);
            let flow = consumer
                .stream()
                .max_messages_per_batch(cfg.batch.max(1))
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
                .map_err(|e| InboxError::Consumer {
                    name: name.clone(),
                    stream,
                    source: e.into(),
                })?;
            messages.push(flow);
        }
        let stats = Arc::new(InboxStats::default());
        stats
            .pending
            .store(pending.values().sum(), Ordering::Relaxed);
        Ok(Inbox {
            name,
            messages,
            pending,
            opener,
            directory,
            stats,
            unknown_sender_attempts: cfg.unknown_sender_attempts,
            unknown_sender_delay: cfg.unknown_sender_delay,
            opening: None,
        })
    }

    pub fn stats(&self) -> Arc<InboxStats> {
        self.stats.clone()
    }

    /// The next message this identity can open. Refused envelopes are
    /// handled here (terminated or acked, logged without content, counted)
    /// and never returned. `None` when the subscription ends.
    pub async fn next(&mut self) -> Option<Result<Delivery, InboxError>> {
        loop {
            if self.opening.is_none() {
                let msg = match self.messages.next().await? {
                    Ok(m) => m,
                    Err(e) => {
                        return Some(Err(InboxError::Receive {
                            name: self.name.clone(),
                            source: e.into(),
                        }));
                    }
                };
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                let (seq, delivered) = match msg.info() {
                    Ok(i) => {
                        if let Some(p) = self.pending.get_mut(i.stream) {
                            *p = i.pending;
                        }
                        (i.stream_sequence, i.delivered)
                    }
                    Err(_) => (0, 1),
                };
                let pending = self.pending.values().sum();
                self.stats.pending.store(pending, Ordering::Relaxed);
                let subject = msg.subject.to_string();
                let task = {
                    let (opener, dir) = (self.opener.clone(), self.directory.current());
                    let (subject, bytes) = (subject.clone(), msg.payload.clone());
                    tokio::task::spawn_blocking(move || opener.open_held(&dir, &subject, &bytes))
                };
                self.opening = Some(Opening {
                    msg,
                    subject,
                    seq,
                    pending,
                    delivered,
                    task: Some(task),
                    opener: self.opener.clone(),
                });
            }
            let Some(o) = self.opening.as_mut() else {
                continue;
            };
            let Some(task) = o.task.as_mut() else {
                self.opening = None;
                continue;
            };
            // Cancel-safe: dropped here, the open stays in `self.opening`.
            let opened = task.await.unwrap_or_else(|e| {
                // `open` does not panic on any input; if it ever did, this
                // message is refused, not the consumer.
                Err(OpenError::Malformed(format!("opening failed: {e}")))
            });
            o.task = None;
            let Some(o) = self.opening.take() else {
                continue;
            };
            match opened {
                Ok(opened) => {
                    self.stats.opened.fetch_add(1, Ordering::Relaxed);
                    *self
                        .stats
                        .last_opened
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(Timestamp::now());
                    return Some(Ok(Delivery {
                        subject: o.subject.clone(),
                        stream_sequence: o.seq,
                        pending: o.pending,
                        delivered_count: o.delivered,
                        hold: Hold {
                            opener: self.opener.clone(),
                            key: ReplayKey::of(&opened.header),
                        },
                        opened,
                        msg: o.msg.clone(),
                    }));
                }
                Err(e) => self.refuse(&o.msg, &o.subject, o.seq, o.delivered, e).await,
            }
        }
    }

    async fn refuse(
        &self,
        msg: &jetstream::Message,
        subject: &str,
        seq: u64,
        delivered: i64,
        e: OpenError,
    ) {
        let reason = e.reason();
        let outcome = match &e {
            // The broker redelivers a message whose ack_wait ran out while
            // it waited in this client or in a slow handler. While the
            // first copy is still held, acking here would lose it if the
            // process died before it was handled: leave it to that copy's
            // ack. Once the first copy was settled, a redelivery means its
            // ack was lost (a broker fail-over): ack it as a replay, or the
            // consumer would never drain.
            OpenError::Duplicate { id, key }
                if delivered > 1
                    && self.opener.holds_key(&ReplayKey {
                        signer: *key,
                        id: *id,
                    }) =>
            {
                tracing::debug!(consumer = %self.name, subject, seq, delivered, "redelivery of an envelope still in hand; left to its first delivery");
                return;
            }
            OpenError::Duplicate { .. } => {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                AckKind::Ack
            }
            OpenError::NotARecipient { .. } => {
                self.stats.not_for_us.fetch_add(1, Ordering::Relaxed);
                AckKind::Ack
            }
            e if e.may_succeed_later() && delivered < self.unknown_sender_attempts => {
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                AckKind::Nak(Some(
                    self.unknown_sender_delay * delivered.clamp(1, 100) as u32,
                ))
            }
            _ => {
                self.stats.terminated.fetch_add(1, Ordering::Relaxed);
                self.stats.refused(reason);
                AckKind::Term
            }
        };
        match outcome {
            AckKind::Term => tracing::warn!(
                consumer = %self.name, subject, seq, reason, error = %e,
                "refused envelope terminated; it will not be redelivered"
            ),
            AckKind::Nak(_) => tracing::info!(
                consumer = %self.name, subject, seq, reason, delivered, error = %e,
                "envelope from an unknown sender; retrying after a directory update may arrive"
            ),
            _ => tracing::debug!(consumer = %self.name, subject, seq, reason, "envelope skipped"),
        }
        if let Err(ack_err) = msg.ack_with(outcome).await {
            tracing::warn!(consumer = %self.name, seq, error = %ack_err, "cannot ack refused envelope");
        }
    }
}
