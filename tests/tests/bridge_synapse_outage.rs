//! Synapse stopped for 20 s while messages flow: nothing is lost, nothing
//! is posted twice, and the bridge catches up when Synapse is back (its
//! failing room parks messages in the bridge's store meanwhile, so the
//! broker's ack window never fills).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use varde_schemas::payload::{Alert, Severity};
use varde_schemas::{Audience, Payload, Tlp};
use varde_tests::bridge::{BridgeProcess, BridgeWorld, body, bot_messages, eventually};

const MESSAGES: usize = 120;

fn marker(body: &str) -> Option<usize> {
    let start = body.find("OUT-")? + 4;
    let end = body[start..].find("-END")? + start;
    body[start..end].parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_catches_up_after_a_synapse_outage() -> Result<()> {
    let mut w = BridgeWorld::start().await?;
    let room = w.room("kari", &[], false).await?;
    let config = w.config(
        &format!("[[rooms]]\nroom = \"{room}\"\nname = \"out\"\nkinds = [\"alert\"]\n"),
        "[delivery]\nack_wait = \"5s\"\npark_after = \"8s\"\n",
    )?;
    let mut bridge = BridgeProcess::start(&config).await?;

    // 10 messages/s for 12 s; Synapse goes away after 3 s for 20 s.
    let publisher = {
        let js = w.bus.js.clone();
        let dir = w.bus.handle.current();
        let csirt = w.bus.identity("kcsirt");
        tokio::spawn(async move {
            for n in 0..MESSAGES {
                let p = Payload::Alert(Alert {
                    title: format!("Outage OUT-{n}-END"),
                    body: "Must survive the homeserver's absence.".into(),
                    severity: Severity::Medium,
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
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.synapse.stop().await;
    eprintln!("Synapse stopped");
    tokio::time::sleep(Duration::from_secs(20)).await;
    w.synapse.start_again().await?;
    eprintln!("Synapse back");
    publisher.await??;

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
    eventually(
        "every message after the outage",
        Duration::from_secs(180),
        || async {
            let seen = count(&bot_messages(&kari, &room, &bot).await?);
            Ok((seen.len() == MESSAGES && w.consumer_idle().await?).then_some(()))
        },
    )
    .await
    .map_err(|e| e.context(bridge.log_tail()))?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let msgs = bot_messages(&kari, &room, &bot).await?;
    let seen = count(&msgs);
    assert_eq!(seen.len(), MESSAGES, "nothing lost");
    assert!(seen.values().all(|c| *c == 1), "nothing twice: {seen:?}");
    // In order: the parked backlog drains oldest first.
    let order: Vec<usize> = msgs
        .iter()
        .filter_map(|m| marker(body(&m["content"])))
        .collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted, "posted in bus order");
    let log = bridge.log();
    assert!(
        log.contains("post failed; retrying"),
        "{}",
        bridge.log_tail()
    );
    assert!(log.contains("message parked"), "{}", bridge.log_tail());
    assert!(bridge.is_running());
    bridge.kill().await;
    Ok(())
}
