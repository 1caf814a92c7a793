//! `varde-bridge run`: connect to the bus and Matrix, then relay until
//! stopped. Stopping (SIGTERM, Ctrl-C) or crashing at any point is safe:
//! un-acked bus messages are redelivered and the derived transaction ids
//! keep a resend from posting twice.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt as _;
use matrix_sdk::ruma::{OwnedRoomId, RoomId};
use varde_bus::inbox::{Inbox, InboxConfig};
use varde_bus::seal::Opener;

use crate::config::{self, RoomRef};
use crate::matrix::Bot;
use crate::matrix::client::InvitePolicy;
use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::relay::{Context, Relay};
use crate::room_side::RoomSide;
use crate::store::Store;

/// The durable consumer name unless `consumer.durable` sets one: distinct
/// from the org's own (`varde tail --durable`) consumer.
pub fn default_durable(org: &str) -> String {
    format!("{org}-bridge")
}

pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let (loaded, checked) = config::load(config_path)?;
    let identity = loaded.identity()?;
    let client = loaded.nats().connect().await?;
    let js = varde_bus::transport::jetstream(client.clone());
    let kv = varde_bus::directory_kv::fetch(&js).await.ok().flatten();
    let directory = loaded.directory_handle(kv)?;
    varde_bus::session::check_identity_registered(&directory, &identity)?;
    if loaded.value.directory.watch {
        let (js, handle) = (js.clone(), directory.clone());
        tokio::spawn(async move {
            if let Err(e) = varde_bus::directory_kv::watch(js, handle).await {
                tracing::warn!(error = %e, "directory watch ended");
            }
        });
    }
    let store = Arc::new(Store::open(&checked.store)?);
    let metrics = Metrics::new();
    if let Some(addr) = checked.metrics {
        let m = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = m.serve(addr).await {
                tracing::error!(%addr, error = %e, "cannot serve metrics");
            }
        });
    }
    {
        let health = metrics.health.clone();
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                let up = client.connection_state() == async_nats::connection::State::Connected;
                health.bus_connected.store(up, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
    }

    let bot = Bot::connect(&checked.matrix).await?;
    bot.handle_invites(Arc::new(InvitePolicy {
        allowed: checked.matrix.allowed_inviters.clone(),
        directory: directory.clone(),
        own_org: identity.org.clone(),
    }));
    // Members' events, from the first sync on (events missed while the
    // bridge was down included); handled once the rooms are resolved.
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    crate::timeline::listen(&bot, events_tx);
    // What happened in rooms before the bridge's first start is history.
    let since_ms: i64 = store
        .meta_init("room_side_since_ms", &crate::store::now_ms().to_string())?
        .parse()
        .unwrap_or_default();
    let token = bot.first_sync().await?;
    metrics
        .health
        .last_sync_ms
        .store(crate::store::now_ms(), Ordering::Relaxed);
    let signed = bot
        .ensure_cross_signed(checked.matrix.password.as_deref())
        .await;
    metrics.cross_signed.set(i64::from(signed));
    {
        let bot = bot.clone();
        let health = metrics.health.clone();
        tokio::spawn(async move { bot.sync_forever(token, health).await });
    }

    let mut rooms = Vec::new();
    for r in &checked.rooms {
        let id = resolve(&bot, r).await.with_context(|| {
            format!(
                "rooms[{}] ({}): cannot resolve the room",
                r.index,
                r.reference.as_str()
            )
        })?;
        if let Err(e) = bot.joined_room(&id).await {
            tracing::warn!(room = %r.name, error = %e, "the bot is not in this room yet; its messages wait until it is invited or the room is fixed");
        }
        rooms.push((r.clone(), id));
    }

    let dir = directory.current();
    let filters = varde_bus::subject::readable_filters(&dir, &identity.org);
    let durable = loaded
        .value
        .consumer
        .durable
        .clone()
        .unwrap_or_else(|| default_durable(identity.org.as_str()));
    let mut icfg = InboxConfig::durable(durable.clone(), filters);
    icfg.ack_wait = checked.delivery.ack_wait;
    icfg.batch = checked.delivery.batch;
    if !loaded.value.consumer.create {
        icfg = icfg.bind_only();
    }
    // Replay memory survives restarts, next to the bridge's store.
    let replay = checked.store.with_file_name("replay.bin");
    let opener = Opener::persistent(identity.clone(), &replay)
        .with_context(|| format!("replay memory {}", replay.display()))?;
    let inbox = Inbox::open(&js, &icfg, Arc::new(opener), directory.clone()).await?;
    metrics.watch_inbox(inbox.stats());
    tracing::info!(
        org = %identity.org,
        durable,
        rooms = rooms.len(),
        device = %bot.device_id,
        "varde-bridge running"
    );

    let report_room = match &checked.incidents.report_room {
        None => None,
        Some(r) => {
            let id = match r {
                RoomRef::Id(id) => RoomId::parse(id)?,
                RoomRef::Alias(a) => bot.resolve_alias(a).await?,
            };
            Some(id)
        }
    };
    let receipts = Publisher {
        js: js.clone(),
        identity: identity.clone(),
        directory: directory.clone(),
    };
    let side = Arc::new(RoomSide {
        bot: bot.clone(),
        store: store.clone(),
        directory: directory.clone(),
        publisher: Publisher {
            js: js.clone(),
            identity: identity.clone(),
            directory: directory.clone(),
        },
        metrics: metrics.clone(),
        rooms: rooms.clone(),
        commands: checked.commands.clone(),
        sharing: checked.sharing,
        incidents: checked.incidents.clone(),
        report_room,
        since_ms,
    });
    tokio::spawn(side.clone().run(events_rx));
    let (side_tx, side_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(side_bus_loop(side, side_rx));

    let ctx = Context::new(
        bot,
        store,
        directory,
        identity,
        metrics,
        checked.delivery.clone(),
        receipts,
    );
    let relay = Relay::start(ctx, rooms).with_side(side_tx);
    tokio::select! {
        r = relay.run(inbox) => r,
        _ = shutdown_signal() => {
            tracing::info!("stopping; messages not yet acked will be redelivered");
            Ok(())
        }
    }
}

/// Incidents and incident-room chat from the bus, in order; each acked
/// once handled (retried a few times when Matrix fails, then left to the
/// broker's redelivery).
async fn side_bus_loop(
    side: Arc<RoomSide>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::relay::SideJob>,
) {
    while let Some(job) = rx.recv().await {
        let mut attempt = 0;
        loop {
            let handled = std::panic::AssertUnwindSafe(side.on_bus(&job.msg))
                .catch_unwind()
                .await;
            let Ok(handled) = handled else {
                tracing::error!(envelope = %job.msg.header.id, kind = %job.msg.header.kind, "panic while handling an incident message; terminated, the loop goes on");
                side.metrics.panicked("incident");
                let _ = job.delivery.term().await;
                break;
            };
            match handled {
                Ok(()) => {
                    if let Err(e) = job.delivery.ack().await {
                        tracing::warn!(envelope = %job.msg.header.id, error = %e, "cannot ack");
                    }
                    break;
                }
                Err(e) if attempt < 5 => {
                    tracing::warn!(envelope = %job.msg.header.id, kind = %job.msg.header.kind, error = %e, "incident message failed; retrying");
                    tokio::time::sleep(crate::matrix::backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::warn!(envelope = %job.msg.header.id, error = %e, "incident message failed; left for redelivery");
                    let _ = job.delivery.nak(Duration::from_secs(30)).await;
                    break;
                }
            }
        }
        drop(job.permit);
    }
}

async fn resolve(bot: &Bot, r: &config::Room) -> anyhow::Result<OwnedRoomId> {
    match &r.reference {
        RoomRef::Id(id) => Ok(RoomId::parse(id)?),
        RoomRef::Alias(alias) => {
            let mut attempt = 0;
            loop {
                match bot.resolve_alias(alias).await {
                    Ok(id) => return Ok(id),
                    Err(e) if attempt < 5 => {
                        tracing::warn!(alias, error = %e, "cannot resolve the alias; retrying");
                        tokio::time::sleep(crate::matrix::backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
