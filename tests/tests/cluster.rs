//! The bus on a 3-node JetStream cluster (`VARDE` stream and directory
//! bucket with 3 replicas): 10,000 sealed envelopes are published while the
//! stream leader is SIGKILLed and later restarted; every acknowledged
//! envelope is stored once and consumed exactly once by a durable consumer
//! reading from the surviving nodes.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use varde_bus::inbox::{Inbox, InboxConfig};
use varde_bus::seal::{self, Draft, Opener, Sealed};
use varde_bus::subject;
use varde_bus::transport::{self, DIRECTORY_BUCKET, NatsSettings, StreamSettings};
use varde_schemas::payload::{Alert, Severity};
use varde_schemas::{Audience, OrgId, Payload, Tlp};
use varde_testkit::synthetic::Synthetic;
use varde_tests::NatsCluster;

/// The stream of envelopes to gjovik, where this test's messages land.
const GJOVIK_STREAM: &str = "VARDE_O_gjovik";

const MESSAGES: usize = 10_000;
/// Acknowledged envelopes before the leader is killed, and before it is
/// brought back.
const KILL_AT: usize = 2_000;
const RESTART_AT: usize = 6_000;

fn alert(n: usize) -> Payload {
    Payload::Alert(Alert {
        title: format!("fail-over alert {n}"),
        body: "published while the stream leader dies".into(),
        severity: Severity::Medium,
        urgent: false,
        references: vec![],
        indicators: vec![],
        advisory_id: None,
    })
}

/// A context that gives up on a PubAck after 3 s (a publish in flight when
/// the leader dies is retried with the same `Nats-Msg-Id`).
fn context(client: async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(3))
        .max_ack_inflight(1024)
        .backpressure_on_inflight(true)
        .build(client)
}

/// Publishes every envelope until each is acknowledged, retrying failures
/// (same message id, so the broker drops a copy it already stored).
async fn publish_all(
    js: jetstream::Context,
    sealed: Arc<Vec<Sealed>>,
    acked: Arc<AtomicUsize>,
) -> (Vec<bool>, usize, usize) {
    let mut queue: VecDeque<usize> = (0..sealed.len()).collect();
    let mut done = vec![false; sealed.len()];
    let (mut retries, mut duplicates) = (0, 0);
    // A duplicate PubAck is our own copy only on a retry; on a first
    // attempt it is an error (someone else holds the message id).
    let mut sent_before = vec![false; sealed.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(100);
    while !queue.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} envelopes still unacknowledged after 100 s",
            queue.len()
        );
        let batch: Vec<usize> = (0..256).map_while(|_| queue.pop_front()).collect();
        let mut pending = Vec::with_capacity(batch.len());
        let mut failed = false;
        for i in batch {
            let attempt = if sent_before[i] {
                transport::Attempt::Retry
            } else {
                transport::Attempt::First
            };
            sent_before[i] = true;
            match transport::send_attempt(&js, &sealed[i], attempt).await {
                Ok(p) => pending.push((i, p)),
                Err(_) => {
                    queue.push_back(i);
                    failed = true;
                }
            }
        }
        // Await the acks together: each lost one times out on its own
        // clock, so a dead leader costs one timeout, not one per envelope.
        let (idx, pending): (Vec<usize>, Vec<_>) = pending.into_iter().unzip();
        let results = futures::future::join_all(pending.into_iter().map(transport::confirm)).await;
        for (i, r) in idx.into_iter().zip(results) {
            match r {
                Ok(stored) => {
                    done[i] = true;
                    duplicates += stored.iter().filter(|s| s.duplicate).count();
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => {
                    queue.push_back(i);
                    failed = true;
                }
            }
        }
        if failed {
            retries += 1;
            // An election is under way; do not spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    (done, retries, duplicates)
}

/// Creates the durable, retrying while the new stream's raft group is
/// still electing its leader (creation is idempotent for the same config).
async fn create_consumer(
    stream: &jetstream::stream::Stream,
    config: pull::Config,
) -> jetstream::consumer::Consumer<pull::Config> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        match stream.create_consumer(config.clone()).await {
            Ok(c) => return c,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("creating the durable consumer: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("the durable consumer was not created within 90 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_envelopes_survive_a_killed_stream_leader() {
    let mut cluster = NatsCluster::start().await.unwrap();
    let settings = NatsSettings::with_url(cluster.urls());
    let admin = settings.connect().await.unwrap();
    // Setup and checks are not under test: give the fresh cluster's raft
    // groups (meta, stream, consumer) the time a loaded machine needs.
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(30))
        .build(admin.clone());
    let world = Synthetic::demo();
    let handle = world.handle().unwrap();
    // `varde bus init --replicas 3`, with the directory: every scope's
    // stream. The messages under test go to gjovik's.
    // On a loaded 2-core machine a new cluster's first R3 stream creates can
    // time out while Raft settles; init is idempotent, so an operator (and
    // this test) runs it again.
    let r3 = StreamSettings {
        replicas: 3,
        ..StreamSettings::default()
    };
    let mut attempt = 0;
    while let Err(e) = transport::init(&js, &r3, Some(&handle.current())).await {
        attempt += 1;
        assert!(attempt < 3, "bus init on the cluster: {e}");
        eprintln!("bus init on the new cluster, attempt {attempt}: {e}; again");
    }
    let mut stream = js.get_stream(GJOVIK_STREAM).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.cluster.as_ref().unwrap().replicas.len(), 2);
    let kv = js
        .get_stream(format!("KV_{DIRECTORY_BUCKET}"))
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .num_replicas;
    assert_eq!(kv, 3);

    // gjovik's durable consumers (what `varde nats provision` creates).
    let gjovik = world.identity("gjovik");
    let filters = subject::readable_filters(&handle.current(), &gjovik.org);
    let mut cfg = InboxConfig::durable("gjovik", filters);
    // Redeliver quickly an ack lost with the dying leader.
    cfg.ack_wait = Duration::from_secs(5);
    for (name, config) in cfg.consumer_configs().unwrap() {
        let on = js.get_stream(&name).await.unwrap();
        let consumer = create_consumer(&on, config).await;
        assert_eq!(consumer.cached_info().config.num_replicas, 0, "inherits R3");
    }

    // Seal everything first: the fail-over, not the crypto, is under test.
    let kcsirt = world.identity("kcsirt");
    let dir = handle.current();
    let to = Audience::orgs([OrgId::new("gjovik").unwrap()]);
    let sealed: Vec<Sealed> = (0..MESSAGES)
        .map(|n| {
            seal::seal(
                &kcsirt,
                &dir,
                Draft::new(&alert(n), Tlp::AmberStrict, to.clone()),
            )
            .unwrap()
        })
        .collect();
    let ids: BTreeSet<uuid::Uuid> = sealed.iter().map(|s| s.header.id).collect();
    assert_eq!(ids.len(), MESSAGES);
    let sealed = Arc::new(sealed);

    // The reader: gjovik binds its durable and acks as it goes; it keeps
    // reading through reconnects to whichever nodes survive.
    let reader_client = NatsSettings::with_url(cluster.urls())
        .connect()
        .await
        .unwrap();
    let reader_js = context(reader_client);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, handle, cfg) = (stop.clone(), handle.clone(), cfg.clone().bind_only());
        let opener = Arc::new(Opener::new(gjovik.clone()));
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut redelivered_duplicates = 0;
            while !stop.load(Ordering::SeqCst) {
                let mut inbox =
                    match Inbox::open(&reader_js, &cfg, opener.clone(), handle.clone()).await {
                        Ok(i) => i,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    };
                let stats = inbox.stats();
                loop {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match tokio::time::timeout(Duration::from_millis(500), inbox.next()).await {
                        Err(_) => continue,
                        Ok(None) => break,
                        // Missed heartbeats, a lost connection: pull again
                        // through a fresh subscription, without spinning.
                        Ok(Some(Err(_))) => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            break;
                        }
                        Ok(Some(Ok(d))) => {
                            got.push(d.opened.header.id);
                            let _ = d.ack().await;
                        }
                    }
                }
                redelivered_duplicates += stats.duplicates.load(Ordering::Relaxed);
            }
            (got, redelivered_duplicates)
        })
    };

    // The publisher, with the leader killed and restarted under it.
    let acked = Arc::new(AtomicUsize::new(0));
    let publisher = tokio::spawn(publish_all(
        context(settings.connect().await.unwrap()),
        sealed.clone(),
        acked.clone(),
    ));
    while acked.load(Ordering::SeqCst) < KILL_AT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = cluster.stream_leader(GJOVIK_STREAM).await.unwrap();
    cluster.kill(leader).await;
    let killed_at = acked.load(Ordering::SeqCst);
    while acked.load(Ordering::SeqCst) < RESTART_AT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let new_leader = cluster.stream_leader(GJOVIK_STREAM).await.unwrap();
    assert_ne!(new_leader, leader, "a surviving node took over");
    let before_restart = acked.load(Ordering::SeqCst);
    cluster.restart(leader).await.unwrap();
    let (done, retries, duplicates) = publisher.await.unwrap();
    assert!(done.iter().all(|d| *d));
    assert!(killed_at < MESSAGES && before_restart < MESSAGES);

    // Stored exactly once each, on the cluster as a whole.
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(
        state.messages as usize, MESSAGES,
        "no envelope stored twice"
    );

    // Wait until the consumer has nothing pending or unacknowledged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let c = js
            .get_consumer_from_stream::<pull::Config, _, _>("gjovik", GJOVIK_STREAM)
            .await;
        if let Ok(mut c) = c
            && let Ok(i) = c.info().await
            && i.num_pending == 0
            && i.num_ack_pending == 0
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer did not catch up within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (got, redelivered) = reader.await.unwrap();
    let unique: BTreeSet<uuid::Uuid> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "an envelope was handed out twice");
    assert_eq!(got.len(), MESSAGES);
    assert_eq!(unique, ids);
    eprintln!(
        "cluster fail-over: leader {} killed after {killed_at} acks, restarted after {before_restart}; \
         new leader {}; publish retry rounds {retries}, broker-deduplicated retries {duplicates}, \
         redelivered copies refused by the opener {redelivered}",
        cluster.name(leader),
        cluster.name(new_leader)
    );
}
