//! A world for the Matrix bridge's tests: a real Synapse and nats-server,
//! the demo directory with Matrix users for its orgs, a bridge key of
//! `gjovik` (the bridge's bus identity), Kari's person key (for TLP:RED),
//! the bridge's configuration on disk, and `varde-bridge` run as a child
//! process that can be killed and started again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;
use varde_bridge::matrix::reader::{ReadEvent, Reader};
use varde_bus::keys::{self, Identity, encode_verifying_key};
use varde_bus::seal::{Draft, Sealed};
use varde_schemas::directory::KeyRole;
use varde_schemas::{Audience, KeyId, Payload, Tlp};
use varde_testkit::synthetic::Synthetic;

use crate::{BusFixture, MatrixUser, RegisteredUser, Synapse, workspace_bin};
use varde_testkit::process::{ServerProcess, keep_dir_if_asked, log_tail};

/// The people of the test world: (name, org). `stranger` is in no org.
pub const PEOPLE: [(&str, Option<&str>); 5] = [
    ("kari", Some("gjovik")),
    ("ola", Some("gjovik")),
    ("lars", Some("lillehammer")),
    ("eve", Some("innlandet-fk")),
    ("stranger", None),
];

pub struct BridgeWorld {
    pub synapse: Synapse,
    pub bus: BusFixture,
    pub bot: RegisteredUser,
    pub bot_password: String,
    pub users: BTreeMap<&'static str, RegisteredUser>,
    pub bridge: Arc<Identity>,
    pub kari_key: KeyId,
    pub dir: TempDir,
}

fn password(name: &str) -> String {
    format!("pw-{name}-varde-test")
}

impl BridgeWorld {
    pub async fn start() -> Result<BridgeWorld> {
        Self::with_synapse(Synapse::start().await?).await
    }

    /// A world whose Synapse also reads `extra` (YAML) as configuration.
    pub async fn start_with(extra: &str) -> Result<BridgeWorld> {
        Self::with_synapse(Synapse::start_with(extra).await?).await
    }

    async fn with_synapse(synapse: Synapse) -> Result<BridgeWorld> {
        let bot_password = password("varde");
        let bot = synapse.register("varde", &bot_password).await?;
        let mut users = BTreeMap::new();
        for (name, _) in PEOPLE {
            users.insert(name, synapse.register(name, &password(name)).await?);
        }
        let mut world = Synthetic::demo();
        let bridge = world.add_key("gjovik", KeyRole::Bridge, "bridge");
        let kari = world.add_key("gjovik", KeyRole::Person, "Kari Nordmann");
        for (name, org) in PEOPLE {
            if let Some(org) = org
                && let Some(o) = world.org_mut(org)
            {
                o.matrix.users.push(users[name].user_id.clone());
            }
        }
        if let Some(o) = world.org_mut("gjovik")
            && let Some(k) = o.keys.iter_mut().find(|k| k.id == kari.key_id)
        {
            k.matrix_user = Some(users["kari"].user_id.clone());
        }
        let bus = BusFixture::with(world).await?;
        let mut dir = tempfile::Builder::new()
            .prefix("varde-bridge-test-")
            .tempdir()?;
        keep_dir_if_asked(&mut dir);
        std::fs::create_dir_all(dir.path().join("keys"))?;
        keys::write_private(
            &dir.path().join("keys/bridge.age"),
            keys::age_identity_file(&bridge.age).as_bytes(),
        )?;
        keys::write_private(
            &dir.path().join("keys/bridge.sign"),
            keys::signing_key_file(&bridge.signing, "test bridge").as_bytes(),
        )?;
        std::fs::write(dir.path().join("directory.json"), bus.world.signed()?)?;
        Ok(BridgeWorld {
            synapse,
            bus,
            bot,
            bot_password,
            users,
            bridge,
            kari_key: kari.key_id,
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A plain client-server API client acting as `name`.
    pub fn user(&self, name: &str) -> Result<MatrixUser> {
        let u = self
            .users
            .get(name)
            .with_context(|| format!("no test user {name}"))?;
        self.synapse.user(u)
    }

    pub fn user_id(&self, name: &str) -> String {
        self.users
            .get(name)
            .map(|u| u.user_id.clone())
            .unwrap_or_default()
    }

    /// `name` with end-to-end encryption on a cross-signed device of its own.
    pub async fn reader(&self, name: &str) -> Result<Reader> {
        let u = self
            .users
            .get(name)
            .with_context(|| format!("no test user {name}"))?;
        Reader::login(
            &self.synapse.base_url(),
            &u.user_id,
            &password(name),
            &self.path().join(format!("readers/{name}")),
            "TESTREADER",
        )
        .await
    }

    /// A room made by `owner`, with `members` invited and joined, and the
    /// bot invited (it joins by itself). Encrypted when asked.
    pub async fn room(&self, owner: &str, members: &[&str], encrypted: bool) -> Result<String> {
        let mut joiners = Vec::new();
        for m in members {
            joiners.push((self.user_id(m), self.user(m)?));
        }
        make_room(&self.user(owner)?, &self.bot.user_id, &joiners, encrypted).await
    }

    /// Writes the bridge's configuration with these `[[rooms]]` (TOML) and
    /// any extra sections; returns its path.
    pub fn config(&self, rooms: &str, extra: &str) -> Result<PathBuf> {
        let text = format!(
            "[identity]\norg = \"gjovik\"\nage = \"keys/bridge.age\"\nsigning = \"keys/bridge.sign\"\n\n\
             [directory]\nroot_keys = [\"{root}\"]\nfile = \"directory.json\"\nstate = \"state/directory.json\"\n\n\
             [nats]\nurl = \"{nats}\"\n\n\
             [matrix]\nhomeserver = \"{hs}\"\nuser = \"{user}\"\npassword = \"{pw}\"\ndevice_id = \"VARDETEST\"\nstore = \"state/matrix\"\n\n\
             [store]\npath = \"state/bridge.sqlite3\"\n\n{extra}\n{rooms}\n",
            root = encode_verifying_key(&self.bus.world.root.verifying_key()),
            nats = self.bus.nats.url(),
            hs = self.synapse.base_url(),
            user = self.bot.user_id,
            pw = self.bot_password,
        );
        let path = self.path().join("bridge.toml");
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Seals `payload` as the CSIRT and publishes it.
    pub async fn publish(
        &self,
        payload: &Payload,
        label: Tlp,
        audience: Audience,
    ) -> Result<Sealed> {
        self.bus
            .publish(
                &self.bus.identity("kcsirt"),
                Draft::new(payload, label, audience),
            )
            .await
    }

    /// Whether the bridge's durable consumer has nothing left: every
    /// message delivered and acked.
    pub async fn consumer_idle(&self) -> Result<bool> {
        self.bus.consumers_idle("gjovik", "gjovik-bridge").await
    }

    /// Runs `varde-bridge <args>` with the test config, to completion.
    pub async fn cli(&self, config: &Path, args: &[&str]) -> Result<(i32, String)> {
        let out = Command::new(workspace_bin("varde-bridge")?)
            .arg("--config")
            .arg(config)
            .args(args)
            .env("VARDE_LOG", "warn")
            .output()
            .await?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.code().unwrap_or(-1), text))
    }
}

/// `varde-bridge run` as a child process, its log in a file.
pub struct BridgeProcess {
    process: ServerProcess,
    config: PathBuf,
    starts: usize,
}

impl BridgeProcess {
    pub async fn start(config: &Path) -> Result<BridgeProcess> {
        let log = config.with_file_name("bridge.log");
        let mut p = BridgeProcess {
            process: ServerProcess::new("varde-bridge", log),
            config: config.to_path_buf(),
            starts: 0,
        };
        p.spawn().await?;
        Ok(p)
    }

    async fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new(workspace_bin("varde-bridge")?);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("run")
            // Our own code at debug, so the no-plaintext check covers it all.
            .env("VARDE_LOG", "warn,varde_bridge=debug,varde_bus=debug")
            .env("NO_COLOR", "1");
        self.process.spawn(cmd)?;
        self.starts += 1;
        let want = self.starts;
        let log = self.process.log_path().to_path_buf();
        self.process
            .wait_ready(Duration::from_secs(120), || {
                let log = log.clone();
                async move {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    Ok(text.matches("varde-bridge running").count() >= want)
                }
            })
            .await
    }

    /// SIGKILL: no chance to finish anything.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Starts it again (after `kill`) and waits until it runs.
    pub async fn restart(&mut self) -> Result<()> {
        self.process.kill().await;
        self.spawn().await
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.process.log_path()).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        log_tail(self.process.log_path(), 60)
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

/// The bodies of `m.room.message` events the bot sent, oldest first
/// (plain API: unencrypted rooms).
pub async fn bot_messages(user: &MatrixUser, room: &str, bot: &str) -> Result<Vec<Value>> {
    let mut events = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let mut query = vec![("dir", "b".to_string()), ("limit", "1000".to_string())];
        if let Some(f) = &from {
            query.push(("from", f.clone()));
        }
        let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = user
            .request(reqwest::Method::GET, &["rooms", room, "messages"], &q, None)
            .await?;
        let chunk = page
            .get("chunk")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if chunk.is_empty() {
            break;
        }
        events.extend(chunk);
        match page.get("end").and_then(Value::as_str) {
            Some(end) => from = Some(end.to_string()),
            None => break,
        }
    }
    events.reverse();
    Ok(events
        .into_iter()
        .filter(|e| {
            e.get("type").and_then(Value::as_str) == Some("m.room.message")
                && e.get("sender").and_then(Value::as_str) == Some(bot)
        })
        .collect())
}

/// Polls `f` until it returns `Some`, up to `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("waiting for {what}")));
            }
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The reader's view of a room after a sync: every event, decrypted where
/// it can.
pub async fn read_room(reader: &Reader, room: &str) -> Result<Vec<ReadEvent>> {
    reader.sync_once().await?;
    reader.messages(room, 500).await
}

/// The first event of the room (as the reader sees it, decrypted) whose
/// body contains `needle`, waiting up to `wait` for it.
pub async fn read_event(
    reader: &Reader,
    room: &str,
    needle: &str,
    wait: Duration,
) -> Result<varde_bridge::matrix::reader::ReadEvent> {
    eventually(&format!("`{needle}` in {room}"), wait, || async {
        let events = read_room(reader, room).await?;
        Ok(events
            .into_iter()
            .find(|e| body(&e.content).contains(needle)))
    })
    .await
}

/// Sends an event of `event_type` as the reader (encrypted in an
/// encrypted room).
pub async fn send_as(reader: &Reader, room: &str, event_type: &str, content: Value) -> Result<()> {
    let id = varde_bridge::matrix_sdk::ruma::RoomId::parse(room)?;
    reader.sync_once().await?;
    let r = reader
        .client
        .get_room(&id)
        .ok_or_else(|| anyhow::anyhow!("reader does not know {room}"))?;
    r.send_raw(event_type, content).await?;
    Ok(())
}

/// The `body` of an event's content, or "".
pub fn body(content: &Value) -> &str {
    content.get("body").and_then(Value::as_str).unwrap_or("")
}

/// A room made by `owner` with `bot` invited (it joins by itself) and
/// `members` (user id, client) invited and joined. Encrypted when asked.
pub async fn make_room(
    owner: &MatrixUser,
    bot: &str,
    members: &[(String, MatrixUser)],
    encrypted: bool,
) -> Result<String> {
    let mut invite = vec![bot.to_string()];
    invite.extend(members.iter().map(|(id, _)| id.clone()));
    let mut body = json!({ "preset": "private_chat", "invite": invite });
    if encrypted {
        body["initial_state"] = json!([{
            "type": "m.room.encryption",
            "state_key": "",
            "content": { "algorithm": "m.megolm.v1.aes-sha2" }
        }]);
    }
    let room = owner.create_room(body).await?;
    for (_, m) in members {
        m.join(&room).await?;
    }
    Ok(room)
}
