//! The whole constituency on one provisioned nats-server: the signed
//! directory's size and cost, provisioning every user and consumer, a
//! community alert opened by every org's consumers (beside the same alert
//! unsealed), a re-provision after 10 orgs change while messages flow, and
//! the server's memory with every consumer in place.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

use varde_bus::directory::{self, DirectoryHandle};
use varde_bus::inbox::{Inbox, InboxConfig};
use varde_bus::seal::{self, Draft, Opener};
use varde_bus::subject;
use varde_bus::transport::{self, NatsSettings, StreamSettings};
use varde_schemas::directory::OrgKind;
use varde_schemas::payload::{Alert, Severity};
use varde_schemas::{Audience, GroupId, OrgId, Payload, Tlp};
use varde_testkit::NatsServer;
use varde_testkit::synthetic::Synthetic;

use crate::provision::{self, Options, Reload, ReloadError};

/// Figures of one run.
pub struct Figures {
    pub directory_bytes: usize,
    pub sign_ms: f64,
    pub verify_ms: f64,
    pub raw_verify_ms: f64,
    pub users: usize,
    pub consumers: usize,
    pub streams: usize,
    pub provision_s: f64,
    pub open: Latencies,
    pub unsealed: Latencies,
    pub reprovision_s: f64,
    pub reprovision_sent: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub server_rss_mib: f64,
}

/// Milliseconds from publish until each org had the message.
pub struct Latencies {
    pub orgs: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latencies {
    fn of(mut ms: Vec<f64>) -> Latencies {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            ms.get(((ms.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Latencies {
            orgs: ms.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: ms.last().copied().unwrap_or(f64::NAN),
        }
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} orgs: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            self.orgs, self.p50, self.p99, self.max
        )
    }
}

/// SIGHUP to the bench's own server, as `varde nats provision` reloads.
struct ServerReload<'a>(&'a NatsServer);

impl Reload for ServerReload<'_> {
    async fn reload(&self) -> Result<(), ReloadError> {
        self.0
            .reload()
            .await
            .map_err(|e| ReloadError::Other(format!("{e:#}")))
    }
}

fn operator(nats: &NatsServer, out: &Path) -> NatsSettings {
    NatsSettings {
        nkey_seed: Some(provision::seeds::Seeds::new(out).operator_path()),
        name: Some("bench-operator".into()),
        ..NatsSettings::with_url(nats.url())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn alert(title: &str) -> Payload {
    Payload::Alert(Alert {
        title: title.into(),
        body: "x".repeat(900),
        severity: Severity::High,
        urgent: false,
        references: vec![],
        indicators: vec![],
        advisory_id: None,
    })
}

pub async fn run(mut world: Synthetic, bin: &Path) -> anyhow::Result<Figures> {
    // 1. the directory: size, sign and verify, beside one raw Ed25519
    //    verify of the same bytes.
    let t = Instant::now();
    let signed = world.signed()?;
    let sign_ms = ms(t.elapsed());
    let roots = [world.root.verifying_key()];
    let t = Instant::now();
    let dir = directory::verify(&signed, &roots)?;
    let verify_ms = ms(t.elapsed());
    let raw_verify_ms = {
        use ed25519_dalek::Signer;
        let sig = world.root.sign(&signed);
        let t = Instant::now();
        world.root.verifying_key().verify_strict(&signed, &sig)?;
        ms(t.elapsed())
    };
    drop(dir);
    let handle: DirectoryHandle = world.handle()?;

    // 2. provisioning the whole constituency on a fresh server.
    let out = tempfile::Builder::new()
        .prefix("varde-bench-national-")
        .tempdir()?;
    let opts = Options {
        out: out.path().to_path_buf(),
        url: "nats://127.0.0.1:4222".into(),
        now: jiff::Timestamp::now(),
    };
    provision::provision(&handle.current(), &opts, None, &provision::NoReload).await?;
    let include = varde_testkit::include_line(out.path(), provision::authorization::FILE)?;
    let nats = NatsServer::start_bin(bin, &include).await?;
    let client = operator(&nats, out.path()).connect().await?;
    let js = transport::jetstream(client.clone());
    let t = Instant::now();
    transport::init(&js, &StreamSettings::default(), Some(&handle.current())).await?;
    varde_bus::directory_kv::push(&js, &signed, &roots).await?;
    let opts = Options {
        url: nats.url(),
        ..opts
    };
    let report =
        provision::provision(&handle.current(), &opts, Some(&js), &ServerReload(&nats)).await?;
    let provision_s = t.elapsed().as_secs_f64();
    let consumers = report.consumers.created.len() + report.consumers.unchanged.len();
    let streams = subject::scopes(&handle.current()).len();
    println!(
        "provisioned {} users, {consumers} durable consumers on {streams} streams in {provision_s:.2} s (init, push, provision)",
        report.users
    );

    // 3a. baseline: a message of the sealed alert's size, unsealed.
    let orgs = community_orgs(&handle);
    let csirt = world.identity("kcsirt");
    let sealed = community_alert(&world, &handle)?;
    let unsealed = unsealed_pull(
        &js,
        &StreamSettings::default(),
        orgs.len(),
        sealed_size(&sealed),
    )
    .await?;
    println!("unsealed community message pulled by {unsealed}");

    // 3b. the sealed alert, pulled and opened by every org's provisioned
    //     durable consumers through the bus's Inbox (bound, as members do).
    let (open, mut inboxes) = community_open(&js, &world, &handle, &orgs, sealed).await?;

    // 4. re-provision after 10 orgs change, while the CSIRT publishes
    //    AMBER messages to 10 staying orgs, 5 of them among the changed
    //    (moved to another group): each must open each exactly once.
    let changed = change_ten_orgs(&mut world);
    let watched: Vec<OrgId> = orgs
        .iter()
        .filter(|o| o.as_str().starts_with("kommune-"))
        .take(10)
        .cloned()
        .collect();
    world.bump();
    let signed2 = world.signed()?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let (js, stop, csirt, dir) = (js.clone(), stop.clone(), csirt.clone(), handle.current());
        let to = Audience::orgs(watched.clone());
        tokio::spawn(async move {
            let mut sent = BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || sent.len() < 20 {
                let s = seal::seal(
                    &csirt,
                    &dir,
                    Draft::new(&alert("during reprovision"), Tlp::Amber, to.clone()),
                )?;
                transport::publish(&js, &s).await?;
                sent.insert(s.header.id);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(sent)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    varde_bus::directory_kv::push(&js, &signed2, &roots).await?;
    handle.offer(&signed2)?;
    let again =
        provision::provision(&handle.current(), &opts, Some(&js), &ServerReload(&nats)).await?;
    let reprovision_s = t.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent = publisher.await??;
    println!(
        "re-provision after {} orgs changed ({}): {reprovision_s:.2} s; users added {}, removed {}; consumers created {}, deleted {}",
        changed.len(),
        changed.join(", "),
        again.users_added.len(),
        again.users_removed.len(),
        again.consumers.created.len(),
        again.consumers.deleted.len()
    );
    let mut got: BTreeMap<String, Vec<uuid::Uuid>> = BTreeMap::new();
    let reads = inboxes
        .iter_mut()
        .filter(|(o, _)| watched.contains(o))
        .map(|(o, inbox)| {
            let sent = &sent;
            async move {
                let mut ids = Vec::new();
                let mut errors = Vec::new();
                while ids.iter().filter(|i| sent.contains(*i)).count() < sent.len() {
                    match tokio::time::timeout(Duration::from_secs(10), inbox.next()).await {
                        Ok(Some(Ok(d))) => {
                            let _ = d.ack().await;
                            ids.push(d.opened.header.id);
                        }
                        // A consumer of this inbox was retired (the org
                        // left a group): its other consumers go on.
                        Ok(Some(Err(e))) if errors.len() < 20 => errors.push(e.to_string()),
                        _ => break,
                    }
                }
                if ids.iter().filter(|i| sent.contains(*i)).count() < sent.len() {
                    println!("  {o}: missing messages; errors: {errors:?}");
                }
                (o.to_string(), ids)
            }
        });
    for (o, ids) in futures::future::join_all(reads).await {
        got.insert(o, ids);
    }
    let mut lost = 0;
    let mut duplicated = 0;
    for ids in got.values() {
        let unique: BTreeSet<_> = ids.iter().filter(|i| sent.contains(*i)).collect();
        lost += sent.len() - unique.len();
        duplicated += ids.iter().filter(|i| sent.contains(*i)).count() - unique.len();
    }
    println!(
        "during it {} AMBER messages to {} orgs (5 of them moved group): lost {lost}, duplicated {duplicated}",
        sent.len(),
        got.len()
    );

    // 5. memory: the server with every consumer, this process.
    let server_rss_mib = nats
        .varz()
        .await?
        .get("mem")
        .and_then(serde_json::Value::as_f64)
        .map_or(f64::NAN, |b| b / 1024.0 / 1024.0);
    drop(inboxes);
    drop(client);
    Ok(Figures {
        directory_bytes: signed.len(),
        sign_ms,
        verify_ms,
        raw_verify_ms,
        users: report.users,
        consumers,
        streams,
        provision_s,
        open,
        unsealed,
        reprovision_s,
        reprovision_sent: sent.len(),
        lost,
        duplicated,
        server_rss_mib,
    })
}

/// The orgs that read the community's stream.
fn community_orgs(handle: &DirectoryHandle) -> Vec<OrgId> {
    handle
        .current()
        .orgs()
        .iter()
        .filter(|o| o.kind.in_community())
        .map(|o| o.id.clone())
        .collect()
}

/// The GREEN community alert from the CSIRT that the community figure
/// measures.
fn community_alert(world: &Synthetic, handle: &DirectoryHandle) -> anyhow::Result<seal::Sealed> {
    Ok(seal::seal(
        &world.identity("kcsirt"),
        &handle.current(),
        Draft::new(&alert("national alert"), Tlp::Green, Audience::community()),
    )?)
}

/// Bytes of the one copy a community message is.
fn sealed_size(sealed: &seal::Sealed) -> usize {
    sealed.copies.first().map_or(0, |c| c.bytes.len())
}

/// Baseline of the community figure: a message of `size` bytes, unsealed,
/// pulled by one plain durable consumer per org (`orgs` of them) on a stream made
/// like the community's with `settings` (the community stream's own
/// durables would get an unsealed message as junk).
async fn unsealed_pull(
    js: &jetstream::Context,
    settings: &StreamSettings,
    orgs: usize,
    size: usize,
) -> anyhow::Result<Latencies> {
    let mut like = transport::stream_config(settings, &subject::Target::Community);
    like.name = "BENCH_UNSEALED".into();
    like.subjects = vec!["bench.unsealed".into()];
    let community = js.create_stream(like).await?;
    let mut raw = Vec::new();
    for i in 0..orgs {
        // Durable like the members' (so R3 on a cluster, as theirs are).
        let c = community
            .create_consumer(consumer::pull::Config {
                durable_name: Some(format!("bench-unsealed-{i}")),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::Explicit,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await?;
        raw.push(c.stream().max_messages_per_batch(16).messages().await?);
    }
    let start = Instant::now();
    js.publish("bench.unsealed", vec![b'u'; size].into())
        .await?
        .await?;
    let waits = raw.into_iter().map(|mut m| async move {
        let got = tokio::time::timeout(Duration::from_secs(30), m.next()).await;
        if let Ok(Some(Ok(msg))) = got {
            let _ = msg.ack().await;
            Some(ms(start.elapsed()))
        } else {
            None
        }
    });
    let pulled = Latencies::of(
        futures::future::join_all(waits)
            .await
            .into_iter()
            .flatten()
            .collect(),
    );
    js.delete_stream("BENCH_UNSEALED").await?;
    Ok(pulled)
}

/// `sealed` (a GREEN community alert from the CSIRT), pulled and opened by
/// every org in `orgs` through its provisioned durables (bound, as members
/// do); the inboxes stay open for what follows.
async fn community_open(
    js: &jetstream::Context,
    world: &Synthetic,
    handle: &DirectoryHandle,
    orgs: &[OrgId],
    sealed: seal::Sealed,
) -> anyhow::Result<(Latencies, Vec<(OrgId, Inbox)>)> {
    let mut inboxes = Vec::new();
    for o in orgs {
        let cfg = InboxConfig::durable(
            o.to_string(),
            subject::readable_filters(&handle.current(), o),
        )
        .bind_only();
        let opener = Arc::new(Opener::new(world.identity(o.as_str())));
        inboxes.push((
            o.clone(),
            Inbox::open(js, &cfg, opener, handle.clone()).await?,
        ));
    }
    let id = sealed.header.id;
    let start = Instant::now();
    transport::publish(js, &sealed).await?;
    let waits = inboxes.iter_mut().map(|(o, inbox)| async move {
        let mut errors = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), inbox.next()).await {
                Ok(Some(Ok(d))) => {
                    let _ = d.ack().await;
                    if d.opened.header.id == id {
                        return Some(ms(start.elapsed()));
                    }
                }
                // A missed heartbeat on a loaded machine: the pull stream
                // goes on, as a member's reader does.
                Ok(Some(Err(e))) if errors < 20 => {
                    errors += 1;
                    tracing::debug!(org = %o, error = %e, "inbox error while waiting for the alert");
                }
                _ => {
                    println!("  {o}: the alert did not arrive within 30 s");
                    return None;
                }
            }
        }
    });
    let open = Latencies::of(
        futures::future::join_all(waits)
            .await
            .into_iter()
            .flatten()
            .collect(),
    );
    println!(
        "sealed community alert ({} bytes, {} wraps) pulled and opened by {open}",
        sealed.stored_bytes(),
        handle.current().keys().count()
    );
    Ok((open, inboxes))
}

/// The community figure on a 3-node cluster (streams and consumers R3),
/// provisioned the same way (the cluster runs without authorization: the
/// figure is about replication, not permissions).
pub async fn cluster(world: &Synthetic) -> anyhow::Result<(Latencies, Latencies)> {
    let handle = world.handle()?;
    let cluster = varde_testkit::NatsCluster::start().await?;
    let client = NatsSettings::with_url(cluster.urls()).connect().await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(30))
        .build(client);
    let t = Instant::now();
    let r3 = StreamSettings {
        replicas: 3,
        ..StreamSettings::default()
    };
    transport::init(&js, &r3, Some(&handle.current())).await?;
    varde_bus::directory_kv::push(&js, &world.signed()?, &[world.root.verifying_key()]).await?;
    let out = tempfile::Builder::new()
        .prefix("varde-bench-cluster-")
        .tempdir()?;
    let opts = Options {
        out: out.path().to_path_buf(),
        url: cluster.urls(),
        now: jiff::Timestamp::now(),
    };
    let report =
        provision::provision(&handle.current(), &opts, Some(&js), &provision::NoReload).await?;
    println!(
        "R3 cluster: {} durable consumers on {} streams provisioned in {:.1} s",
        report.consumers.created.len(),
        subject::scopes(&handle.current()).len(),
        t.elapsed().as_secs_f64()
    );
    let orgs = community_orgs(&handle);
    let sealed = community_alert(world, &handle)?;
    let unsealed = unsealed_pull(&js, &r3, orgs.len(), sealed_size(&sealed)).await?;
    println!("R3 cluster: unsealed community message pulled by {unsealed}");
    let (open, inboxes) = community_open(&js, world, &handle, &orgs, sealed).await?;
    drop(inboxes);
    Ok((open, unsealed))
}

/// Ten orgs change: 3 join, 2 leave, 5 move to another group.
fn change_ten_orgs(world: &mut Synthetic) -> Vec<String> {
    let mut changed = Vec::new();
    for i in 0..3 {
        let id = format!("new-kommune-{i}");
        world.add_org(
            &id,
            &format!("Ny kommune {i}"),
            OrgKind::Kommune,
            &["health"],
        );
        changed.push(format!("+{id}"));
    }
    let ids: Vec<String> = world
        .dir
        .orgs
        .iter()
        .filter(|o| o.kind == OrgKind::Kommune && !o.id.as_str().starts_with("new-"))
        .map(|o| o.id.to_string())
        .collect();
    for id in ids.iter().rev().take(2) {
        world.dir.orgs.retain(|o| o.id.as_str() != id);
        changed.push(format!("-{id}"));
    }
    for id in ids.iter().take(5) {
        if let Some(o) = world.org_mut(id) {
            o.groups = vec![GroupId::new("culture").unwrap_or_else(|_| o.groups[0].clone())];
            changed.push(format!("~{id}"));
        }
    }
    changed
}
