//! Two organisations, two homeservers that do not federate (the dev
//! policy's empty `federation_domain_whitelist`), one bus: `gjovik`'s bridge
//! on homeserver A, `lillehammer`'s on homeserver B. Everything that goes
//! from one homeserver to the other goes through the bus.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tempfile::TempDir;
use varde_bridge::matrix::reader::Reader;
use varde_bus::keys::{self, Identity, encode_verifying_key};
use varde_schemas::directory::KeyRole;
use varde_testkit::synthetic::Synthetic;

use crate::{BusFixture, MatrixUser, RegisteredUser, Synapse};
use varde_testkit::process::keep_dir_if_asked;

/// (homeserver, name, org): `a` or `b`; `stranger` is in no org, `eve` is
/// in `innlandet-fk` (foreign to gjovik).
pub const PEOPLE: [(&str, &str, Option<&str>); 5] = [
    ("a", "kari", Some("gjovik")),
    ("a", "ola", Some("gjovik")),
    ("a", "eve", Some("innlandet-fk")),
    ("a", "stranger", None),
    ("b", "lars", Some("lillehammer")),
];

pub fn password(name: &str) -> String {
    format!("pw-{name}-varde-pair")
}

/// One side: a homeserver, its bot and its org's bridge key.
pub struct Side {
    pub synapse: Synapse,
    pub org: &'static str,
    pub bot: RegisteredUser,
    pub bridge: std::sync::Arc<Identity>,
    pub users: BTreeMap<&'static str, RegisteredUser>,
}

pub struct Pair {
    pub a: Side,
    pub b: Side,
    pub bus: BusFixture,
    pub dir: TempDir,
}

impl Pair {
    pub async fn start() -> Result<Pair> {
        let (sa, sb) = tokio::try_join!(Synapse::start(), Synapse::start())?;
        let mut world = Synthetic::demo();
        let mut sides = Vec::new();
        for (synapse, hs, org) in [(sa, "a", "gjovik"), (sb, "b", "lillehammer")] {
            let bot = synapse.register("varde", &password("varde")).await?;
            let mut users = BTreeMap::new();
            for (h, name, user_org) in PEOPLE {
                if h != hs {
                    continue;
                }
                let u = synapse.register(name, &password(name)).await?;
                if let Some(o) = user_org
                    && let Some(o) = world.org_mut(o)
                {
                    o.matrix.users.push(u.user_id.clone());
                }
                users.insert(name, u);
            }
            let bridge = world.add_key(org, KeyRole::Bridge, "bridge");
            sides.push(Side {
                synapse,
                org,
                bot,
                bridge,
                users,
            });
        }
        let bus = BusFixture::with(world).await?;
        let mut dir = tempfile::Builder::new()
            .prefix("varde-pair-test-")
            .tempdir()?;
        keep_dir_if_asked(&mut dir);
        let b = sides.pop().context("side b")?;
        let a = sides.pop().context("side a")?;
        let pair = Pair { a, b, bus, dir };
        for side in [&pair.a, &pair.b] {
            let d = pair.side_dir(side);
            std::fs::create_dir_all(d.join("keys"))?;
            keys::write_private(
                &d.join("keys/bridge.age"),
                keys::age_identity_file(&side.bridge.age).as_bytes(),
            )?;
            keys::write_private(
                &d.join("keys/bridge.sign"),
                keys::signing_key_file(&side.bridge.signing, "test bridge").as_bytes(),
            )?;
            std::fs::write(d.join("directory.json"), pair.bus.world.signed()?)?;
        }
        Ok(pair)
    }

    pub fn side_dir(&self, side: &Side) -> PathBuf {
        self.dir.path().join(side.org)
    }

    pub fn side(&self, name: &str) -> &Side {
        if self.a.users.contains_key(name) {
            &self.a
        } else {
            &self.b
        }
    }

    pub fn user(&self, name: &str) -> Result<MatrixUser> {
        let side = self.side(name);
        let u = side
            .users
            .get(name)
            .with_context(|| format!("no test user {name}"))?;
        side.synapse.user(u)
    }

    pub fn user_id(&self, name: &str) -> String {
        self.side(name)
            .users
            .get(name)
            .map(|u| u.user_id.clone())
            .unwrap_or_default()
    }

    /// `name` with end-to-end encryption on a cross-signed device.
    pub async fn reader(&self, name: &str) -> Result<Reader> {
        let side = self.side(name);
        let u = side
            .users
            .get(name)
            .with_context(|| format!("no test user {name}"))?;
        Reader::login(
            &side.synapse.base_url(),
            &u.user_id,
            &password(name),
            &self.dir.path().join(format!("readers/{name}")),
            "PAIRREADER",
        )
        .await
    }

    /// A room on `owner`'s homeserver with `members` joined and the bot
    /// invited.
    pub async fn room(&self, owner: &str, members: &[&str], encrypted: bool) -> Result<String> {
        let mut joiners = Vec::new();
        for m in members {
            joiners.push((self.user_id(m), self.user(m)?));
        }
        let bot = &self.side(owner).bot.user_id;
        crate::bridge::make_room(&self.user(owner)?, bot, &joiners, encrypted).await
    }

    /// Sets a user's display name.
    pub async fn display_name(&self, name: &str, display: &str) -> Result<()> {
        let u = self.user(name)?;
        let id = self.user_id(name);
        u.request(
            reqwest::Method::PUT,
            &["profile", &id, "displayname"],
            &[],
            Some(&json!({ "displayname": display })),
        )
        .await?;
        Ok(())
    }

    /// Writes side's bridge configuration; returns its path.
    pub fn config(&self, side: &Side, rooms: &str, extra: &str) -> Result<PathBuf> {
        let text = format!(
            "[identity]\norg = \"{org}\"\nage = \"keys/bridge.age\"\nsigning = \"keys/bridge.sign\"\n\n\
             [directory]\nroot_keys = [\"{root}\"]\nfile = \"directory.json\"\nstate = \"state/directory.json\"\n\n\
             [nats]\nurl = \"{nats}\"\n\n\
             [matrix]\nhomeserver = \"{hs}\"\nuser = \"{user}\"\npassword = \"{pw}\"\ndevice_id = \"VARDEPAIR\"\nstore = \"state/matrix\"\n\n\
             [store]\npath = \"state/bridge.sqlite3\"\n\n{extra}\n{rooms}\n",
            org = side.org,
            root = encode_verifying_key(&self.bus.world.root.verifying_key()),
            nats = self.bus.nats.url(),
            hs = side.synapse.base_url(),
            user = side.bot.user_id,
            pw = password("varde"),
        );
        let path = self.side_dir(side).join("bridge.toml");
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// A `varde` CLI configuration for `org`'s own org key (the CSIRT
    /// reading what reached it).
    pub fn cli_config(&self, org: &str) -> Result<PathBuf> {
        let d = self.dir.path().join(format!("cli-{org}"));
        std::fs::create_dir_all(&d)?;
        let id = self.bus.identity(org);
        keys::write_private(
            &d.join("org.age"),
            keys::age_identity_file(&id.age).as_bytes(),
        )?;
        keys::write_private(
            &d.join("org.sign"),
            keys::signing_key_file(&id.signing, "org").as_bytes(),
        )?;
        std::fs::write(d.join("directory.json"), self.bus.world.signed()?)?;
        let text = format!(
            "[identity]\norg = \"{org}\"\nage = \"org.age\"\nsigning = \"org.sign\"\n\n\
             [directory]\nroot_keys = [\"{root}\"]\nfile = \"directory.json\"\nstate = \"state/directory.json\"\n\n\
             [nats]\nurl = \"{nats}\"\n",
            root = encode_verifying_key(&self.bus.world.root.verifying_key()),
            nats = self.bus.nats.url(),
        );
        let path = d.join("varde.toml");
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// Uploads `data` to `side`'s media repository as `user`; returns the
/// `mxc://` URI.
pub async fn upload(side: &Side, user: &str, name: &str, data: Vec<u8>) -> Result<String> {
    let u = side.users.get(user).context("no such user")?;
    let url = format!(
        "{}/_matrix/media/v3/upload?filename={name}",
        side.synapse.base_url()
    );
    let r: Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(&u.access_token)
        .header("Content-Type", "application/octet-stream")
        .body(data)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    r.get("content_uri")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("no content_uri")
}

/// Every event of a room (plain API), oldest first.
pub async fn all_events(user: &MatrixUser, room: &str) -> Result<Vec<Value>> {
    let mut events = user.messages(room, 1000).await?;
    events.sort_by_key(|e| e.get("origin_server_ts").and_then(Value::as_i64));
    Ok(events)
}
