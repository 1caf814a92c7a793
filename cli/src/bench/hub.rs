//! `varde bench hub`: ingest and routing throughput at the size of the
//! real constituency (370 orgs, 50,000 CIDRs) against baselines measured
//! in the same run: parsing the same feed without the pipeline, and an
//! exact-match hash lookup of the same addresses. Figures only, never
//! asserted. The last line is `ingest_indicators_per_s=… route_lookups_per_s=…`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{BenchServer, peak_rss_mib};
use varde_bus::transport::{self, NatsSettings, StreamSettings};
use varde_hub::Hub;
use varde_hub::record::{Candidate, LocFn, Location, Sink};
use varde_hub::route::Router;
use varde_hub::settings::{HubSettings, SourceKind};
use varde_hub::source::{Input, SourceOptions};
use varde_hub::warninglist::Warninglists;
use varde_testkit::synthetic::Synthetic;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Use this nats-server instead of starting one from .venv/.
    #[arg(long)]
    pub nats: Option<String>,
    /// Indicator values in the generated MISP feed.
    #[arg(long, default_value_t = 100_000)]
    pub values: usize,
    /// Member organisations in the generated directory.
    #[arg(long, default_value_t = 370)]
    pub orgs: usize,
    /// CIDRs spread over them.
    #[arg(long, default_value_t = 50_000)]
    pub cidrs: usize,
    /// Route lookups timed.
    #[arg(long, default_value_t = 1_000_000)]
    pub lookups: usize,
    /// Smaller run (CI smoke test).
    #[arg(long)]
    pub quick: bool,
}

/// xorshift64*: reproducible inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The n-th constituency /24: 11.0.0.0/24, 11.0.1.0/24, …
fn cidr_base(n: usize) -> u32 {
    (11u32 << 24) + (n as u32) * 256
}

fn world(orgs: usize, cidrs: usize) -> Synthetic {
    let mut s = Synthetic::with_orgs(orgs);
    for n in 0..cidrs {
        let org = format!("kommune-{:03}", n % orgs);
        if let Some(o) = s.org_mut(&org) {
            let net = ipnet::Ipv4Net::new(Ipv4Addr::from(cidr_base(n)), 24).map(ipnet::IpNet::V4);
            if let Ok(net) = net {
                o.constituency.cidrs.push(net);
            }
        }
    }
    s
}

/// A MISP feed of `values` attributes in events of 1,000: mostly IPv4,
/// some domains, URLs and hashes; 1 % inside a member's constituency.
fn write_feed(dir: &std::path::Path, values: usize, cidrs: usize) -> anyhow::Result<()> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut manifest = serde_json::Map::new();
    let per_event = 1000;
    let events = values.div_ceil(per_event);
    let ts = jiff::Timestamp::now().as_second().to_string();
    for e in 0..events {
        let uuid = uuid::Uuid::from_u128(0xbe9c_0000_0000_4000_8000_0000_0000_0000 | e as u128);
        let mut attrs = Vec::with_capacity(per_event);
        for k in 0..per_event.min(values - e * per_event) {
            let i = e * per_event + k;
            let r = rng.next();
            let (t, v) = match r % 100 {
                0 => {
                    let n = (rng.next() as usize) % cidrs.max(1);
                    (
                        "ip-dst",
                        Ipv4Addr::from(cidr_base(n) + (rng.next() % 256) as u32).to_string(),
                    )
                }
                1..=69 => {
                    // 1.0.0.0 - 223.255.255.255 outside the constituency block
                    let mut a = (rng.next() as u32) % (223 << 24) + (1 << 24);
                    if a >> 24 == 11 {
                        a ^= 0x0800_0000;
                    }
                    ("ip-dst", Ipv4Addr::from(a).to_string())
                }
                70..=84 => (
                    "domain",
                    format!("h{:x}.bad{}.example", rng.next() >> 40, i % 997),
                ),
                85..=94 => (
                    "url",
                    format!("http://d{}.evil.example/p/{:x}", i % 4093, rng.next()),
                ),
                _ => (
                    "sha256",
                    blake3::hash(&(i as u64).to_le_bytes()).to_hex().to_string(),
                ),
            };
            attrs.push(json!({"uuid": uuid::Uuid::from_u128(r as u128).to_string(), "type": t, "category": "Network activity", "value": v, "to_ids": true, "timestamp": ts}));
        }
        let tag = json!([{"name": "tlp:green"}]);
        let ev = json!({"Event": {"uuid": uuid.to_string(), "info": format!("bench event {e}"), "date": "2026-01-01", "timestamp": ts, "Tag": tag, "Attribute": attrs}});
        std::fs::write(dir.join(format!("{uuid}.json")), serde_json::to_vec(&ev)?)?;
        manifest.insert(
            uuid.to_string(),
            json!({"info": format!("bench event {e}"), "Tag": tag, "timestamp": ts}),
        );
    }
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest)?)?;
    Ok(())
}

/// Counts what a source yields without doing anything with it.
#[derive(Default)]
struct Count(u64);

impl Sink for Count {
    fn indicator(&mut self, c: Candidate<'_>) {
        self.0 += 1;
        std::hint::black_box(c.value.len());
    }
    fn advisory(
        &mut self,
        _: varde_schemas::payload::Advisory,
        _: varde_schemas::Tlp,
        _: LocFn<'_>,
    ) {
        self.0 += 1;
    }
    fn invalid(&mut self, _: Location, _: String) {
        self.0 += 1;
    }
    fn skipped(&mut self, _: LocFn<'_>, _: &'static str) {
        self.0 += 1;
    }
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let (values, lookups) = if a.quick {
        (a.values.min(20_000), a.lookups.min(200_000))
    } else {
        (a.values, a.lookups)
    };

    // 1. the directory and its routing table
    let t = Instant::now();
    let w = world(a.orgs, a.cidrs);
    let handle = w.handle()?;
    let dir = handle.current();
    let router = Router::new(&dir);
    println!(
        "directory: {} orgs, {} CIDRs; signed, verified and indexed in {:.2} s",
        dir.orgs().len(),
        router.cidrs(),
        t.elapsed().as_secs_f64()
    );

    // 2. route lookups against an exact-match hash lookup of the same
    // addresses (the cheapest structure that could answer at all)
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let addrs: Vec<Ipv4Addr> = (0..lookups)
        .map(|i| {
            if i % 2 == 0 {
                Ipv4Addr::from(
                    cidr_base((rng.next() as usize) % a.cidrs.max(1)) + (rng.next() % 256) as u32,
                )
            } else {
                Ipv4Addr::from(rng.next() as u32)
            }
        })
        .collect();
    let exact: HashMap<u32, u32> = (0..a.cidrs).map(|n| (cidr_base(n), n as u32)).collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for ip in &addrs {
        if router.lookup_ip(IpAddr::V4(*ip)).is_some() {
            hits += 1;
        }
    }
    let lpm_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut exact_hits = 0usize;
    for ip in &addrs {
        if exact.contains_key(&(u32::from(*ip) & 0xFFFF_FF00)) {
            exact_hits += 1;
        }
    }
    let hash_s = t.elapsed().as_secs_f64();
    std::hint::black_box(exact_hits);
    let lookups_per_s = lookups as f64 / lpm_s;
    println!(
        "route: {lookups} longest-prefix lookups, {hits} owned: {:.0} lookups/s | exact hash lookup {:.0}/s | lpm/hash time {:.2}",
        lookups_per_s,
        lookups as f64 / hash_s,
        lpm_s / hash_s
    );

    // 3. the feed
    let feed = tempfile::tempdir()?;
    write_feed(feed.path(), values, a.cidrs)?;
    let input = Input::Path(feed.path().to_path_buf());
    let mut opts = SourceOptions::new("bench");
    opts.max_bytes = 64 << 20;
    let t = Instant::now();
    let mut count = Count::default();
    varde_hub::source::read(SourceKind::Misp, &input, &opts, &mut count).await?;
    let parse_s = t.elapsed().as_secs_f64();
    println!(
        "feed: {} values in {} events; read and parsed alone: {:.0} values/s",
        count.0,
        values.div_ceil(1000),
        count.0 as f64 / parse_s
    );

    // 4. the bound: sealing one full community batch (5,000 indicators
    // for every key in the directory) is most of the cost of ingest
    let batch = varde_schemas::Payload::Indicator(varde_schemas::payload::IndicatorBatch {
        source: Some("bench".into()),
        description: None,
        indicators: (0..varde_schemas::payload::MAX_INDICATORS)
            .map(|i| varde_schemas::payload::Indicator {
                kind: varde_schemas::payload::IndicatorType::Ipv4,
                value: Ipv4Addr::from(0x2d00_0000u32 + i as u32).to_string(),
                first_seen: Some(jiff::Timestamp::now()),
                last_seen: Some(jiff::Timestamp::now()),
                confidence: None,
                tags: Vec::new(),
                comment: None,
            })
            .collect(),
    });
    let kc = w.identity("kcsirt");
    let mut samples = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        varde_bus::seal::seal(
            &kc,
            &dir,
            varde_bus::seal::Draft::new(
                &batch,
                varde_schemas::Tlp::Green,
                varde_schemas::Audience::community(),
            ),
        )?;
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let seal_bound = varde_schemas::payload::MAX_INDICATORS as f64 / samples[1] * cores as f64;
    println!(
        "seal of one 5,000-indicator GREEN batch for {} keys: {:.1} ms; seal-only bound on {cores} cores {:.0} indicators/s",
        dir.keys().count(),
        samples[1] * 1e3,
        seal_bound
    );

    // 5. the whole pipeline into a real nats-server
    let server = match &a.nats {
        Some(url) => BenchServer::External(url.clone()),
        None => BenchServer::start().await?,
    };
    let client = NatsSettings::with_url(server.url()).connect().await?;
    let js = transport::jetstream(client);
    transport::init(&js, &StreamSettings::default(), Some(&dir)).await?;
    let state = tempfile::tempdir()?;
    let settings = HubSettings {
        state_dir: state.path().to_path_buf(),
        dedup_window: Duration::from_secs(7 * 24 * 3600),
        ..HubSettings::default()
    };
    let lists = Warninglists::load(&varde_hub::default_warninglists())?;
    let hub = Hub::new(w.identity("kcsirt"), handle.clone(), js, settings, lists)?;
    let t = Instant::now();
    let s = hub.ingest(SourceKind::Misp, &input, &opts, None).await?;
    let ingest_s = t.elapsed().as_secs_f64();
    let ingest_per_s = s.read as f64 / ingest_s;
    println!(
        "ingest: read {} accepted {} warninglist {} duplicates {} invalid {} routed {} notifications {} published {} envelopes in {:.2} s",
        s.read,
        s.accepted,
        s.warninglisted,
        s.duplicates,
        s.invalid,
        s.routed,
        s.notifications,
        s.published,
        ingest_s
    );
    println!(
        "ingest (read, normalise, route, warninglist, dedup, seal for {} recipients, publish, PubAck): {:.0} indicators/s | over read+parse alone {:.3} | over seal-only bound {:.3}",
        dir.keys().count(),
        ingest_per_s,
        ingest_per_s / (count.0 as f64 / parse_s),
        ingest_per_s / seal_bound
    );
    // The same feed again: everything is a duplicate now.
    let t = Instant::now();
    let again = hub.ingest(SourceKind::Misp, &input, &opts, None).await?;
    println!(
        "re-ingest of the same feed: {} duplicates, {} published, {:.0} values/s",
        again.duplicates,
        again.published,
        again.read as f64 / t.elapsed().as_secs_f64()
    );
    println!(
        "dedup store {} values (window 7 d); peak RSS {:.1} MiB (target: hub under 300 MiB)",
        hub.remembered().await,
        peak_rss_mib()
    );
    drop(hub);
    drop(server);
    println!("ingest_indicators_per_s={ingest_per_s:.0} route_lookups_per_s={lookups_per_s:.0}");
    Ok(())
}
