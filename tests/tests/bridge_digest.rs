//! A burst of 2,000 indicators becomes digest messages (with the values in
//! attached CSV files), not 2,000 posts, and no value is lost or repeated.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use varde_schemas::payload::{Indicator, IndicatorBatch, IndicatorType};
use varde_schemas::{Audience, Payload, Tlp};
use varde_tests::bridge::{BridgeProcess, BridgeWorld, body, bot_messages, eventually};

const THRESHOLD: usize = 50;
/// The digest window. The bridge counts a window from when it handles the
/// first indicator of it, so on a loaded machine the burst's single posts
/// may spill into a second window, which is then allowed its own
/// threshold; the bound below is computed from the posts' times.
const WINDOW_S: i64 = 15;

/// Downloads an `mxc://` file with the client's token.
async fn download(base: &str, token: &str, mxc: &str) -> Result<String> {
    let rest = mxc.strip_prefix("mxc://").context("not an mxc URL")?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let r = http
        .get(format!("{base}/_matrix/client/v1/media/download/{rest}"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "download {mxc}: {}", r.status());
    Ok(r.text().await?)
}

/// Every value shown, from single posts' bodies and digests' CSV files,
/// with how often; the homeserver times (ms) of the single posts; and the
/// numbers of digests and files.
async fn collect(
    base: &str,
    token: &str,
    msgs: Vec<Value>,
) -> Result<(BTreeMap<String, usize>, Vec<i64>, usize, usize)> {
    let mut values: BTreeMap<String, usize> = BTreeMap::new();
    let mut singles = Vec::new();
    let (mut digests, mut files) = (0, 0);
    for m in &msgs {
        let c = &m["content"];
        if c["msgtype"] == "m.file" {
            files += 1;
            let csv = download(base, token, c["url"].as_str().unwrap_or("")).await?;
            for line in csv.lines().skip(1) {
                let mut cols = line.splitn(3, ',');
                let key = format!(
                    "{},{}",
                    cols.next().unwrap_or(""),
                    cols.next().unwrap_or("")
                );
                *values.entry(key).or_default() += 1;
            }
        } else if body(c).contains("Indicator digest") {
            digests += 1;
        } else {
            singles.push(m["origin_server_ts"].as_i64().unwrap_or(0));
            for line in body(c).lines() {
                if let Some(v) = line.strip_prefix("  - ") {
                    *values.entry(v.replacen(' ', ",", 1)).or_default() += 1;
                }
            }
        }
    }
    Ok((values, singles, digests, files))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_digests_an_indicator_burst() -> Result<()> {
    let w = BridgeWorld::start().await?;
    let room = w.room("kari", &[], false).await?;
    let config = w.config(
        &format!(
            "[[rooms]]\nroom = \"{room}\"\nname = \"iocs\"\nkinds = [\"indicator\"]\n[rooms.digest]\nthreshold = {THRESHOLD}\nwindow = \"{WINDOW_S}s\"\nsample = 10\n"
        ),
        "",
    )?;
    let bridge = BridgeProcess::start(&config).await?;

    // 1,000 single-indicator batches (a flood of small messages) and ten
    // batches of 100 (big ones): 2,000 indicators.
    let mut expected = Vec::new();
    for n in 0..1000u32 {
        let v = format!("10.77.{}.{}", n / 250, n % 250 + 1);
        expected.push(format!("ipv4,{v}"));
        let batch = IndicatorBatch {
            source: Some("ids:burst".into()),
            description: None,
            indicators: vec![Indicator::new(IndicatorType::Ipv4, &v)?],
        };
        w.publish(
            &Payload::Indicator(batch),
            Tlp::Green,
            Audience::community(),
        )
        .await?;
    }
    for b in 0..10 {
        let indicators: Vec<Indicator> = (0..100)
            .map(|i| Indicator::new(IndicatorType::Domain, &format!("c2-{b}-{i}.evil.example")))
            .collect::<Result<_, _>>()?;
        expected.extend(indicators.iter().map(|i| format!("domain,{}", i.value)));
        let batch = IndicatorBatch {
            source: Some("misp:feed".into()),
            description: Some("C2 domains".into()),
            indicators,
        };
        w.publish(
            &Payload::Indicator(batch),
            Tlp::Green,
            Audience::community(),
        )
        .await?;
    }
    assert_eq!(expected.len(), 2000);

    let kari = w.user("kari")?;
    let bot = w.bot.user_id.clone();
    let (values, singles, digests, files) =
        eventually("all 2,000 indicators", Duration::from_secs(180), || async {
            let msgs = bot_messages(&kari, &room, &bot).await?;
            let r = collect(&w.synapse.base_url(), &kari.access_token, msgs).await?;
            Ok((r.0.len() >= 2000 && w.consumer_idle().await?).then_some(r))
        })
        .await
        .map_err(|e| e.context(bridge.log_tail()))?;

    // Windows the single posts spanned (a second only when they took about
    // a window or longer: a slow machine), with a second's slack for the
    // bridge starting its window just before the first post.
    let span = singles
        .iter()
        .max()
        .zip(singles.iter().min())
        .map_or(0, |(a, b)| a - b);
    let windows = usize::try_from((span + 1000) / (WINDOW_S * 1000) + 1).unwrap_or(usize::MAX);
    let singles = singles.len();
    eprintln!(
        "{singles} single posts over {span} ms ({windows} window(s)), {digests} digests, {files} CSV files"
    );
    let repeated: Vec<_> = values.iter().filter(|(_, n)| **n != 1).take(5).collect();
    assert!(
        repeated.is_empty(),
        "values shown more than once: {repeated:?}"
    );
    for v in &expected {
        assert!(values.contains_key(v), "{v} missing");
    }
    assert_eq!(values.len(), 2000, "nothing else");
    assert!(
        singles <= THRESHOLD * windows,
        "{singles} single posts in {windows} window(s); the rest must be folded"
    );
    assert!(
        digests >= 1 && digests == files,
        "{digests} digests, {files} files"
    );
    assert!(digests + files < 50, "a digest, not a flood of digests");
    Ok(())
}
