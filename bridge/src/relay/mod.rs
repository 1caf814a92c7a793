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
//!
//! The decisions (digest windows, advisory revisions, who may wake a room)
//! are pure code in varde-bridge-core's `delivery`; the files here do the
//! I/O:
//!
//! - `mod.rs`: the dispatch: one bus message → the workers of its rooms.
//! - `acks.rs`: acks once every room is done, in-progress heartbeats.
//! - `worker.rs`: one room's queue in order, with retries.
//! - `post.rs`: a post (and its file), chat, advisory revisions as edits.
//! - `digest.rs`: indicator floods folded into one digest post.
//! - `parking.rs`: a failing room's backlog in the store, drained in order.
//! - `withhold.rs`: what the room may not show: recorded, a notice instead.
//! - `release.rs`: `varde-bridge release`, through the room's worker.

mod acks;
mod digest;
mod parking;
mod post;
mod release;
mod withhold;
mod worker;

use worker::Worker;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use matrix_sdk::ruma::OwnedRoomId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use varde_bus::directory::DirectoryHandle;
use varde_bus::inbox::{Delivery, Inbox};
use varde_bus::keys::Identity;
use varde_bus::seal::OpenError;
use varde_schemas::Payload;

use crate::config::{self};
use crate::delivery::DigestWindow;
use crate::matrix::Bot;
use crate::message::{self, Message};
use crate::metrics::Metrics;
use crate::store::{ReleaseRequest, Store, StoredEnvelope};

/// What every worker shares.
pub struct Context {
    pub bot: Bot,
    pub store: Arc<Store>,
    pub directory: DirectoryHandle,
    pub identity: Arc<Identity>,
    pub metrics: Arc<Metrics>,
    pub delivery: config::Delivery,
    /// Sends the `delivered` status of a CSIRT warning once it is posted.
    pub receipts: crate::publish::Publisher,
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
        receipts: crate::publish::Publisher,
    ) -> Arc<Context> {
        Arc::new(Context {
            bot,
            store,
            directory,
            identity,
            metrics,
            delivery,
            receipts,
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
        tokio::spawn(acks::ack_loop(ack_rx, in_flight.clone()));
        tokio::spawn(acks::heartbeat_loop(ctx.clone(), in_flight.clone()));
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
        tokio::spawn(release::release_loop(this.clone()));
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
