//! Exactly once: the bridge is SIGKILLed at random points while 500
//! messages flow; afterwards each is in the room exactly once, as counted
//! by a second account.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use varde_schemas::payload::{Alert, Severity};
use varde_schemas::{Audience, Payload, Tlp};
use varde_tests::bridge::{BridgeProcess, BridgeWorld, body, bot_messages, eventually};

const MESSAGES: usize = 500;
const KILLS: usize = 6;

/// xorshift64*: random enough for kill timings, and reproducible from the
/// printed seed.
struct Jitter(u64);

impl Jitter {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        lo + self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % (hi - lo)
    }
}

fn marker(body: &str) -> Option<usize> {
    let start = body.find("EO-")? + 3;
    let end = body[start..].find("-END")? + start;
    body[start..end].parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_exactly_once_across_sigkills() -> Result<()> {
    let w = BridgeWorld::start().await?;
    let room = w.room("kari", &[], false).await?;
    let config = w.config(
        &format!("[[rooms]]\nroom = \"{room}\"\nname = \"eo\"\nkinds = [\"alert\"]\n"),
        "[delivery]\nack_wait = \"5s\"\n",
    )?;
    let mut bridge = BridgeProcess::start(&config).await?;

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("kill timing seed {seed}");
    let mut jitter = Jitter(seed);

    // Publish at ~50/s in the background while the bridge is being killed.
    let publisher = {
        let js = w.bus.js.clone();
        let dir = w.bus.handle.current();
        let csirt = w.bus.identity("kcsirt");
        tokio::spawn(async move {
            for n in 0..MESSAGES {
                let p = Payload::Alert(Alert {
                    title: format!("Exactly once EO-{n}-END"),
                    body: "Counted by a second account.".into(),
                    severity: Severity::Low,
                    urgent: false,
                    references: vec![],
                    indicators: vec![],
                    advisory_id: None,
                });
                let sealed = varde_bus::seal::seal(
                    &csirt,
                    &dir,
                    varde_bus::seal::Draft::new(&p, Tlp::Green, Audience::community()),
                )?;
                varde_bus::transport::publish(&js, &sealed).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(())
        })
    };

    let kari = w.user("kari")?;
    let bot = w.bot.user_id.clone();
    let count = |msgs: &[serde_json::Value]| {
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        for m in msgs {
            if let Some(n) = marker(body(&m["content"])) {
                *seen.entry(n).or_default() += 1;
            }
        }
        seen
    };
    let mut kills_while_flowing = 0;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(jitter.next_ms(300, 3000))).await;
        let before = count(&bot_messages(&kari, &room, &bot).await?).len();
        bridge.kill().await;
        if before < MESSAGES {
            kills_while_flowing += 1;
        }
        eprintln!("SIGKILL with {before} of {MESSAGES} in the room");
        tokio::time::sleep(Duration::from_millis(jitter.next_ms(0, 800))).await;
        bridge.restart().await?;
    }
    publisher.await??;
    assert!(
        kills_while_flowing >= 5,
        "only {kills_while_flowing} kills happened while messages flowed"
    );

    // Settled: every message acked on the bus, then count.
    let start = Instant::now();
    eventually(
        "all messages delivered and acked",
        Duration::from_secs(240),
        || async {
            let seen = count(&bot_messages(&kari, &room, &bot).await?);
            Ok((seen.len() == MESSAGES && w.consumer_idle().await?).then_some(()))
        },
    )
    .await
    .map_err(|e| e.context(bridge.log_tail()))?;
    eprintln!("settled {:?} after the last restart", start.elapsed());
    // Anything still in flight would have been redelivered by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let msgs = bot_messages(&kari, &room, &bot).await?;
    let seen = count(&msgs);
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c != 1).collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
    assert_eq!(seen.len(), MESSAGES);
    assert_eq!(msgs.len(), MESSAGES, "no other posts");
    assert!(bridge.is_running(), "{}", bridge.log_tail());
    Ok(())
}
