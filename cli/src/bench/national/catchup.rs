//! Fan-out bytes and catch-up at national size: bytes of an AMBER advisory
//! sealed for 120 named orgs beside 120 single-org envelopes, and one
//! org's backlog read on the bus's layout (a stream per scope) beside an
//! unfiltered read of one stream holding every message, with the
//! one-stream layouts measured before (`--layouts`).

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use rand_core::{OsRng, RngCore};

use varde_bus::directory::VerifiedDirectory;
use varde_bus::inbox::InboxConfig;
use varde_bus::seal::{self, Draft};
use varde_bus::{subject, transport};
use varde_schemas::{Audience, GroupId, Kind, OrgId, Tlp};
use varde_testkit::synthetic::Synthetic;

const KINDS: [&str; 4] = ["alert", "advisory", "indicator", "chat"];
const GROUPS: [&str; 5] = ["admin", "health", "school", "culture", "ot-water"];

/// One-stream subject layouts. `SenderFirst` is the bus's subject order
/// (`<sender>.<scope>.<target>.<kind>`) in one stream, as before a stream
/// per scope; the others move the target first, drop the sender, or keep
/// the scope only. None of them reads fast enough filtered (README).
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

fn layout_subject(l: Layout, sender: usize, to: &To, kind: &str) -> String {
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
        acks.push(
            js.publish(layout_subject(l, s, &to, k), payload.clone())
                .await?,
        );
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
    let reader = c.stream().max_messages_per_batch(256).messages().await?;
    read_merged(vec![reader], total).await
}

/// Reads and acks `total` messages from `readers` merged; the count and
/// the rate.
async fn read_merged(
    readers: Vec<consumer::pull::Stream>,
    total: usize,
) -> anyhow::Result<(usize, f64)> {
    let t = Instant::now();
    let mut msgs = futures::stream::select_all(readers);
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
pub fn named_bytes(quick: bool) -> anyhow::Result<(usize, usize, usize, usize)> {
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

/// Catch-up on the bus's layout: one stream per scope made by
/// `transport::init` for `dir`, filled through `subject`'s functions with a
/// week's mix among `dir`'s orgs and groups, and one kommune's consumers
/// made from `readable_filters` as provisioning makes them, read merged.
async fn bus_layout(
    js: &jetstream::Context,
    dir: &VerifiedDirectory,
    n: usize,
) -> anyhow::Result<(usize, f64)> {
    let t = Instant::now();
    transport::init(js, &transport::StreamSettings::default(), Some(dir)).await?;
    println!(
        "bus layout: {} scope streams made in {:.2} s",
        subject::scopes(dir).len(),
        t.elapsed().as_secs_f64()
    );
    let orgs: Vec<OrgId> = dir.orgs().iter().map(|o| o.id.clone()).collect();
    let groups: Vec<GroupId> = subject::scopes(dir)
        .into_iter()
        .filter_map(|s| match s {
            subject::Target::Group(g) => Some(g),
            _ => None,
        })
        .collect();
    let payload = bytes::Bytes::from(vec![b'x'; 1024]);
    let t = Instant::now();
    let mut acks = Vec::with_capacity(1024);
    for _ in 0..n {
        let (s, to, k) = pick(orgs.len());
        let kind = k.parse::<Kind>().unwrap_or(Kind::Chat);
        let sender = &orgs[s];
        let subj = match to {
            To::Community => subject::community(sender, kind),
            To::Group(g) => subject::group(sender, &groups[g % groups.len()], kind),
            To::Org(o) => subject::org(sender, &orgs[o], kind),
        };
        acks.push(js.publish(subj, payload.clone()).await?);
        if acks.len() >= 1024 {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks {
        a.await?;
    }
    println!(
        "bus layout: filled {n} messages at {:.0}/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    let me = OrgId::new("kommune-017")?;
    let cfg = InboxConfig::durable("catch-up", subject::readable_filters(dir, &me));
    let mut total = 0;
    let mut readers = Vec::new();
    for (stream, config) in cfg.consumer_configs()? {
        let c = js
            .get_stream(&stream)
            .await?
            .create_consumer(config)
            .await?;
        let mut info = c.clone();
        total += info.info().await?.num_pending as usize;
        readers.push(c.stream().max_messages_per_batch(256).messages().await?);
    }
    read_merged(readers, total).await
}

/// Catch-up figures: one kommune's consumers on the bus's layout beside an
/// unfiltered durable reading the same number of messages from one stream
/// holding them all (the one-stream layout of before, filled the same
/// way); with `layouts`, that one stream's filtered read and three other
/// one-stream subject layouts too. Returns the bus layout's ratio.
pub async fn run(
    js: &jetstream::Context,
    dir: &VerifiedDirectory,
    n: usize,
    layouts: bool,
) -> anyhow::Result<f64> {
    let orgs = dir.orgs().len();
    let (bus_got, bus_rate) = bus_layout(js, dir, n).await?;
    let all = [
        (Layout::SenderFirst, "NA", "va.>"),
        (Layout::TargetFirst, "NB", "vb.>"),
        (Layout::NoSender, "NC", "vc.>"),
        (Layout::ScopeOnly, "ND", "vd.>"),
    ];
    let mut unfiltered = f64::NAN;
    for (l, name, subj) in all.into_iter().take(if layouts { 4 } else { 1 }) {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: name.into(),
                subjects: vec![subj.into()],
                ..Default::default()
            })
            .await?;
        let rate = fill(js, l, n, orgs).await?;
        println!("one stream, {l:?}: filled {n} messages at {rate:.0}/s");
        let (ug, ur) = read_all(&stream, "unfiltered", vec![]).await?;
        if matches!(l, Layout::SenderFirst) {
            unfiltered = ur;
            println!("one stream: unfiltered durable read {ug} at {ur:.0}/s (baseline)");
        }
        if layouts {
            let (fg, fr) = read_all(&stream, "filtered", filters(l, 17)).await?;
            println!(
                "one stream, {l:?}: one org's multi-filter durable read {fg} at {fr:.0}/s; ratio {:.3}",
                fr / ur
            );
        }
    }
    let ratio = bus_rate / unfiltered;
    println!(
        "bus layout (a stream per scope): one kommune's {bus_got} messages read at {bus_rate:.0}/s from its unfiltered consumers; ratio to the unfiltered baseline {ratio:.3}"
    );
    Ok(ratio)
}
