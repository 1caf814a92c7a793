//! Bus → rooms delivery.
//!
//! One task reads the bridge's durable consumer; each message goes to the
//! worker task of every room whose filters select it. A worker posts in
//! order: policy check against the live room (withheld with a notice when
//! the label does not fit), rendering, then a send whose Matrix transaction
//! id is derived from the envelope id, the room and the part being sent, so
//! a resend after a crash or a lost response is deduplicated by the
//! homeserver. The bus message is acked once every one of its rooms is
//! done; until then the bridge tells the broker it is still working on it.
//!
//! A room that fails keeps retrying (with the server's `retry_after` for
//! rate limits). When it has failed for longer than `delivery.park_after`,
//! its messages move into the bridge's store ("parked", as sealed
//! envelopes) and count as done for the ack, so one broken room cannot
//! fill the broker's ack window and stall the others; the worker drains
//! the parked backlog in order once the room works again.
//!
//! Indicator floods go into a digest kept in the store (again as sealed
//! envelopes); the bus message is acked once it is stored there, and the
//! digest is posted, exactly once, when its window closes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use jiff::Timestamp;
use matrix_sdk::Room;
use matrix_sdk::ruma::OwnedRoomId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use uuid::Uuid;
use varde_bus::directory::{DirectoryHandle, VerifiedDirectory};
use varde_bus::inbox::{Delivery, Inbox};
use varde_bus::keys::Identity;
use varde_bus::seal::OpenError;
use varde_schemas::payload::IndicatorBatch;
use varde_schemas::{Payload, Tlp};

use crate::config::{self, Language};
use crate::delivery::{self, DigestWindow, Revision};
use crate::matrix::{Bot, SendError, backoff, txn_id};
use crate::message::{self, Message};
use crate::metrics::Metrics;
use crate::policy::{self, RoomRules, Violation};
use crate::render::{self, Rendered, Style};
use crate::store::{
    DigestRow, Part, ReleaseRequest, ReleaseState, Store, StoredEnvelope, Withheld, WithheldStatus,
    now_ms,
};

/// What every worker shares.
pub struct Context {
    pub bot: Bot,
    pub store: Arc<Store>,
    pub directory: DirectoryHandle,
    pub identity: Arc<Identity>,
    pub metrics: Arc<Metrics>,
    pub delivery: config::Delivery,
    dispatched_releases: std::sync::Mutex<HashSet<i64>>,
}

impl Context {
    pub fn new(
        bot: Bot,
        store: Arc<Store>,
        directory: DirectoryHandle,
        identity: Arc<Identity>,
        metrics: Arc<Metrics>,
        delivery: config::Delivery,
    ) -> Arc<Context> {
        Arc::new(Context {
            bot,
            store,
            directory,
            identity,
            metrics,
            delivery,
            dispatched_releases: Default::default(),
        })
    }

    /// Opens a stored envelope again with the bridge's key and the current
    /// directory (so a key revoked or a message expired since is refused).
    pub fn open_stored(&self, e: &StoredEnvelope) -> Result<Message, OpenError> {
        message::open_stored(&self.identity, &self.directory.current(), e)
    }
}

/// A bus message on its way to its rooms.
struct Job {
    msg: Message,
    delivery: Delivery,
    remaining: AtomicUsize,
    received: Instant,
    id: u64,
    _permit: OwnedSemaphorePermit,
}

enum Task {
    Deliver(Arc<Job>),
    Release(ReleaseRequest),
}

/// A configured room with its resolved id and worker queue.
pub struct RoomTarget {
    pub cfg: config::Room,
    pub room_id: OwnedRoomId,
    tx: mpsc::UnboundedSender<Task>,
}

/// A bus message for the room side (incidents and incident-room chat),
/// acked once handled.
pub struct SideJob {
    pub msg: Message,
    pub delivery: Delivery,
    pub permit: OwnedSemaphorePermit,
}

/// The running relay.
pub struct Relay {
    ctx: Arc<Context>,
    rooms: Vec<RoomTarget>,
    in_flight: Arc<std::sync::Mutex<BTreeMap<u64, Arc<Job>>>>,
    side: Option<mpsc::UnboundedSender<SideJob>>,
}

#[derive(Debug)]
enum Outcome {
    Posted,
    Parked,
    Withheld,
    Digested,
    AlreadyDone,
}

impl Relay {
    /// Starts one worker per room. `rooms` pairs each configured room with
    /// its resolved room id.
    pub fn start(ctx: Arc<Context>, rooms: Vec<(config::Room, OwnedRoomId)>) -> Relay {
        let in_flight: Arc<std::sync::Mutex<BTreeMap<u64, Arc<Job>>>> = Default::default();
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        tokio::spawn(ack_loop(ack_rx, in_flight.clone()));
        tokio::spawn(heartbeat_loop(ctx.clone(), in_flight.clone()));
        let mut targets = Vec::new();
        for (cfg, room_id) in rooms {
            let (tx, rx) = mpsc::unbounded_channel();
            let worker = Worker {
                ctx: ctx.clone(),
                cfg: cfg.clone(),
                room_id: room_id.clone(),
                rx,
                acks: ack_tx.clone(),
                window: DigestWindow::default(),
                failing_since: None,
                digest_retry_at: None,
            };
            tokio::spawn(worker.run());
            targets.push(RoomTarget { cfg, room_id, tx });
        }
        Relay {
            ctx,
            rooms: targets,
            in_flight,
            side: None,
        }
    }

    /// Hands incidents and incident-room chat to the room side.
    pub fn with_side(mut self, tx: mpsc::UnboundedSender<SideJob>) -> Relay {
        self.side = Some(tx);
        self
    }

    /// Reads the bus until the subscription ends.
    pub async fn run(self, mut inbox: Inbox) -> anyhow::Result<()> {
        let this = Arc::new(self);
        tokio::spawn(release_loop(this.clone()));
        let permits = Arc::new(Semaphore::new(this.ctx.delivery.max_in_flight));
        let next_id = AtomicU64::new(0);
        loop {
            let permit = permits.clone().acquire_owned().await?;
            let d = match inbox.next().await {
                None => anyhow::bail!("the bus subscription ended"),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "bus receive error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Some(Ok(d)) => d,
            };
            let msg = Message {
                header: d.opened.header.clone(),
                payload: d.opened.payload.clone(),
                envelope: StoredEnvelope {
                    envelope_id: d.opened.header.id,
                    subject: d.subject.clone(),
                    bytes: d.envelope().to_vec(),
                },
            };
            this.ctx
                .metrics
                .health
                .last_bus_ms
                .store(crate::store::now_ms(), Ordering::Relaxed);
            // Who said it is the verified sender; a payload that speaks
            // for another org is refused here, before any room sees it.
            if let Err(why) =
                crate::author::check(&this.ctx.directory.current(), &msg.header, &msg.payload)
            {
                tracing::warn!(envelope = %msg.header.id, sender = %msg.header.sender.org, %why, "message refused: it claims another organisation's author");
                this.ctx.metrics.refused(why.reason());
                if let Err(e) = d.term().await {
                    tracing::warn!(error = %e, "cannot terminate a refused message");
                }
                continue;
            }
            let values = crate::ioc::values_of(&msg.payload);
            if !values.is_empty()
                && let Err(e) = this.ctx.store.index_values(&msg.envelope, &values)
            {
                tracing::warn!(envelope = %msg.header.id, error = %e, "cannot index the message's values for `ioc`");
            }
            let for_side = match &msg.payload {
                Payload::Incident(_) => true,
                Payload::Chat(c) => c.conversation.starts_with("incident:"),
                _ => false,
            };
            if for_side {
                match &this.side {
                    Some(tx) => {
                        let _ = tx.send(SideJob {
                            msg,
                            delivery: d,
                            permit,
                        });
                    }
                    None => {
                        if let Err(e) = d.ack().await {
                            tracing::warn!(error = %e, "cannot ack an incident message");
                        }
                    }
                }
                continue;
            }
            let own_key = this.ctx.identity.key_id;
            let targets: Vec<&RoomTarget> = this
                .rooms
                .iter()
                .filter(|r| match &msg.payload {
                    Payload::Chat(c) => crate::route::wants_chat(
                        &r.cfg,
                        r.room_id.as_str(),
                        &msg.header,
                        c,
                        own_key,
                    ),
                    _ => crate::route::wants(&r.cfg, &msg.header, &msg.payload),
                })
                .collect();
            tracing::debug!(
                envelope = %msg.header.id,
                kind = %msg.header.kind,
                label = %msg.header.label,
                rooms = targets.len(),
                "bus message"
            );
            if targets.is_empty() {
                if let Err(e) = d.ack().await {
                    tracing::warn!(error = %e, "cannot ack a message no room wants");
                }
                continue;
            }
            let job = Arc::new(Job {
                msg,
                delivery: d,
                remaining: AtomicUsize::new(targets.len()),
                received: Instant::now(),
                id: next_id.fetch_add(1, Ordering::Relaxed),
                _permit: permit,
            });
            this.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(job.id, job.clone());
            for t in targets {
                if t.tx.send(Task::Deliver(job.clone())).is_err() {
                    tracing::error!(room = %t.cfg.name, "room worker stopped");
                }
            }
        }
    }

    fn room(&self, room_id: &str) -> Option<&RoomTarget> {
        self.rooms.iter().find(|r| r.room_id.as_str() == room_id)
    }
}

/// Acks bus messages whose rooms are all done, confirmed by the broker.
async fn ack_loop(
    mut rx: mpsc::UnboundedReceiver<Arc<Job>>,
    in_flight: Arc<std::sync::Mutex<BTreeMap<u64, Arc<Job>>>>,
) {
    while let Some(job) = rx.recv().await {
        let mut attempt = 0;
        loop {
            match job.delivery.ack_confirmed().await {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    tracing::warn!(envelope = %job.msg.header.id, error = %e, "ack failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                // The broker will redeliver it; the store knows it is done.
                Err(e) => {
                    tracing::warn!(envelope = %job.msg.header.id, error = %e, "ack failed; the message will be redelivered and skipped");
                    break;
                }
            }
        }
        in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job.id);
    }
}

/// Keeps un-acked messages from being redelivered while rooms work on
/// them, and publishes the lag gauges.
async fn heartbeat_loop(
    ctx: Arc<Context>,
    in_flight: Arc<std::sync::Mutex<BTreeMap<u64, Arc<Job>>>>,
) {
    let every = (ctx.delivery.ack_wait / 3).max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let jobs: Vec<Arc<Job>> = in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        ctx.metrics
            .in_flight
            .set(i64::try_from(jobs.len()).unwrap_or(i64::MAX));
        let oldest = jobs
            .iter()
            .map(|j| j.received.elapsed())
            .max()
            .unwrap_or_default();
        ctx.metrics
            .oldest_in_flight_seconds
            .set(crate::metrics::secs(oldest));
        for j in jobs {
            if j.remaining.load(Ordering::Acquire) > 0
                && let Err(e) = j.delivery.in_progress().await
            {
                tracing::debug!(envelope = %j.msg.header.id, error = %e, "in-progress signal failed");
            }
        }
    }
}

/// Hands `varde-bridge release` requests to the room workers.
async fn release_loop(relay: Arc<Relay>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let pending = match relay.ctx.store.pending_releases() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read release requests");
                continue;
            }
        };
        for r in pending {
            let fresh = relay
                .ctx
                .dispatched_releases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(r.id);
            if !fresh {
                continue;
            }
            match relay.room(&r.room_id) {
                Some(t) => {
                    let _ = t.tx.send(Task::Release(r));
                }
                None => {
                    let _ = relay.ctx.store.finish_release(
                        r.id,
                        ReleaseState::Refused,
                        Some("the room is not in this bridge's configuration"),
                        None,
                    );
                }
            }
        }
    }
}

struct Worker {
    ctx: Arc<Context>,
    cfg: config::Room,
    room_id: OwnedRoomId,
    rx: mpsc::UnboundedReceiver<Task>,
    acks: mpsc::UnboundedSender<Arc<Job>>,
    /// Individually posted indicators in the current digest window.
    window: DigestWindow,
    failing_since: Option<Instant>,
    digest_retry_at: Option<Instant>,
}

impl Worker {
    fn rid(&self) -> &str {
        self.room_id.as_str()
    }

    fn rules(&self) -> RoomRules {
        RoomRules {
            ceiling: self.cfg.ceiling,
            red: self.cfg.red,
        }
    }

    fn lang(&self) -> Language {
        self.cfg.language
    }

    async fn run(mut self) {
        loop {
            let parked = match self.ctx.store.parked_count(self.rid()) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(room = %self.cfg.name, error = %e, "store error");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            self.ctx.metrics.set_parked(&self.cfg.name, parked);
            if parked > 0 {
                self.drain_parked().await;
                continue;
            }
            let due = self.digest_due();
            tokio::select! {
                task = self.rx.recv() => match task {
                    None => return,
                    Some(Task::Deliver(job)) => self.deliver_guarded(job).await,
                    Some(Task::Release(r)) => self.release(r).await,
                },
                _ = sleep_until(due), if due.is_some() => self.flush_digest_now().await,
            }
        }
    }

    /// When the open digest (if any) should be posted.
    fn digest_due(&self) -> Option<Instant> {
        let row = self.ctx.store.open_digest(self.rid()).ok().flatten()?;
        let wait = Duration::from_millis(u64::try_from(row.due_ms - now_ms()).unwrap_or(0));
        let at = Instant::now() + wait;
        Some(match self.digest_retry_at {
            Some(r) if r > at => r,
            _ => at,
        })
    }

    fn done(&self, job: &Arc<Job>, outcome: &Outcome) {
        if matches!(outcome, Outcome::Posted) {
            let age: Duration = Timestamp::now()
                .duration_since(job.msg.header.created)
                .try_into()
                .unwrap_or(Duration::ZERO);
            self.ctx.metrics.delivery_seconds.observe(age.as_secs_f64());
        }
        if job.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.acks.send(job.clone());
        }
    }

    /// `deliver_job`, with a panic (a bug some input ran into) caught: the
    /// message is recorded as withheld for this room and the worker goes
    /// on with the next one instead of dying with the room's queue.
    async fn deliver_guarded(&mut self, job: Arc<Job>) {
        let caught = std::panic::AssertUnwindSafe(self.deliver_job(job.clone()))
            .catch_unwind()
            .await;
        if caught.is_err() {
            tracing::error!(room = %self.cfg.name, envelope = %job.msg.header.id, kind = %job.msg.header.kind, "panic while delivering a message; withheld from this room, the room goes on");
            self.ctx.metrics.panicked("room_worker");
            let v = Violation::RefusedByHomeserver { status: 0 };
            let _ = self.ctx.store.withhold(&Withheld {
                reason: "panic".into(),
                detail: "the bridge panicked while delivering it".into(),
                ..self.withheld_row(&job.msg, &v)
            });
            let _ = self
                .ctx
                .store
                .mark_done(job.msg.header.id, self.rid(), None);
            self.done(&job, &Outcome::Withheld);
        }
    }

    async fn deliver_job(&mut self, job: Arc<Job>) {
        let mut attempt = 0u32;
        loop {
            match self.deliver(&job.msg).await {
                Ok(outcome) => {
                    self.failing_since = None;
                    tracing::debug!(room = %self.cfg.name, envelope = %job.msg.header.id, ?outcome, "delivered");
                    self.done(&job, &outcome);
                    return;
                }
                Err(e) if e.is_final(attempt + 1) => {
                    let outcome = self.refused_for_good(&job.msg, &e).await;
                    self.done(&job, &outcome);
                    return;
                }
                Err(e) => {
                    self.ctx.metrics.retry(&self.cfg.name, e.reason());
                    let since = *self.failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.ctx.delivery.park_after {
                        match self.ctx.store.park(self.rid(), &job.msg.envelope) {
                            Ok(()) => {
                                tracing::warn!(
                                    room = %self.cfg.name,
                                    envelope = %job.msg.header.id,
                                    error = %e,
                                    "room keeps failing; message parked in the bridge's store"
                                );
                                self.done(&job, &Outcome::Parked);
                                return;
                            }
                            Err(se) => {
                                tracing::error!(room = %self.cfg.name, error = %se, "cannot park a message")
                            }
                        }
                    }
                    let wait = e.retry_after().unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(
                        room = %self.cfg.name,
                        envelope = %job.msg.header.id,
                        kind = %job.msg.header.kind,
                        label = %job.msg.header.label,
                        error = %e,
                        wait_ms = wait.as_millis() as u64,
                        "post failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// Works through the parked backlog (oldest first); new messages for
    /// the room join the backlog meanwhile so that order is kept.
    async fn drain_parked(&mut self) {
        while let Ok(task) = self.rx.try_recv() {
            self.absorb(task).await;
        }
        let parked = match self.ctx.store.oldest_parked(self.rid()) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(room = %self.cfg.name, error = %e, "store error");
                tokio::time::sleep(Duration::from_secs(5)).await;
                return;
            }
        };
        let msg = match self.ctx.open_stored(&parked.envelope) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(
                    room = %self.cfg.name,
                    envelope = %parked.envelope.envelope_id,
                    reason = e.reason(),
                    error = %e,
                    "parked message can no longer be opened (expired or revoked); dropped"
                );
                let _ = self.ctx.store.unpark(parked.seq);
                return;
            }
        };
        let mut attempt = 0u32;
        loop {
            // A message can expire while its room is down; it is not
            // posted late.
            if let Some(at) = msg.header.expires
                && at <= Timestamp::now()
            {
                tracing::warn!(room = %self.cfg.name, envelope = %msg.header.id, expired = %at, "parked message expired before its room worked again; dropped");
                let _ = self.ctx.store.unpark(parked.seq);
                return;
            }
            match self.deliver(&msg).await {
                Ok(_) => {
                    self.failing_since = None;
                    let _ = self.ctx.store.unpark(parked.seq);
                    return;
                }
                Err(e) if e.is_final(attempt + 1) => {
                    self.refused_for_good(&msg, &e).await;
                    let _ = self.ctx.store.unpark(parked.seq);
                    return;
                }
                Err(e) => {
                    self.ctx.metrics.retry(&self.cfg.name, e.reason());
                    let wait = e.retry_after().unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(room = %self.cfg.name, error = %e, wait_ms = wait.as_millis() as u64, "parked backlog: post failed; retrying");
                    let deadline = tokio::time::Instant::now() + wait;
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline) => break,
                            task = self.rx.recv() => match task {
                                Some(t) => self.absorb(t).await,
                                None => return,
                            },
                        }
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// A task arriving while the room has a backlog.
    async fn absorb(&mut self, task: Task) {
        match task {
            Task::Deliver(job) => match self.ctx.store.park(self.rid(), &job.msg.envelope) {
                Ok(()) => self.done(&job, &Outcome::Parked),
                Err(e) => {
                    tracing::error!(room = %self.cfg.name, error = %e, "cannot park; delivering directly");
                    self.deliver_job(job).await;
                }
            },
            Task::Release(r) => self.release(r).await,
        }
    }

    /// One message into this room. Idempotent: safe to repeat after any
    /// failure or crash.
    async fn deliver(&mut self, msg: &Message) -> Result<Outcome, SendError> {
        let id = msg.header.id;
        if self.ctx.store.is_done(id, self.rid())? {
            return Ok(Outcome::AlreadyDone);
        }
        if let Payload::Indicator(batch) = &msg.payload
            && self.fold_into_digest(batch)?
        {
            let row = match self.ctx.store.open_digest(self.rid())? {
                Some(row) => row,
                None => {
                    let window = self
                        .cfg
                        .digest
                        .as_ref()
                        .map_or(Duration::ZERO, |d| d.window);
                    let opened = now_ms();
                    let row = DigestRow {
                        id: Uuid::now_v7(),
                        room_id: self.rid().to_string(),
                        opened_ms: opened,
                        due_ms: delivery::digest_due(opened, window),
                    };
                    self.ctx.store.create_digest(&row)?;
                    row
                }
            };
            self.ctx
                .store
                .digest_add(self.rid(), row.id, &msg.envelope, batch.indicators.len())?;
            return Ok(Outcome::Digested);
        }
        let room = self.ctx.bot.joined_room(&self.room_id).await?;
        let dir = self.ctx.directory.current();
        let view = self
            .ctx
            .bot
            // GREEN too: a stale member list could admit someone outside
            // the message's audience.
            .view(&room, msg.header.label >= Tlp::Green)
            .await?;
        if let Err(v) = policy::check(
            &dir,
            self.rules(),
            &view,
            msg.header.label,
            &msg.header.audience,
        ) {
            return self.withhold(&room, msg, &v).await;
        }
        self.post(&room, msg, &dir).await?;
        if let Payload::Indicator(b) = &msg.payload {
            self.window.posted(b.indicators.len());
        }
        Ok(Outcome::Posted)
    }

    /// Whether an indicator batch goes into the room's digest
    /// (`DigestWindow::folds`).
    fn fold_into_digest(&mut self, batch: &IndicatorBatch) -> Result<bool, SendError> {
        let Some(d) = &self.cfg.digest else {
            return Ok(false);
        };
        let open = self.ctx.store.open_digest(self.rid())?.is_some();
        Ok(self
            .window
            .folds(d, Instant::now(), batch.indicators.len(), open))
    }

    /// The homeserver will never take this message into this room: it is
    /// withheld (recorded, counted, a notice posted once if the room takes
    /// that) and the room moves on to the next message.
    async fn refused_for_good(&self, msg: &Message, e: &SendError) -> Outcome {
        let status = match e {
            SendError::Refused { status, .. } => *status,
            _ => 0,
        };
        let v = Violation::RefusedByHomeserver { status };
        tracing::warn!(room = %self.cfg.name, envelope = %msg.header.id, kind = %msg.header.kind, error = %e, "the homeserver refused the post for good; withheld, and the room goes on");
        let notice = match self.ctx.bot.joined_room(&self.room_id).await {
            Ok(room) => self.withhold(&room, msg, &v).await,
            Err(e) => Err(e),
        };
        if let Err(ne) = notice {
            // Not even the notice goes in: record it as withheld anyway so
            // `varde-bridge withheld` shows it, and never try again.
            tracing::warn!(room = %self.cfg.name, envelope = %msg.header.id, error = %ne, "withheld notice not posted either");
            self.ctx.metrics.withheld(&self.cfg.name, v.reason());
            let _ = self.ctx.store.withhold(&self.withheld_row(msg, &v));
            let _ = self.ctx.store.mark_done(msg.header.id, self.rid(), None);
        }
        Outcome::Withheld
    }

    fn withheld_row(&self, msg: &Message, v: &Violation) -> Withheld {
        Withheld {
            envelope_id: msg.header.id,
            room_id: self.rid().to_string(),
            reason: v.reason().to_string(),
            detail: v.to_string(),
            label: msg.header.label.as_str().to_string(),
            kind: msg.header.kind.as_str().to_string(),
            at_ms: now_ms(),
            status: WithheldStatus::Withheld,
            envelope: msg.envelope.clone(),
        }
    }

    async fn withhold(
        &self,
        room: &Room,
        msg: &Message,
        v: &Violation,
    ) -> Result<Outcome, SendError> {
        let id = msg.header.id;
        self.ctx.store.withhold(&self.withheld_row(msg, v))?;
        let notice = render::withheld(
            self.lang(),
            msg.header.label,
            msg.header.kind,
            id,
            self.rid(),
            v,
        );
        self.ctx
            .bot
            .send_once(
                &self.ctx.store,
                room,
                &id.to_string(),
                Part::Withheld,
                notice.content(),
            )
            .await?;
        self.ctx.store.mark_done(id, self.rid(), None)?;
        self.ctx.metrics.withheld(&self.cfg.name, v.reason());
        tracing::warn!(
            room = %self.cfg.name,
            envelope = %id,
            kind = %msg.header.kind,
            label = %msg.header.label,
            reason = v.reason(),
            detail = %v,
            "message withheld from the room; a notice was posted instead"
        );
        Ok(Outcome::Withheld)
    }

    /// Sends a rendered post (and its file, if any); returns the post's
    /// event id.
    async fn send_rendered(
        &self,
        room: &Room,
        key: &str,
        r: &Rendered,
        part: Part,
    ) -> Result<String, SendError> {
        let bot = &self.ctx.bot;
        let store = &self.ctx.store;
        let event = bot
            .send_once(store, room, key, part, r.post.content())
            .await?;
        if let Some(file) = &r.file {
            let mime = file.mime.parse().unwrap_or(mime::TEXT_PLAIN);
            bot.send_file_once(
                store,
                room,
                key,
                part.file(),
                (&file.name, &mime, file.data.clone()),
            )
            .await?;
        }
        Ok(event)
    }

    async fn post(
        &self,
        room: &Room,
        msg: &Message,
        dir: &VerifiedDirectory,
    ) -> Result<(), SendError> {
        let sender_name = dir
            .org(msg.header.sender.org.as_str())
            .map(|o| o.name.clone())
            .unwrap_or_else(|| msg.header.sender.org.to_string());
        let style = Style {
            lang: self.lang(),
            sender_name: &sender_name,
            urgent_alerts: self.cfg.urgent_alerts && delivery::may_wake_room(dir, &msg.header),
        };
        let id = msg.header.id;
        let key = id.to_string();
        if let Payload::Chat(c) = &msg.payload {
            if crate::share::post(&self.ctx.bot, &self.ctx.store, dir, room, msg, c).await? {
                self.ctx.metrics.posted(&self.cfg.name, "chat");
            } else {
                self.ctx.metrics.refused("not_own_words");
            }
            return Ok(());
        }
        let rendered = render::message(&style, &msg.header, &msg.payload);
        let Payload::Advisory(a) = &msg.payload else {
            if rendered.file.is_none() {
                // The common case in one send and one commit; a resend
                // after a crash is deduplicated by the transaction id.
                let event = self
                    .ctx
                    .bot
                    .send(
                        room,
                        rendered.post.content(),
                        &txn_id(&key, self.rid(), Part::Post),
                    )
                    .await?;
                self.ctx
                    .store
                    .record_event(self.rid(), &event, &msg.header, false)?;
                self.ctx
                    .store
                    .record_done(id, self.rid(), Part::Post, &event)?;
            } else {
                let event = self
                    .send_rendered(room, &key, &rendered, Part::Post)
                    .await?;
                self.ctx
                    .store
                    .record_event(self.rid(), &event, &msg.header, false)?;
                self.ctx.store.mark_done(id, self.rid(), Some(&event))?;
            }
            self.ctx
                .metrics
                .posted(&self.cfg.name, msg.header.kind.as_str());
            return Ok(());
        };
        let known =
            self.ctx
                .store
                .advisory(self.rid(), msg.header.sender.org.as_str(), &a.advisory_id)?;
        match delivery::revision(known, a.revision) {
            Revision::Stale => {
                tracing::info!(room = %self.cfg.name, envelope = %id, revision = a.revision, "older advisory revision than the one in the room; not posted");
                self.ctx.store.mark_done(id, self.rid(), None)?;
            }
            Revision::Edit { first } => {
                let (bot, store) = (&self.ctx.bot, &self.ctx.store);
                let replacing = rendered.post.replacing(&first);
                let edit = bot
                    .send_once(store, room, &key, Part::Edit, replacing)
                    .await?;
                let note = render::revision_note(self.lang(), msg.header.label, a);
                bot.send_once(store, room, &key, Part::Thread, note.in_thread(&first))
                    .await?;
                self.ctx.store.set_advisory(
                    self.rid(),
                    msg.header.sender.org.as_str(),
                    &a.advisory_id,
                    &first,
                    a.revision,
                )?;
                self.ctx.store.mark_done(id, self.rid(), Some(&edit))?;
                self.ctx.metrics.posted(&self.cfg.name, "advisory_revision");
            }
            Revision::First => {
                let event = self
                    .send_rendered(room, &key, &rendered, Part::Post)
                    .await?;
                self.ctx
                    .store
                    .record_event(self.rid(), &event, &msg.header, false)?;
                self.ctx.store.set_advisory(
                    self.rid(),
                    msg.header.sender.org.as_str(),
                    &a.advisory_id,
                    &event,
                    a.revision,
                )?;
                self.ctx.store.mark_done(id, self.rid(), Some(&event))?;
                self.ctx.metrics.posted(&self.cfg.name, "advisory");
            }
        }
        Ok(())
    }

    async fn flush_digest_now(&mut self) {
        match self.flush_digest().await {
            Ok(()) => self.digest_retry_at = None,
            Err(e) => {
                self.ctx.metrics.retry(&self.cfg.name, e.reason());
                let wait = e.retry_after().unwrap_or(Duration::from_secs(5));
                tracing::warn!(room = %self.cfg.name, error = %e, "digest post failed; retrying");
                self.digest_retry_at = Some(Instant::now() + wait);
            }
        }
    }

    /// Posts the room's open digest: one message and one CSV for the
    /// batches the room may show, one notice for those it may not.
    async fn flush_digest(&mut self) -> Result<(), SendError> {
        let Some(row) = self.ctx.store.open_digest(self.rid())? else {
            return Ok(());
        };
        let key = row.id.to_string();
        let mut items = Vec::new();
        for e in self.ctx.store.digest_items(row.id)? {
            if self.ctx.store.is_done(e.envelope_id, self.rid())? {
                continue;
            }
            match self.ctx.open_stored(&e) {
                Ok(m) => items.push(m),
                Err(err) => {
                    tracing::warn!(room = %self.cfg.name, envelope = %e.envelope_id, reason = err.reason(), "digest item can no longer be opened; dropped");
                    self.ctx.store.mark_done(e.envelope_id, self.rid(), None)?;
                }
            }
        }
        if !items.is_empty() {
            let room = self.ctx.bot.joined_room(&self.room_id).await?;
            let dir = self.ctx.directory.current();
            let top = items
                .iter()
                .map(|m| m.header.label)
                .max()
                .unwrap_or(Tlp::Clear);
            let view = self.ctx.bot.view(&room, top >= Tlp::Amber).await?;
            let mut ok = Vec::new();
            let mut refused: Vec<(&Message, Violation)> = Vec::new();
            for m in &items {
                match policy::check(
                    &dir,
                    self.rules(),
                    &view,
                    m.header.label,
                    &m.header.audience,
                ) {
                    Ok(()) => ok.push(m),
                    Err(v) => refused.push((m, v)),
                }
            }
            if !refused.is_empty() {
                for (m, v) in &refused {
                    self.ctx.store.withhold(&Withheld {
                        envelope_id: m.header.id,
                        room_id: self.rid().to_string(),
                        reason: v.reason().to_string(),
                        detail: v.to_string(),
                        label: m.header.label.as_str().to_string(),
                        kind: m.header.kind.as_str().to_string(),
                        at_ms: now_ms(),
                        status: WithheldStatus::Withheld,
                        envelope: m.envelope.clone(),
                    })?;
                    self.ctx.metrics.withheld(&self.cfg.name, v.reason());
                }
                {
                    let mut reasons: Vec<String> = refused
                        .iter()
                        .map(|(_, v)| crate::render::violation_text(self.lang(), v))
                        .collect();
                    reasons.sort();
                    reasons.dedup();
                    let label = refused
                        .iter()
                        .map(|(m, _)| m.header.label)
                        .max()
                        .unwrap_or(Tlp::Clear);
                    let notice = render::withheld_many(self.lang(), label, refused.len(), &reasons);
                    self.ctx
                        .bot
                        .send_once(
                            &self.ctx.store,
                            &room,
                            &key,
                            Part::Withheld,
                            notice.content(),
                        )
                        .await?;
                }
                tracing::warn!(room = %self.cfg.name, digest = %row.id, count = refused.len(), "digest items withheld from the room");
                for (m, _) in &refused {
                    self.ctx.store.mark_done(m.header.id, self.rid(), None)?;
                }
            }
            if !ok.is_empty() {
                let names: Vec<String> = ok
                    .iter()
                    .map(|m| {
                        dir.org(m.header.sender.org.as_str())
                            .map(|o| o.name.clone())
                            .unwrap_or_else(|| m.header.sender.org.to_string())
                    })
                    .collect();
                let digest_items: Vec<render::DigestItem<'_>> = ok
                    .iter()
                    .zip(&names)
                    .filter_map(|(m, name)| match &m.payload {
                        Payload::Indicator(b) => Some(render::DigestItem {
                            header: &m.header,
                            batch: b,
                            sender_name: name,
                        }),
                        _ => None,
                    })
                    .collect();
                let window = Some((
                    Timestamp::from_millisecond(row.opened_ms).unwrap_or_else(|_| Timestamp::now()),
                    Timestamp::from_millisecond(row.due_ms).unwrap_or_else(|_| Timestamp::now()),
                ));
                let sample = self.cfg.digest.as_ref().map_or(20, |d| d.sample);
                let rendered = render::digest(self.lang(), &digest_items, window, sample);
                let event = self
                    .send_rendered(&room, &key, &rendered, Part::Digest)
                    .await?;
                for m in &ok {
                    self.ctx
                        .store
                        .mark_done(m.header.id, self.rid(), Some(&event))?;
                }
                self.ctx
                    .metrics
                    .digests
                    .get_or_create(&crate::metrics::RoomLabel {
                        room: self.cfg.name.clone(),
                    })
                    .inc();
                self.ctx.metrics.posted(&self.cfg.name, "indicator_digest");
                tracing::info!(room = %self.cfg.name, digest = %row.id, batches = ok.len(), "indicator digest posted");
            }
        }
        self.ctx.store.close_digest(row.id)?;
        Ok(())
    }

    /// `varde-bridge release`: checks the room again and posts the message
    /// if it now complies.
    async fn release(&self, r: ReleaseRequest) {
        /// A release attempt that got an answer from the room (a send
        /// failure leaves the request pending instead).
        enum Attempt {
            /// Posted, as the recorded event (if any).
            Posted(Option<String>),
            /// The room still does not comply.
            StillRefused(Violation),
        }
        let finish = |state: ReleaseState, detail: Option<String>, event: Option<&str>| {
            if let Err(e) = self
                .ctx
                .store
                .finish_release(r.id, state, detail.as_deref(), event)
            {
                tracing::error!(error = %e, "cannot record a release outcome");
            }
            self.ctx
                .dispatched_releases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&r.id);
        };
        let w = match self.ctx.store.withheld(r.envelope_id, self.rid()) {
            Ok(Some(w)) => w,
            Ok(None) => {
                return finish(
                    ReleaseState::Refused,
                    Some("no message with this id was withheld from this room".into()),
                    None,
                );
            }
            Err(e) => return finish(ReleaseState::Failed, Some(e.to_string()), None),
        };
        if w.status == WithheldStatus::Released {
            return finish(ReleaseState::Refused, Some("already released".into()), None);
        }
        let msg = match self.ctx.open_stored(&w.envelope) {
            Ok(m) => m,
            Err(e) => {
                return finish(
                    ReleaseState::Refused,
                    Some(format!("the message cannot be opened any more: {e}")),
                    None,
                );
            }
        };
        let attempt = async {
            let room = self.ctx.bot.joined_room(&self.room_id).await?;
            let view = self.ctx.bot.view(&room, true).await?;
            let dir = self.ctx.directory.current();
            if let Err(v) = policy::check(
                &dir,
                self.rules(),
                &view,
                msg.header.label,
                &msg.header.audience,
            ) {
                return Ok::<_, SendError>(Attempt::StillRefused(v));
            }
            self.post(&room, &msg, &dir).await?;
            let event = self
                .ctx
                .store
                .part(&msg.header.id.to_string(), self.rid(), Part::Post)?
                .and_then(|p| p.event_id);
            Ok(Attempt::Posted(event))
        };
        match attempt.await {
            Ok(Attempt::Posted(event)) => {
                let _ = self.ctx.store.set_withheld_status(
                    r.envelope_id,
                    self.rid(),
                    WithheldStatus::Released,
                );
                self.ctx
                    .metrics
                    .released
                    .get_or_create(&crate::metrics::RoomLabel {
                        room: self.cfg.name.clone(),
                    })
                    .inc();
                tracing::info!(room = %self.cfg.name, envelope = %r.envelope_id, "withheld message released into the room");
                finish(ReleaseState::Posted, None, event.as_deref());
            }
            Ok(Attempt::StillRefused(v)) => {
                tracing::warn!(room = %self.cfg.name, envelope = %r.envelope_id, reason = v.reason(), detail = %v, "release refused: the room still does not comply");
                finish(ReleaseState::Refused, Some(v.to_string()), None);
            }
            // Transient: leave the request pending for the next round.
            Err(e) => {
                tracing::warn!(room = %self.cfg.name, envelope = %r.envelope_id, error = %e, "release failed; will retry");
                self.ctx
                    .dispatched_releases
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&r.id);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
