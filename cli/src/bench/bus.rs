//! `varde bench`: seal/open cost and end-to-end throughput, each printed as
//! a ratio against a baseline measured in the same run on the same machine
//! (raw X25519, raw JetStream). Never asserted in a test: figures only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use rand_core::OsRng;
use varde_schemas::payload::{Indicator, IndicatorBatch, IndicatorType};
use varde_schemas::{Audience, Kind, OrgId, Payload, Tlp};

use varde_bus::inbox::{Inbox, InboxConfig};
use varde_bus::seal::{self, Draft, Opener};
use varde_testkit::synthetic::Synthetic;

use super::{BenchServer, peak_rss_mib};
use varde_bus::transport::{self, NatsSettings, StreamSettings};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Use this nats-server instead of starting one from .venv/.
    #[arg(long)]
    pub nats: Option<String>,
    /// Messages per end-to-end run.
    #[arg(long, default_value_t = 4000)]
    pub messages: usize,
    /// Indicators per batched indicator envelope.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Shorter runs (CI smoke test): fewer iterations and messages.
    #[arg(long)]
    pub quick: bool,
}

fn org(s: &str) -> OrgId {
    OrgId::new(s).expect("bench org ids are literals")
}

/// Median of per-iteration times of `f`, in microseconds.
fn time_us(iters: usize, mut f: impl FnMut()) -> f64 {
    time_pair_us(iters, &mut f, &mut || {}).0
}

/// Medians of per-iteration times of `a` and `b`, sampled alternately so
/// that both see the same machine state (frequency scaling and neighbours
/// on a shared VM otherwise skew a ratio of two sequential runs).
fn time_pair_us(iters: usize, a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> (f64, f64) {
    for _ in 0..iters.min(20) {
        a();
        b();
    }
    let mut sa = Vec::with_capacity(iters);
    let mut sb = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        a();
        sa.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        b();
        sb.push(t.elapsed().as_secs_f64() * 1e6);
    }
    (median(&mut sa), median(&mut sb))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn payload_1k() -> Vec<u8> {
    // A 1 KiB chat payload (JSON), the unit of the message-rate figures.
    let text = "x".repeat(1024 - 120);
    serde_json::json!({
        "conversation": "bench",
        "author": {"org": "kcsirt"},
        "text": text,
    })
    .to_string()
    .into_bytes()
}

/// A message whose audience is `n` orgs (n wraps), and a closure that opens
/// it as one recipient (verify + decrypt, the path of `Opener::open`
/// without its replay memory).
fn open_case(n: usize) -> anyhow::Result<Box<dyn FnMut() -> Result<(), seal::OpenError>>> {
    let s = Synthetic::with_orgs(n);
    let dir = s.handle()?.current();
    let orgs: Vec<OrgId> = (0..n).map(|i| org(&format!("kommune-{i:03}"))).collect();
    let sealed = seal::seal(
        &s.identity("kcsirt"),
        &dir,
        Draft::raw(Kind::Chat, Tlp::Amber, Audience::orgs(orgs), payload_1k()),
    )?;
    let me = s.identity(&format!("kommune-{:03}", n - 1));
    let copy = sealed.copies[n - 1].clone();
    Ok(Box::new(move || {
        let v = seal::verify(&dir, Some(&copy.subject), &copy.bytes, Timestamp::now())?;
        seal::decrypt(&me, v, copy.bytes.len()).map(|_| ())
    }))
}

fn checked(f: &mut dyn FnMut() -> Result<(), seal::OpenError>, err: &mut Option<String>) {
    if let Err(e) = f() {
        *err = Some(e.to_string());
    }
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let iters = if a.quick { 50 } else { 400 };
    let messages = if a.quick {
        a.messages.min(500)
    } else {
        a.messages
    };

    // 1. open cost against audience size
    let mut open1 = open_case(1)?;
    let mut open10 = open_case(10)?;
    let mut open370 = open_case(370)?;
    let (mut e1, mut e370, mut e10) = (None, None, None);
    let (o1, o370) = time_pair_us(iters, &mut || checked(&mut open1, &mut e1), &mut || {
        checked(&mut open370, &mut e370)
    });
    let o10 = time_us(iters, || checked(&mut open10, &mut e10));
    if let Some(e) = e1.or(e370).or(e10) {
        anyhow::bail!("bench open failed: {e}");
    }
    println!(
        "open  1 recipient {o1:>8.1} us | 10 {o10:>8.1} us | 370 {o370:>8.1} us | 370/1 = {:.2}",
        o370 / o1
    );

    // 2. seal 370 against the X25519 bound measured alongside
    let s370 = Synthetic::with_orgs(370);
    let dir370 = s370.handle()?.current();
    let all: Vec<OrgId> = (0..370).map(|i| org(&format!("kommune-{i:03}"))).collect();
    let csirt = s370.identity("kcsirt");
    let seal_iters = (iters / 10).max(10);
    let mut seal_err = None;
    let peers: Vec<x25519_dalek::PublicKey> = (0..370)
        .map(|_| x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(OsRng)))
        .collect();
    let (seal_us, bound_us) = time_pair_us(
        seal_iters,
        &mut || {
            let d = Draft::raw(
                Kind::Chat,
                Tlp::Amber,
                Audience::orgs(all.clone()),
                payload_1k(),
            );
            if let Err(e) = seal::seal(&csirt, &dir370, d) {
                seal_err = Some(e);
            }
        },
        &mut || {
            for p in &peers {
                let eph = x25519_dalek::EphemeralSecret::random_from_rng(OsRng);
                let epk = x25519_dalek::PublicKey::from(&eph);
                let shared = eph.diffie_hellman(p);
                std::hint::black_box((epk, shared.as_bytes()[0]));
            }
        },
    );
    if let Some(e) = seal_err {
        anyhow::bail!("bench seal failed: {e}");
    }
    println!(
        "seal  370 recipients {seal_us:>9.1} us | bound 370 x (X25519 keygen + DH) {bound_us:>9.1} us | ratio {:.2}",
        seal_us / bound_us
    );

    // 3. crypto bound: seal + open of one 1 KiB AMBER message to 3 orgs
    let demo = Synthetic::demo();
    let ddir = demo.handle()?.current();
    let three = Audience::orgs([org("gjovik"), org("lillehammer"), org("innlandet-fk")]);
    let kc = demo.identity("kcsirt");
    let gj = demo.identity("gjovik");
    let mut cb_err = None;
    let cycle_us = time_us(iters, || {
        let r = seal::seal(
            &kc,
            &ddir,
            Draft::raw(Kind::Chat, Tlp::Amber, three.clone(), payload_1k()),
        )
        .map_err(|e| e.to_string())
        .and_then(|s| {
            let c = &s.copies[0];
            seal::verify(&ddir, Some(&c.subject), &c.bytes, Timestamp::now())
                .and_then(|v| seal::decrypt(&gj, v, c.bytes.len()))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = r {
            cb_err = Some(e);
        }
    });
    if let Some(e) = cb_err {
        anyhow::bail!("bench crypto bound failed: {e}");
    }
    let crypto_bound = 1e6 / cycle_us;
    println!(
        "crypto bound (seal + open, 1 KiB AMBER to 3 orgs, one thread): {:.0} msgs/s ({:.1} us per message)",
        crypto_bound, cycle_us
    );

    // 4. end to end through a real nats-server
    let server = match &a.nats {
        Some(url) => BenchServer::External(url.clone()),
        None => BenchServer::start().await?,
    };
    let url = server.url();
    let client = NatsSettings::with_url(&url).connect().await?;
    let js = transport::jetstream(client.clone());
    transport::init(
        &js,
        &StreamSettings::default(),
        Some(&demo.handle()?.current()),
    )
    .await?;

    let raw = raw_jetstream(&js, messages, 1024).await?;
    println!("raw JetStream 1 KiB publish + durable consume: {raw:.0} msgs/s");

    let e2e = sealed_e2e(&js, &demo, messages, Workload::Chat1k).await?;
    println!(
        "sealed 1 KiB end to end (seal, publish, consume, verify, open): {:.0} msgs/s",
        e2e.msgs_per_s
    );
    let batches = (messages / 20).max(20);
    let ind = sealed_e2e(&js, &demo, batches, Workload::Indicators(a.batch)).await?;
    let indicators_per_s = ind.msgs_per_s * a.batch as f64;
    println!(
        "indicators end to end in {}-indicator envelopes: {:.0} indicators/s ({:.0} envelopes/s)",
        a.batch, indicators_per_s, ind.msgs_per_s
    );
    println!("peak RSS {:.1} MiB", peak_rss_mib());
    drop(server);

    println!(
        "open_1_us={:.1} open_370_us={:.1} open_370_over_1={:.3} seal_370_over_bound={:.3} crypto_bound_msgs_per_s={:.0} e2e_msgs_per_s={:.0} raw_msgs_per_s={:.0} e2e_over_raw={:.4} e2e_over_crypto_bound={:.3} indicators_per_s={:.0} indicators_over_raw_msgs={:.3}",
        o1,
        o370,
        o370 / o1,
        seal_us / bound_us,
        crypto_bound,
        e2e.msgs_per_s,
        raw,
        e2e.msgs_per_s / raw,
        e2e.msgs_per_s / crypto_bound,
        indicators_per_s,
        indicators_per_s / raw
    );
    Ok(())
}

/// Raw baseline: the same number of same-size messages published with
/// pipelined acks and consumed by a durable pull consumer with explicit
/// acks, without any crypto.
async fn raw_jetstream(
    js: &async_nats::jetstream::Context,
    n: usize,
    size: usize,
) -> anyhow::Result<f64> {
    let subject = "varde.v1.bench.org.bench-raw.chat";
    // A scope stream of its own, made as `init` makes every scope's.
    let scope = varde_bus::subject::Target::Org(varde_schemas::OrgId::new("bench-raw")?);
    let stream = js
        .get_or_create_stream(transport::stream_config(&StreamSettings::default(), &scope))
        .await?;
    let durable = format!("bench-raw-{}", uuid::Uuid::now_v7().simple());
    let (_, config) = InboxConfig::durable(durable, vec![subject.to_string()])
        .consumer_configs()?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no consumer for {subject}"))?;
    let consumer = stream.create_consumer(config).await?;
    let payload = bytes::Bytes::from(vec![b'r'; size]);
    let start = Instant::now();
    let js2 = js.clone();
    let publisher = tokio::spawn(async move {
        let mut acks = Vec::with_capacity(n);
        for _ in 0..n {
            acks.push(js2.publish(subject, payload.clone()).await?);
        }
        for a in acks {
            a.await?;
        }
        anyhow::Ok(())
    });
    let mut msgs = consumer
        .stream()
        .max_messages_per_batch(256)
        .messages()
        .await?;
    let mut got = 0;
    while got < n {
        let m = tokio::time::timeout(Duration::from_secs(30), msgs.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("raw consumer ended"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        std::hint::black_box(m.payload.len());
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        got += 1;
    }
    publisher.await??;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

#[derive(Clone, Copy)]
enum Workload {
    Chat1k,
    Indicators(usize),
}

struct E2e {
    msgs_per_s: f64,
}

/// Sealed pipeline: a sealing thread feeds a publisher; a durable inbox
/// verifies and opens every envelope. Sealing and opening run on different
/// cores, as they do on different machines in production.
async fn sealed_e2e(
    js: &async_nats::jetstream::Context,
    demo: &Synthetic,
    n: usize,
    w: Workload,
) -> anyhow::Result<E2e> {
    let handle = demo.handle()?;
    let sender = demo.identity("kcsirt");
    let three = Audience::orgs([org("gjovik"), org("lillehammer"), org("innlandet-fk")]);
    let durable = format!("bench-e2e-{}", uuid::Uuid::now_v7().simple());
    let filters = varde_bus::subject::readable_filters(&handle.current(), &org("gjovik"));
    let opener = Arc::new(Opener::new(demo.identity("gjovik")));
    // Skip anything already in the stream from earlier runs.
    let mut cfg = InboxConfig::durable(durable, filters);
    cfg.start = Some(Timestamp::now());
    let mut inbox = Inbox::open(js, &cfg, opener, handle.clone()).await?;

    let batch_payload = match w {
        Workload::Indicators(k) => Some(Payload::Indicator(IndicatorBatch {
            source: Some("bench".into()),
            description: None,
            indicators: (0..k)
                .map(|i| Indicator {
                    kind: IndicatorType::Ipv4,
                    value: format!("198.51.{}.{}", (i / 256) % 256, i % 256),
                    first_seen: None,
                    last_seen: None,
                    confidence: Some(80),
                    tags: vec![],
                    comment: None,
                })
                .collect(),
        })),
        Workload::Chat1k => None,
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<seal::Sealed>(256);
    let dir = handle.current();
    let start = Instant::now();
    let sealer = std::thread::spawn(move || -> anyhow::Result<()> {
        for _ in 0..n {
            let d = match &batch_payload {
                Some(p) => Draft::new(p, Tlp::Amber, three.clone()),
                None => Draft::raw(Kind::Chat, Tlp::Amber, three.clone(), payload_1k()),
            };
            let s = seal::seal(&sender, &dir, d)?;
            if tx.blocking_send(s).is_err() {
                break;
            }
        }
        Ok(())
    });
    let js2 = js.clone();
    let publisher = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(s) = rx.recv().await {
            pending.push(transport::send(&js2, &s).await?);
            if pending.len() >= 512 {
                for p in pending.drain(..) {
                    transport::confirm(p).await?;
                }
            }
        }
        for p in pending {
            transport::confirm(p).await?;
        }
        anyhow::Ok(())
    });
    let mut got = 0usize;
    while got < n {
        let d = tokio::time::timeout(Duration::from_secs(60), inbox.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("inbox ended"))??;
        std::hint::black_box(d.opened.payload.indicator_count());
        d.ack().await?;
        got += 1;
    }
    let elapsed = start.elapsed();
    publisher.await??;
    sealer
        .join()
        .map_err(|_| anyhow::anyhow!("sealing thread panicked"))??;
    let stats = inbox.stats();
    let refused = varde_bus::inbox::InboxStats::get(&stats.terminated);
    if refused > 0 {
        anyhow::bail!("{refused} envelopes were refused during the bench");
    }
    Ok(E2e {
        msgs_per_s: n as f64 / elapsed.as_secs_f64(),
    })
}
