//! `varde bench national`: the bus at the size of the whole constituency.
//! So far two of the figures, each beside its baseline:
//!
//! - bytes of an AMBER advisory sealed for 120 named orgs of the national
//!   directory, beside 120 × the same advisory sealed for one org;
//! - catch-up: one org's multi-filter durable reading its backlog from a
//!   stream filled with a week's mix of traffic over the constituency's
//!   subjects, beside an unfiltered durable on the same stream, for the
//!   current subject layout and three alternatives (`--layouts`).

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use rand_core::{OsRng, RngCore};

use varde_bus::seal::{self, Draft};
use varde_schemas::{Audience, Kind, OrgId, Tlp};
use varde_testkit::synthetic::Synthetic;

use super::BenchServer;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Use this nats-server instead of starting one from .venv/.
    #[arg(long)]
    pub nats: Option<String>,
    /// Messages in the filled stream.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Also measure catch-up with the alternative subject layouts.
    #[arg(long)]
    pub layouts: bool,
    /// Smaller sizes, same code paths (CI smoke test).
    #[arg(long)]
    pub quick: bool,
}

const KINDS: [&str; 4] = ["alert", "advisory", "indicator", "chat"];
const GROUPS: [&str; 5] = ["admin", "health", "school", "culture", "ot-water"];

/// Subject layouts to compare. `SenderFirst` is the bus's layout
/// (`varde.v1.<sender>.<scope>.<target>.<kind>`); the others move the
/// target first, drop the sender, or keep the scope only.
#[derive(Clone, Copy, Debug)]
enum Layout {
    SenderFirst,
    TargetFirst,
    NoSender,
    ScopeOnly,
}

enum To {
    Community,
    Group(usize),
    Org(usize),
}

fn subject(l: Layout, sender: usize, to: &To, kind: &str) -> String {
    let s = org_name(sender);
    match (l, to) {
        (Layout::SenderFirst, To::Community) => format!("va.v1.{s}.community.all.{kind}"),
        (Layout::SenderFirst, To::Group(g)) => format!("va.v1.{s}.group.{}.{kind}", GROUPS[*g]),
        (Layout::SenderFirst, To::Org(o)) => format!("va.v1.{s}.org.{}.{kind}", org_name(*o)),
        (Layout::TargetFirst, To::Community) => format!("vb.v1.community.{s}.{kind}"),
        (Layout::TargetFirst, To::Group(g)) => format!("vb.v1.group.{}.{s}.{kind}", GROUPS[*g]),
        (Layout::TargetFirst, To::Org(o)) => format!("vb.v1.org.{}.{s}.{kind}", org_name(*o)),
        (Layout::NoSender, To::Community) => format!("vc.v1.community.all.{kind}"),
        (Layout::NoSender, To::Group(g)) => format!("vc.v1.group.{}.{kind}", GROUPS[*g]),
        (Layout::NoSender, To::Org(o)) => format!("vc.v1.org.{}.{kind}", org_name(*o)),
        (Layout::ScopeOnly, To::Community) => "vd.v1.community.all".to_string(),
        (Layout::ScopeOnly, To::Group(g)) => format!("vd.v1.group.{}", GROUPS[*g]),
        (Layout::ScopeOnly, To::Org(o)) => format!("vd.v1.org.{}", org_name(*o)),
    }
}

fn filters(l: Layout, me: usize) -> Vec<String> {
    let g = GROUPS[me % GROUPS.len()];
    let m = org_name(me);
    match l {
        Layout::SenderFirst => vec![
            "va.v1.*.community.all.*".into(),
            format!("va.v1.*.group.{g}.*"),
            format!("va.v1.*.org.{m}.*"),
        ],
        Layout::TargetFirst => vec![
            "vb.v1.community.>".into(),
            format!("vb.v1.group.{g}.>"),
            format!("vb.v1.org.{m}.>"),
        ],
        Layout::NoSender => vec![
            "vc.v1.community.all.*".into(),
            format!("vc.v1.group.{g}.*"),
            format!("vc.v1.org.{m}.*"),
        ],
        Layout::ScopeOnly => vec![
            "vd.v1.community.all".into(),
            format!("vd.v1.group.{g}"),
            format!("vd.v1.org.{m}"),
        ],
    }
}

fn org_name(i: usize) -> String {
    if i == 0 {
        "kcsirt".into()
    } else {
        format!("kommune-{i:03}")
    }
}

/// One message of the week's mix: 40 % CSIRT notifications to one org,
/// 10 % chat between orgs, 15 % group traffic, 5 % community traffic, 30 %
/// acks and sightings to the CSIRT.
fn pick(orgs: usize) -> (usize, To, &'static str) {
    let r = OsRng.next_u32() as usize;
    let p = r % 100;
    let a = (r / 100) % orgs;
    let b = 1 + (r / 100 / orgs) % (orgs - 1);
    let k = KINDS[(r >> 24) % KINDS.len()];
    match p {
        0..40 => (0, To::Org(b), k),
        40..50 => (a, To::Org(b), "chat"),
        50..65 => (a, To::Group(b % GROUPS.len()), k),
        65..70 => (if p.is_multiple_of(2) { 0 } else { a }, To::Community, k),
        70..90 => (a, To::Org(0), "ack"),
        _ => (a, To::Org(0), "sighting"),
    }
}

async fn fill(js: &jetstream::Context, l: Layout, n: usize, orgs: usize) -> anyhow::Result<f64> {
    let payload = bytes::Bytes::from(vec![b'x'; 1024]);
    let t = Instant::now();
    let mut acks = Vec::with_capacity(1024);
    for _ in 0..n {
        let (s, to, k) = pick(orgs);
        acks.push(js.publish(subject(l, s, &to, k), payload.clone()).await?);
        if acks.len() >= 1024 {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks {
        a.await?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

async fn read_all(
    stream: &jetstream::stream::Stream,
    name: &str,
    filters: Vec<String>,
) -> anyhow::Result<(usize, f64)> {
    let c = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.into()),
            filter_subjects: filters,
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await?;
    let mut info = c.clone();
    let total = info.info().await?.num_pending as usize;
    let t = Instant::now();
    let mut msgs = c.stream().max_messages_per_batch(256).messages().await?;
    let mut got = 0;
    while got < total {
        let m = tokio::time::timeout(Duration::from_secs(60), msgs.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("consumer ended"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        got += 1;
    }
    Ok((got, got as f64 / t.elapsed().as_secs_f64()))
}

/// Stored bytes of an AMBER advisory sealed for 120 named orgs over 120 ×
/// the same advisory sealed for one org.
fn named_bytes(quick: bool) -> anyhow::Result<(usize, usize, usize, usize)> {
    let world = if quick {
        Synthetic::national_sized(130, 2, 1)
    } else {
        Synthetic::national()
    };
    let dir = world.handle()?.current();
    let csirt = world.identity("kcsirt");
    let orgs: Vec<OrgId> = (0..120)
        .map(|i| OrgId::new(format!("kommune-{i:03}")))
        .collect::<Result<_, _>>()?;
    let payload = vec![b'a'; 1024];
    let draft = |a: Audience| Draft::raw(Kind::Advisory, Tlp::Amber, a, payload.clone());
    let named = seal::seal(&csirt, &dir, draft(Audience::orgs(orgs.clone())))?;
    let mut single = 0;
    for o in &orgs {
        single += seal::seal(&csirt, &dir, draft(Audience::orgs([o.clone()])))?.stored_bytes();
    }
    Ok((
        dir.orgs().len(),
        dir.keys().count(),
        named.stored_bytes(),
        single,
    ))
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let (national_orgs, keys, named, linear) = named_bytes(a.quick)?;
    println!(
        "AMBER advisory (1 KiB) to 120 named orgs: {named} bytes in 120 copies; 120 single-org envelopes: {linear} bytes; ratio {:.3}",
        named as f64 / linear as f64
    );
    let n = if a.quick { 20_000 } else { a.messages };
    let orgs = 372;
    let server = match &a.nats {
        Some(url) => BenchServer::External(url.clone()),
        None => BenchServer::start().await?,
    };
    let client = async_nats::ConnectOptions::new()
        .connect(server.url())
        .await?;
    let js = jetstream::new(client);
    let all = [
        (Layout::SenderFirst, "NA", "va.>"),
        (Layout::TargetFirst, "NB", "vb.>"),
        (Layout::NoSender, "NC", "vc.>"),
        (Layout::ScopeOnly, "ND", "vd.>"),
    ];
    let mut current = f64::NAN;
    for (l, name, subj) in all.into_iter().take(if a.layouts { 4 } else { 1 }) {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: name.into(),
                subjects: vec![subj.into()],
                ..Default::default()
            })
            .await?;
        let rate = fill(&js, l, n, orgs).await?;
        println!("{l:?}: filled {n} messages at {rate:.0}/s");
        let (fg, fr) = read_all(&stream, "filtered", filters(l, 17)).await?;
        let (ug, ur) = read_all(&stream, "unfiltered", vec![]).await?;
        println!(
            "{l:?}: one org's multi-filter durable read {fg} at {fr:.0}/s; unfiltered read {ug} at {ur:.0}/s; ratio {:.3}",
            fr / ur
        );
        if matches!(l, Layout::SenderFirst) {
            current = fr / ur;
        }
    }
    println!("peak RSS {:.1} MiB", super::peak_rss_mib());
    println!(
        "orgs={national_orgs} keys={keys} messages={n} named_bytes_over_linear={:.3} catchup_filtered_over_unfiltered={current:.3}",
        named as f64 / linear as f64
    );
    Ok(())
}
