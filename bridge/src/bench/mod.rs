//! `varde-bridge bench`: bus → room latency as a second account's sync
//! sees it, and the bridge's posts/s against a plain client sending the
//! same messages to the same Synapse in the same run. The bridge runs as
//! its own process (this binary's `run`) serving 20 rooms, so its peak
//! resident memory is its own. Figures only; nothing here asserts.

mod plain;
mod servers;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use jiff::Timestamp;
use varde_bus::keys::{self, encode_verifying_key};
use varde_bus::seal::{self, Draft};
use varde_bus::transport::{self, NatsSettings, StreamSettings};
use varde_schemas::directory::KeyRole;
use varde_schemas::payload::{Advisory, Alert, Severity};
use varde_schemas::{Audience, Payload, Tlp};
use varde_testkit::synthetic::Synthetic;

use crate::config::Language;
use crate::render::{self, Style};
use plain::Plain;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Use this nats-server instead of starting one from .venv/.
    #[arg(long)]
    pub nats: Option<String>,
    /// Use this homeserver (open registration, e.g. the dev config)
    /// instead of starting Synapse from .venv/.
    #[arg(long)]
    pub homeserver: Option<String>,
    /// Rooms the bridge serves.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Messages per second in the latency run.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Length of the latency run.
    #[arg(long, default_value = "30s", value_parser = varde_bus::time::parse_duration)]
    pub duration: Duration,
    /// Messages in each throughput burst (bridge, then plain client).
    #[arg(long, default_value_t = 300)]
    pub burst: usize,
    /// Short runs (CI smoke test).
    #[arg(long)]
    pub quick: bool,
}

/// Arrival times of bench messages as the second account's sync saw them,
/// by marker.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn marker(phase: &str, n: usize) -> String {
    format!("VBM-{phase}-{n}-END")
}

fn alert(phase: &str, n: usize) -> Payload {
    Payload::Alert(Alert {
        title: format!("Bench {}", marker(phase, n)),
        body: "Block the sender domain bench.example and reset the credentials of anyone who clicked the link; the campaign impersonates the municipality's payroll system.".into(),
        severity: Severity::High,
        urgent: false,
        references: vec!["https://bench.example/advisory".into()],
        indicators: vec![],
        advisory_id: None,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn wait_for(seen: &Seen, keys: &[String], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = {
            let s = seen.lock().unwrap_or_else(|p| p.into_inner());
            keys.iter().filter(|k| !s.contains_key(*k)).count()
        };
        if missing == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{missing} of {} messages did not arrive within {timeout:?}",
                keys.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Where the bridge under test connects, and as whom.
struct Endpoints<'a> {
    nats: &'a str,
    homeserver: &'a str,
    bot: &'a Plain,
    bot_password: &'a str,
}

fn write_config(
    dir: &Path,
    world: &Synthetic,
    bridge: &varde_bus::keys::Identity,
    to: &Endpoints<'_>,
    rooms: &[String],
) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("keys"))?;
    keys::write_private(
        &dir.join("keys/bridge.age"),
        keys::age_identity_file(&bridge.age).as_bytes(),
    )?;
    keys::write_private(
        &dir.join("keys/bridge.sign"),
        keys::signing_key_file(&bridge.signing, "bench bridge").as_bytes(),
    )?;
    std::fs::write(dir.join("directory.json"), world.signed()?)?;
    let mut cfg = format!(
        "[identity]\norg = \"gjovik\"\nage = \"keys/bridge.age\"\nsigning = \"keys/bridge.sign\"\n\n\
         [directory]\nroot_keys = [\"{root}\"]\nfile = \"directory.json\"\nstate = \"state/directory.json\"\n\n\
         [nats]\nurl = \"{nats}\"\n\n\
         [matrix]\nhomeserver = \"{homeserver}\"\nuser = \"{user}\"\npassword = \"{bot_password}\"\ndevice_id = \"VARDEBENCH\"\nstore = \"state/matrix\"\n\n\
         [store]\npath = \"state/bridge.sqlite3\"\n",
        root = encode_verifying_key(&world.root.verifying_key()),
        nats = to.nats,
        homeserver = to.homeserver,
        user = to.bot.user_id,
        bot_password = to.bot_password,
    );
    for (i, r) in rooms.iter().enumerate() {
        let kinds = if i == 0 { "alert" } else { "advisory" };
        cfg.push_str(&format!(
            "\n[[rooms]]\nroom = \"{r}\"\nname = \"room-{i:02}\"\nkinds = [\"{kinds}\"]\nceiling = \"TLP:GREEN\"\n"
        ));
    }
    let path = dir.join("bridge.toml");
    std::fs::write(&path, cfg)?;
    Ok(path)
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let (duration, burst) = if a.quick {
        (a.duration.min(Duration::from_secs(5)), a.burst.min(60))
    } else {
        (a.duration, a.burst)
    };
    let rooms_n = a.rooms.max(1);
    let nats = match &a.nats {
        Some(u) => servers::Server::external(u),
        None => servers::nats().await?,
    };
    let synapse = match &a.homeserver {
        Some(u) => servers::Server::external(u),
        None => servers::synapse().await?,
    };
    println!("servers: nats {} | synapse {}", nats.url, synapse.url);

    let tag = std::process::id();
    let bot_password = format!("bench-bot-{tag}-pw");
    let bot = Plain::register(&synapse.url, &format!("vardebot{tag}"), &bot_password).await?;
    let reader = Plain::register(&synapse.url, &format!("kari{tag}"), "bench-reader-pw").await?;
    let sender = Plain::register(&synapse.url, &format!("ola{tag}"), "bench-plain-pw").await?;

    let mut world = Synthetic::demo();
    let bridge_id = world.add_key("gjovik", KeyRole::Bridge, "bridge");
    if let Some(o) = world.org_mut("gjovik") {
        o.matrix.users = vec![reader.user_id.clone(), sender.user_id.clone()];
    }
    let client = NatsSettings::with_url(&nats.url).connect().await?;
    let js = transport::jetstream(client);
    transport::init(&js, &StreamSettings::default(), None).await?;
    varde_bus::directory_kv::push(&js, &world.signed()?, &[world.root.verifying_key()]).await?;
    let dir = world.handle()?.current();
    let csirt = world.identity("kcsirt");

    // Rooms: made by the reader, with the bot and the plain sender invited.
    let mut rooms = Vec::new();
    for i in 0..rooms_n {
        let id = reader
            .create_room(
                &format!("bench {i:02}"),
                &[bot.user_id.as_str(), sender.user_id.as_str()],
            )
            .await?;
        rooms.push(id);
    }
    // The plain sender joins room 0 to send its baseline there.
    {
        let url = format!("join/{}", urlencoding::encode(&rooms[0]));
        sender_join(&sender, &url).await?;
    }

    let work = tempfile::tempdir()?;
    let cfg = write_config(
        work.path(),
        &world,
        &bridge_id,
        &Endpoints {
            nats: &nats.url,
            homeserver: &synapse.url,
            bot: &bot,
            bot_password: &bot_password,
        },
        &rooms,
    )?;
    let log_path = work.path().join("bridge.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("VARDE_LOG", "warn,varde_bridge=info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting the bridge")?;
    let pid = child.id().context("bridge pid")?;

    // Wait until the bridge has joined every room.
    let deadline = Instant::now() + Duration::from_secs(180);
    for r in &rooms {
        loop {
            if reader.joined_members(r).await?.contains(&bot.user_id) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(work.path().join("bridge.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                bail!(
                    "the bridge exited ({status}); its last log lines:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            if Instant::now() > deadline {
                bail!("the bridge did not join all rooms within 3 minutes");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!("bridge (pid {pid}) joined {} rooms", rooms.len());

    // The second account's sync, recording when each marker arrives.
    let seen: Seen = Default::default();
    let (first_token, _) = reader.sync(None, 0).await?;
    {
        let seen = seen.clone();
        let reader = reader.clone();
        tokio::spawn(async move {
            let mut since = first_token;
            loop {
                match reader.sync(Some(&since), 1000).await {
                    Ok((next, bodies)) => {
                        let now = Instant::now();
                        let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                        for (_, body) in bodies {
                            if let Some(start) = body.find("VBM-")
                                && let Some(len) = body[start..].find("-END")
                            {
                                s.entry(body[start..start + len + 4].to_string())
                                    .or_insert(now);
                            }
                        }
                        since = next;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
    }

    let publish = |phase: &'static str, n: usize| {
        let draft = Draft::new(&alert(phase, n), Tlp::Green, Audience::community());
        seal::seal(&csirt, &dir, draft)
    };

    // Warm-up.
    let warm: Vec<String> = (0..3).map(|n| marker("warm", n)).collect();
    for n in 0..3 {
        transport::publish(&js, &publish("warm", n)?).await?;
    }
    if let Err(e) = wait_for(&seen, &warm, Duration::from_secs(60)).await {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        bail!(
            "{e}; the bridge's last log lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    // 1. Latency at a steady rate.
    let count = ((duration.as_secs_f64() * a.rate).round() as usize).max(1);
    let every = Duration::from_secs_f64(1.0 / a.rate.max(0.1));
    let mut sent_at = HashMap::new();
    let mut tick = tokio::time::interval(every);
    let mut keys = Vec::new();
    for n in 0..count {
        tick.tick().await;
        let sealed = publish("lat", n)?;
        let t = Instant::now();
        transport::publish(&js, &sealed).await?;
        sent_at.insert(marker("lat", n), t);
        keys.push(marker("lat", n));
    }
    wait_for(&seen, &keys, Duration::from_secs(120)).await?;
    let mut lat: Vec<f64> = {
        let s = seen.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| Some(s.get(k)?.duration_since(*sent_at.get(k)?).as_secs_f64() * 1e3))
            .collect()
    };
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 50.0), percentile(&lat, 99.0));
    println!(
        "bus → room latency at {} msg/s, {} messages, seen by a second account's sync: p50 {p50:.1} ms, p99 {p99:.1} ms (goal p99 ≤ 500 ms)",
        a.rate, count
    );

    // 2. Throughput: the bridge, then a plain client with the same posts,
    // alternating twice so both see the same machine state.
    let style = Style {
        lang: Language::En,
        sender_name: "KommuneCSIRT",
        urgent_alerts: false,
    };
    let mut bridge_s = 0.0;
    let mut plain_s = 0.0;
    let mut total = 0usize;
    for round in 0..2 {
        let phase_b: &'static str = if round == 0 { "bridge0" } else { "bridge1" };
        let sealed: Vec<_> = (0..burst)
            .map(|n| publish(phase_b, n))
            .collect::<Result<_, _>>()?;
        let keys: Vec<String> = (0..burst).map(|n| marker(phase_b, n)).collect();
        let t0 = Instant::now();
        let mut pending = Vec::new();
        for s in &sealed {
            pending.extend(transport::send(&js, s).await?);
        }
        transport::confirm(pending).await?;
        wait_for(&seen, &keys, Duration::from_secs(300)).await?;
        let last = {
            let s = seen.lock().unwrap_or_else(|p| p.into_inner());
            keys.iter().filter_map(|k| s.get(k).copied()).max()
        };
        bridge_s += last.map_or(0.0, |l| l.duration_since(t0).as_secs_f64());

        let phase_p: &'static str = if round == 0 { "plain0" } else { "plain1" };
        // The very content the bridge sends, as the plain client's JSON.
        let contents = (0..burst)
            .map(|n| {
                let s = &sealed[n];
                serde_json::to_value(
                    render::message(&style, &s.header, &alert(phase_p, n))
                        .post
                        .content(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<String> = (0..burst).map(|n| marker(phase_p, n)).collect();
        let t0 = Instant::now();
        for c in &contents {
            sender.send(&rooms[0], c).await?;
        }
        wait_for(&seen, &keys, Duration::from_secs(300)).await?;
        let last = {
            let s = seen.lock().unwrap_or_else(|p| p.into_inner());
            keys.iter().filter_map(|k| s.get(k).copied()).max()
        };
        plain_s += last.map_or(0.0, |l| l.duration_since(t0).as_secs_f64());
        total += burst;
    }
    let bridge_rate = total as f64 / bridge_s;
    let plain_rate = total as f64 / plain_s;
    println!(
        "throughput into one room, {total} posts each: bridge {bridge_rate:.1} posts/s, plain client {plain_rate:.1} posts/s, ratio {:.3} (goal ≥ 0.8)",
        bridge_rate / plain_rate
    );

    // 3. Every room busy once: advisories to the community reach the
    // other rooms (a fan-out of rooms-1 posts each).
    if rooms_n > 1 {
        let fan = if a.quick { 3 } else { 10 };
        for n in 0..fan {
            let adv = Payload::Advisory(Advisory {
                advisory_id: format!("BENCH-{n}"),
                revision: 1,
                title: format!("Fan-out {}", marker("fan", n)),
                summary: "Patch now.".into(),
                severity: Severity::Medium,
                cves: vec![],
                affected: vec![],
                actions: vec![],
                references: vec![],
                sectors: vec![],
                published: Timestamp::now(),
                changes: None,
                matched_assets: vec![],
            });
            let s = seal::seal(
                &csirt,
                &dir,
                Draft::new(&adv, Tlp::Green, Audience::community()),
            )?;
            transport::publish(&js, &s).await?;
        }
        // One of the fan-out rooms' copies is enough to know they flowed;
        // wait for the bridge's own count instead of every room.
        let keys: Vec<String> = (0..fan).map(|n| marker("fan", n)).collect();
        wait_for(&seen, &keys, Duration::from_secs(300)).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let rss = varde_testkit::peak_rss_mib(pid);
    println!(
        "bridge process serving {} rooms: peak RSS {rss:.1} MiB (goal < 150 MiB)",
        rooms.len()
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
    println!(
        "bus_to_room_p50_ms={p50:.1} bus_to_room_p99_ms={p99:.1} bridge_posts_per_s={bridge_rate:.1} plain_posts_per_s={plain_rate:.1} bridge_over_plain={:.3}",
        bridge_rate / plain_rate
    );
    Ok(())
}

async fn sender_join(sender: &Plain, path: &str) -> anyhow::Result<()> {
    let http = matrix_sdk::reqwest::Client::builder().no_proxy().build()?;
    let url = format!("{}/_matrix/client/v3/{path}", sender.base);
    let r = http
        .post(url)
        .bearer_auth(&sender.token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("joining: HTTP {}", r.status());
    }
    Ok(())
}
