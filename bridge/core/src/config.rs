//! The bridge's configuration file: the shared bus sections (`[identity]`,
//! `[directory]`, `[nats]`, `[consumer]`) plus `[matrix]`, `[delivery]`,
//! `[store]`, `[metrics]` and one `[[rooms]]` table per room. Read through
//! `varde_bus::settings` (TOML + `VARDE_…` environment overrides), then
//! checked into typed values here so that every later step can trust them.
//! Every error names the key (`rooms[2].ceiling`) and the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use varde_bus::settings::{ConsumerSettings, DirectorySettings, IdentitySettings, Loaded};
use varde_bus::transport::NatsSettings;
use varde_schemas::{Audience, GroupId, Kind, OrgId, Tlp};

/// A configuration value that cannot be used, with the key and the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: missing key `{key}` ({hint})")]
    Missing {
        file: PathBuf,
        key: String,
        hint: &'static str,
    },
    #[error("{file}: bad value for `{key}`: {reason}")]
    Invalid {
        file: PathBuf,
        key: String,
        reason: String,
    },
    #[error(transparent)]
    Settings(#[from] varde_bus::settings::SettingsError),
}

/// `[matrix]`: the bot account.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSettings {
    /// Homeserver base URL (`https://matrix.example.org`, or
    /// `http://127.0.0.1:8008` on loopback).
    pub homeserver: Option<String>,
    /// The bot's full user id (`@varde:example.org`).
    pub user: Option<String>,
    /// Password for the first login (and for cross-signing set-up). Prefer
    /// `password_file` or `VARDE_MATRIX__PASSWORD`.
    pub password: Option<String>,
    /// File holding the password (0600).
    pub password_file: Option<PathBuf>,
    /// An access token instead of a password (its device must be `device_id`).
    pub access_token: Option<String>,
    /// The bot's fixed device id: Synapse deduplicates sends by user, device
    /// and transaction id, so a restart on the same device never posts twice.
    pub device_id: Option<String>,
    /// Directory for matrix-sdk's SQLite state and crypto store and the
    /// saved session.
    pub store: Option<PathBuf>,
    /// Passphrase that encrypts the matrix-sdk store at rest.
    pub store_passphrase: Option<String>,
    /// Who may invite the bot into a room besides directory members: full
    /// user ids (`@admin:example.org`) or server names (`example.org`).
    #[serde(default)]
    pub allowed_inviters: Vec<String>,
    /// Display name set on the bot's device at first login.
    pub display_name: Option<String>,
}

/// `[delivery]`: how bus messages are carried into rooms.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Broker redelivery timeout for an un-acked message; the bridge keeps
    /// messages it is still working on alive well within it.
    pub ack_wait: Option<String>,
    /// How long one room may keep failing before its messages are parked
    /// in the bridge's store (and acked on the bus) so that the other rooms
    /// are not held back by the broker's ack window.
    pub park_after: Option<String>,
    /// Bus messages in flight at once (un-acked).
    pub max_in_flight: Option<usize>,
    /// Messages fetched from the broker per pull.
    pub batch: Option<usize>,
}

/// `[store]`: the bridge's own SQLite store.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub path: Option<PathBuf>,
}

/// `[metrics]`: Prometheus `/metrics` and `/healthz`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Loopback address to listen on (`127.0.0.1:9464`); unset: no endpoint.
    pub listen: Option<String>,
}

/// `[rooms.digest]`: fold indicator floods into one message per window.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSettings {
    /// A batch of at least this many indicators goes into the digest, and so
    /// does any batch once this many indicators were posted one by one in
    /// the current window.
    pub threshold: usize,
    /// Length of a digest window (`60s`, `5m`).
    pub window: String,
    /// Values shown in the message; the attached CSV holds all of them.
    #[serde(default)]
    pub sample: Option<usize>,
}

/// `[[rooms]]`: one Matrix room and what it receives.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSettings {
    /// Room id (`!abc:example.org`) or alias (`#soc:example.org`).
    pub room: String,
    /// Short name for logs and metrics; defaults to the id or alias.
    pub name: Option<String>,
    /// Message kinds relayed (default: advisory, alert, indicator,
    /// notification, sighting).
    pub kinds: Option<Vec<String>>,
    /// Only messages addressed to, or (advisories) concerning, one of these
    /// groups; messages without any group or sector still pass.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Label range relayed: `["TLP:CLEAR", "TLP:AMBER"]` (a filter:
    /// messages outside it are not for this room).
    pub labels: Option<Vec<String>>,
    /// The highest label this room may ever show. A message above it that
    /// passes the filters is withheld with a notice.
    pub ceiling: Option<String>,
    /// `en` or `nb`.
    pub language: Option<String>,
    /// Allows TLP:RED (when every member is a named recipient).
    #[serde(default)]
    pub red: bool,
    /// Alerts marked urgent are sent as `m.text` with an `@room` mention.
    #[serde(default)]
    pub urgent_alerts: bool,
    pub digest: Option<DigestSettings>,
    /// Members' messages are shared to the bus: `{ tlp = "TLP:GREEN", to =
    /// "community" }` (or `to = ["gjovik", "group:health"]`).
    pub share: Option<ShareSettings>,
}

/// `[rooms.share]`: a sharing room.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareSettings {
    /// Label of what members say in the room (default TLP:GREEN).
    pub tlp: Option<String>,
    /// `"community"`, or a list of org ids and `group:<group>` names.
    pub to: Option<ShareTo>,
    /// Conversation key: rooms with the same key (on any bridge) see each
    /// other's messages. Default `community`.
    pub conversation: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ShareTo {
    One(String),
    Many(Vec<String>),
}

/// `[commands]`: the `!varde` commands.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSettings {
    /// Command prefix (default `!varde`).
    pub prefix: Option<String>,
    /// Language of answers in rooms not in the configuration (`en`).
    pub language: Option<String>,
}

/// `[sharing]`: limits on what members share.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharingSettings {
    /// Largest file shared from a room, in bytes (default 262144).
    pub max_file_bytes: Option<u64>,
    /// Longest message shared or command read, in bytes (default 16384).
    pub max_text_bytes: Option<usize>,
}

/// `[incidents]`: incident rooms.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSettings {
    /// Users invited to this org's incident rooms.
    #[serde(default)]
    pub responders: Vec<String>,
    /// A room (the CSIRT's) that gets each incident's opening and closing
    /// summary.
    pub report_room: Option<String>,
    /// Language of incident rooms (`en`).
    pub language: Option<String>,
}

/// The whole `varde-bridge` configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSettings {
    #[serde(default)]
    pub identity: IdentitySettings,
    #[serde(default)]
    pub directory: DirectorySettings,
    #[serde(default)]
    pub nats: NatsSettings,
    #[serde(default)]
    pub consumer: ConsumerSettings,
    #[serde(default)]
    pub matrix: MatrixSettings,
    #[serde(default)]
    pub delivery: DeliverySettings,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub rooms: Vec<RoomSettings>,
    #[serde(default)]
    pub commands: CommandSettings,
    #[serde(default)]
    pub sharing: SharingSettings,
    #[serde(default)]
    pub incidents: IncidentSettings,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub log_format: Option<String>,
}

varde_bus::impl_bus_settings!(BridgeSettings);

/// Message language of a room. TLP labels are never translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    En,
    Nb,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Nb => "nb",
        }
    }
}

/// How a room is named in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomRef {
    Id(String),
    Alias(String),
}

impl RoomRef {
    pub fn as_str(&self) -> &str {
        match self {
            RoomRef::Id(s) | RoomRef::Alias(s) => s,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Digest {
    pub threshold: usize,
    pub window: Duration,
    pub sample: usize,
}

/// A room's configuration, checked.
#[derive(Clone, Debug)]
pub struct Room {
    /// Position in the file (`rooms[i]`).
    pub index: usize,
    pub reference: RoomRef,
    pub name: String,
    pub kinds: Vec<Kind>,
    pub groups: Vec<GroupId>,
    pub min_label: Tlp,
    pub max_label: Tlp,
    pub ceiling: Tlp,
    pub language: Language,
    pub red: bool,
    pub urgent_alerts: bool,
    pub digest: Option<Digest>,
    pub share: Option<Share>,
}

/// Where a sharing room's messages go, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub label: Tlp,
    pub audience: Audience,
    pub conversation: String,
}

/// `[commands]`, checked.
#[derive(Clone, Debug)]
pub struct Commands {
    pub prefix: String,
    pub language: Language,
}

/// `[sharing]`, checked.
#[derive(Clone, Copy, Debug)]
pub struct Sharing {
    pub max_file_bytes: u64,
    pub max_text_bytes: usize,
}

/// `[incidents]`, checked.
#[derive(Clone, Debug)]
pub struct Incidents {
    pub responders: Vec<String>,
    pub report_room: Option<RoomRef>,
    pub language: Language,
}

/// The kinds this issue's bridge renders into rooms. `chat`, `ack` and
/// `incident` belong to the room-to-bus side.
pub const DEFAULT_KINDS: [Kind; 6] = [
    Kind::Advisory,
    Kind::Alert,
    Kind::Indicator,
    Kind::Notification,
    Kind::Sighting,
    Kind::Campaign,
];

/// Where the bot logs in.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub homeserver: url::Url,
    pub user: String,
    pub password: Option<String>,
    pub access_token: Option<String>,
    pub device_id: String,
    pub store: PathBuf,
    pub store_passphrase: Option<String>,
    pub allowed_inviters: Vec<String>,
    pub display_name: String,
}

impl Matrix {
    /// The saved session (user, device, access token), 0600.
    pub fn session_file(&self) -> PathBuf {
        self.store.join("session.json")
    }

    /// The server part of the bot's user id.
    pub fn server_name(&self) -> &str {
        self.user.split_once(':').map_or("", |(_, s)| s)
    }
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub ack_wait: Duration,
    pub park_after: Duration,
    pub max_in_flight: usize,
    pub batch: usize,
}

/// Everything the bridge needs beyond the bus sections, checked.
#[derive(Clone, Debug)]
pub struct Checked {
    pub matrix: Matrix,
    pub delivery: Delivery,
    pub store: PathBuf,
    pub metrics: Option<SocketAddr>,
    pub rooms: Vec<Room>,
    pub commands: Commands,
    pub sharing: Sharing,
    pub incidents: Incidents,
}

impl Checked {
    pub fn room_by_ref(&self, r: &str) -> Option<&Room> {
        self.rooms
            .iter()
            .find(|room| room.reference.as_str() == r || room.name == r)
    }
}

fn dur(file: &Path, key: String, s: &str) -> Result<Duration, ConfigError> {
    varde_bus::time::parse_duration(s).map_err(|reason| ConfigError::Invalid {
        file: file.to_path_buf(),
        key,
        reason,
    })
}

/// Reads and checks a bridge configuration file.
pub fn load(file: &Path) -> Result<(Loaded<BridgeSettings>, Checked), ConfigError> {
    let loaded: Loaded<BridgeSettings> = Loaded::read(file)?;
    let checked = check(&loaded)?;
    Ok((loaded, checked))
}

/// Checks the bridge sections of a loaded file.
pub fn check(loaded: &Loaded<BridgeSettings>) -> Result<Checked, ConfigError> {
    let file = loaded.file.as_path();
    let s = &loaded.value;
    let invalid = |key: String, reason: String| ConfigError::Invalid {
        file: file.to_path_buf(),
        key,
        reason,
    };
    let missing = |key: &str, hint: &'static str| ConfigError::Missing {
        file: file.to_path_buf(),
        key: key.to_string(),
        hint,
    };

    let m = &s.matrix;
    let homeserver = m.homeserver.as_deref().ok_or_else(|| {
        missing(
            "matrix.homeserver",
            "the homeserver's base URL, e.g. \"https://matrix.example.org\"",
        )
    })?;
    let homeserver = url::Url::parse(homeserver).map_err(|e| {
        invalid(
            "matrix.homeserver".into(),
            format!("`{homeserver}` is not a URL: {e}"),
        )
    })?;
    if !matches!(homeserver.scheme(), "http" | "https") {
        return Err(invalid(
            "matrix.homeserver".into(),
            "use an http:// or https:// URL".into(),
        ));
    }
    let user = m.user.clone().ok_or_else(|| {
        missing(
            "matrix.user",
            "the bot's full user id, e.g. \"@varde:example.org\"",
        )
    })?;
    if ruma::UserId::parse(&user).is_err() {
        return Err(invalid(
            "matrix.user".into(),
            format!("`{user}` is not a full Matrix user id like @varde:example.org"),
        ));
    }
    let password = match (&m.password, &m.password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(f)) => {
            let path = loaded.path(f);
            varde_bus::keys::check_private(&path)
                .map_err(|e| invalid("matrix.password_file".into(), e.to_string()))?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    "matrix.password_file".into(),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Some(text.trim_end_matches(['\r', '\n']).to_string())
        }
        (None, None) => None,
    };
    let device_id = m.device_id.clone().ok_or_else(|| {
        missing(
            "matrix.device_id",
            "a fixed device id such as \"VARDEBRIDGE\"; restarts reuse it so Synapse can drop repeated sends",
        )
    })?;
    if device_id.is_empty() || device_id.len() > 64 || device_id.contains(char::is_whitespace) {
        return Err(invalid(
            "matrix.device_id".into(),
            "use 1-64 characters without spaces".into(),
        ));
    }
    let store_dir = loaded.path(m.store.as_deref().unwrap_or(Path::new("state/matrix")));
    for (i, who) in m.allowed_inviters.iter().enumerate() {
        let ok = if who.starts_with('@') {
            ruma::UserId::parse(who).is_ok()
        } else {
            ruma::ServerName::parse(who).is_ok()
        };
        if !ok {
            return Err(invalid(
                format!("matrix.allowed_inviters[{i}]"),
                format!("`{who}` is neither a user id (@user:server) nor a server name"),
            ));
        }
    }
    let matrix = Matrix {
        homeserver,
        user,
        password,
        access_token: m.access_token.clone(),
        device_id,
        store: store_dir,
        store_passphrase: m.store_passphrase.clone(),
        allowed_inviters: m.allowed_inviters.clone(),
        display_name: m.display_name.clone().unwrap_or_else(|| "Varde".into()),
    };
    if matrix.password.is_none() && matrix.access_token.is_none() && !matrix.session_file().exists()
    {
        return Err(missing(
            "matrix.password",
            "a password (or password_file, or access_token) for the first login",
        ));
    }

    let d = &s.delivery;
    let delivery = Delivery {
        ack_wait: dur(
            file,
            "delivery.ack_wait".into(),
            d.ack_wait.as_deref().unwrap_or("30s"),
        )?,
        park_after: dur(
            file,
            "delivery.park_after".into(),
            d.park_after.as_deref().unwrap_or("2m"),
        )?,
        max_in_flight: d.max_in_flight.unwrap_or(256),
        batch: d.batch.unwrap_or(64),
    };
    if delivery.ack_wait < Duration::from_secs(3) {
        return Err(invalid(
            "delivery.ack_wait".into(),
            "must be at least 3s".into(),
        ));
    }
    if delivery.max_in_flight == 0 || delivery.batch == 0 {
        return Err(invalid(
            "delivery.max_in_flight".into(),
            "max_in_flight and batch must be at least 1".into(),
        ));
    }

    let metrics = match &s.metrics.listen {
        None => None,
        Some(a) => {
            let addr: SocketAddr = a.parse().map_err(|e| {
                invalid(
                    "metrics.listen".into(),
                    format!("`{a}` is not an address like 127.0.0.1:9464: {e}"),
                )
            })?;
            if !addr.ip().is_loopback() {
                return Err(invalid(
                    "metrics.listen".into(),
                    format!(
                        "{addr} is not a loopback address; expose metrics through a reverse proxy"
                    ),
                ));
            }
            Some(addr)
        }
    };

    let mut rooms = Vec::with_capacity(s.rooms.len());
    for (i, r) in s.rooms.iter().enumerate() {
        rooms.push(check_room(file, i, r)?);
    }
    for (i, a) in rooms.iter().enumerate() {
        if let Some(b) = rooms[..i].iter().find(|b| b.reference == a.reference) {
            return Err(invalid(
                format!("rooms[{i}].room"),
                format!(
                    "`{}` is configured twice (also rooms[{}])",
                    a.reference.as_str(),
                    b.index
                ),
            ));
        }
    }

    let prefix = s.commands.prefix.clone().unwrap_or_else(|| "!varde".into());
    if prefix.trim().is_empty() || prefix.contains(char::is_whitespace) {
        return Err(invalid(
            "commands.prefix".into(),
            "use a word without spaces, e.g. \"!varde\"".into(),
        ));
    }
    let commands = Commands {
        prefix,
        language: language(file, "commands.language", s.commands.language.as_deref())?,
    };
    let sharing = Sharing {
        max_file_bytes: s.sharing.max_file_bytes.unwrap_or(256 * 1024),
        max_text_bytes: s.sharing.max_text_bytes.unwrap_or(16 * 1024),
    };
    // An envelope is at most 1 MiB; base64 and the rest must fit.
    if sharing.max_file_bytes > 600 * 1024 {
        return Err(invalid(
            "sharing.max_file_bytes".into(),
            "at most 614400 (files travel inside one envelope of at most 1 MiB)".into(),
        ));
    }
    for (i, r) in s.incidents.responders.iter().enumerate() {
        if ruma::UserId::parse(r).is_err() {
            return Err(invalid(
                format!("incidents.responders[{i}]"),
                format!("`{r}` is not a full Matrix user id like @kari:example.org"),
            ));
        }
    }
    let report_room = match &s.incidents.report_room {
        None => None,
        Some(r) => {
            Some(room_ref(r).map_err(|reason| invalid("incidents.report_room".into(), reason))?)
        }
    };
    let incidents = Incidents {
        responders: s.incidents.responders.clone(),
        report_room,
        language: language(file, "incidents.language", s.incidents.language.as_deref())?,
    };

    Ok(Checked {
        commands,
        sharing,
        incidents,
        matrix,
        delivery,
        store: loaded.path(
            s.store
                .path
                .as_deref()
                .unwrap_or(Path::new("state/bridge.sqlite3")),
        ),
        metrics,
        rooms,
    })
}

fn room_ref(r: &str) -> Result<RoomRef, String> {
    if r.starts_with('!') {
        ruma::RoomId::parse(r).map_err(|e| format!("`{r}` is not a room id: {e}"))?;
        Ok(RoomRef::Id(r.to_string()))
    } else if r.starts_with('#') {
        ruma::RoomAliasId::parse(r).map_err(|e| format!("`{r}` is not a room alias: {e}"))?;
        Ok(RoomRef::Alias(r.to_string()))
    } else {
        Err(format!(
            "`{r}` is neither a room id (!id:server) nor an alias (#name:server)"
        ))
    }
}

fn language(file: &Path, key: &str, value: Option<&str>) -> Result<Language, ConfigError> {
    match value {
        None | Some("en") => Ok(Language::En),
        Some("nb") | Some("no") => Ok(Language::Nb),
        Some(other) => Err(ConfigError::Invalid {
            file: file.to_path_buf(),
            key: key.to_string(),
            reason: format!("`{other}` is not supported; use \"en\" or \"nb\""),
        }),
    }
}

/// An audience from names: `community`, org ids and `group:<group>`.
pub fn audience_of(names: &[String]) -> Result<Audience, String> {
    let mut audience = Audience::default();
    for n in names {
        if n == "community" {
            audience.community = true;
        } else if let Some(g) = n.strip_prefix("group:") {
            audience
                .groups
                .push(GroupId::new(g).map_err(|e| e.to_string())?);
        } else {
            audience
                .orgs
                .push(OrgId::new(n.as_str()).map_err(|e| e.to_string())?);
        }
    }
    Ok(audience)
}

/// A share's audience from its `to`, checked against its label's rules.
fn share_of(s: &ShareSettings) -> Result<Share, (&'static str, String)> {
    let label = match &s.tlp {
        None => Tlp::Green,
        Some(t) => t.parse::<Tlp>().map_err(|e| ("tlp", e.to_string()))?,
    };
    let names: Vec<String> = match &s.to {
        None => vec!["community".into()],
        Some(ShareTo::One(one)) => vec![one.clone()],
        Some(ShareTo::Many(many)) => many.clone(),
    };
    let audience = audience_of(&names).map_err(|e| ("to", e))?;
    if label == Tlp::Red {
        return Err((
            "tlp",
            "a room cannot share TLP:RED; RED goes to named people only".into(),
        ));
    }
    varde_bus::audience::check(label, &audience).map_err(|e| ("to", e.to_string()))?;
    let conversation = s.conversation.clone().unwrap_or_else(|| "community".into());
    if conversation.is_empty() || conversation.starts_with("incident:") {
        return Err((
            "conversation",
            "use a non-empty name that does not start with `incident:`".into(),
        ));
    }
    Ok(Share {
        label,
        audience,
        conversation,
    })
}

fn check_room(file: &Path, i: usize, r: &RoomSettings) -> Result<Room, ConfigError> {
    let invalid = |key: &str, reason: String| ConfigError::Invalid {
        file: file.to_path_buf(),
        key: format!("rooms[{i}].{key}"),
        reason,
    };
    let reference = if r.room.starts_with('!') {
        ruma::RoomId::parse(&r.room)
            .map_err(|e| invalid("room", format!("`{}` is not a room id: {e}", r.room)))?;
        RoomRef::Id(r.room.clone())
    } else if r.room.starts_with('#') {
        ruma::RoomAliasId::parse(&r.room)
            .map_err(|e| invalid("room", format!("`{}` is not a room alias: {e}", r.room)))?;
        RoomRef::Alias(r.room.clone())
    } else {
        return Err(invalid(
            "room",
            format!(
                "`{}` is neither a room id (!id:server) nor an alias (#name:server)",
                r.room
            ),
        ));
    };
    let kinds = match &r.kinds {
        None => DEFAULT_KINDS.to_vec(),
        Some(list) => list
            .iter()
            .map(|k| {
                k.parse::<Kind>()
                    .map_err(|e| invalid("kinds", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let groups = r
        .groups
        .iter()
        .map(|g| GroupId::new(g.as_str()).map_err(|e| invalid("groups", e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let label = |key: &str, s: &str| s.parse::<Tlp>().map_err(|e| invalid(key, e.to_string()));
    let ceiling = match &r.ceiling {
        Some(c) => label("ceiling", c)?,
        // A room is GREEN unless its operator says more; RED is opt-in.
        None => Tlp::Green,
    };
    let (min_label, max_label) = match r.labels.as_deref() {
        // No filter: everything the bridge reads is for the room, and what
        // the room may not show is withheld with a notice.
        None => (Tlp::Clear, Tlp::Red),
        Some([min, max]) => (label("labels", min)?, label("labels", max)?),
        Some(_) => {
            return Err(invalid(
                "labels",
                "give the range as two labels, e.g. [\"TLP:CLEAR\", \"TLP:AMBER\"]".into(),
            ));
        }
    };
    if min_label > max_label {
        return Err(invalid(
            "labels",
            format!("{min_label} is above {max_label}; write the lower label first"),
        ));
    }
    if ceiling == Tlp::Red && !r.red {
        return Err(invalid(
            "ceiling",
            "a TLP:RED ceiling needs `red = true` on the room".into(),
        ));
    }
    let language = match r.language.as_deref() {
        None | Some("en") => Language::En,
        Some("nb") | Some("no") => Language::Nb,
        Some(other) => {
            return Err(invalid(
                "language",
                format!("`{other}` is not supported; use \"en\" or \"nb\""),
            ));
        }
    };
    let digest = match &r.digest {
        None => None,
        Some(d) => {
            if d.threshold == 0 {
                return Err(invalid("digest.threshold", "must be at least 1".into()));
            }
            Some(Digest {
                threshold: d.threshold,
                window: dur(file, format!("rooms[{i}].digest.window"), &d.window)?,
                sample: d.sample.unwrap_or(20),
            })
        }
    };
    let share = match &r.share {
        None => None,
        Some(sh) => {
            Some(share_of(sh).map_err(|(key, reason)| invalid(&format!("share.{key}"), reason))?)
        }
    };
    if let Some(sh) = &share
        && sh.label > ceiling
    {
        return Err(invalid(
            "share.tlp",
            format!(
                "{} is above the room's ceiling {ceiling}: the room would share what it may not show",
                sh.label
            ),
        ));
    }
    Ok(Room {
        share,
        index: i,
        name: r.name.clone().unwrap_or_else(|| r.room.clone()),
        reference,
        kinds,
        groups,
        min_label,
        max_label,
        ceiling,
        language,
        red: r.red,
        urgent_alerts: r.urgent_alerts,
        digest,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("bridge.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str = r#"
[matrix]
homeserver = "http://127.0.0.1:8008"
user = "@varde:example.org"
password = "x"
device_id = "VARDEBRIDGE"
"#;

    #[test]
    fn reads_rooms() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            &format!(
                "{BASE}\n[[rooms]]\nroom = \"!a:example.org\"\nceiling = \"TLP:AMBER\"\nlanguage = \"nb\"\nkinds = [\"advisory\"]\n[rooms.digest]\nthreshold = 10\nwindow = \"30s\"\n\n[[rooms]]\nroom = \"#soc:example.org\"\n"
            ),
        );
        let (_, c) = load(&p).unwrap();
        assert_eq!(c.rooms.len(), 2);
        let a = &c.rooms[0];
        assert_eq!(a.ceiling, Tlp::Amber);
        assert_eq!((a.min_label, a.max_label), (Tlp::Clear, Tlp::Red));
        assert_eq!(a.language, Language::Nb);
        assert_eq!(a.kinds, vec![Kind::Advisory]);
        assert_eq!(a.digest.as_ref().unwrap().window, Duration::from_secs(30));
        let b = &c.rooms[1];
        assert_eq!(b.reference, RoomRef::Alias("#soc:example.org".into()));
        assert_eq!(b.ceiling, Tlp::Green);
        assert_eq!(c.delivery.ack_wait, Duration::from_secs(30));
    }

    #[test]
    fn errors_name_key_and_file() {
        let d = tempfile::tempdir().unwrap();
        for (extra, key) in [
            ("[[rooms]]\nroom = \"soc\"\n", "rooms[0].room"),
            (
                "[[rooms]]\nroom = \"!a:b\"\nceiling = \"TLP:PURPLE\"\n",
                "rooms[0].ceiling",
            ),
            (
                "[[rooms]]\nroom = \"!a:b\"\nceiling = \"TLP:RED\"\n",
                "rooms[0].ceiling",
            ),
            (
                "[[rooms]]\nroom = \"!a:b\"\nlanguage = \"sv\"\n",
                "rooms[0].language",
            ),
            (
                "[[rooms]]\nroom = \"!a:b\"\nlabels = [\"TLP:AMBER\", \"TLP:GREEN\"]\n",
                "rooms[0].labels",
            ),
            (
                "[[rooms]]\nroom = \"!a:b\"\n[rooms.digest]\nthreshold = 5\nwindow = \"soon\"\n",
                "rooms[0].digest.window",
            ),
            ("[metrics]\nlisten = \"0.0.0.0:9464\"\n", "metrics.listen"),
            (
                "[[rooms]]\nroom = \"!a:b\"\n[[rooms]]\nroom = \"!a:b\"\n",
                "rooms[1].room",
            ),
        ] {
            let p = write(d.path(), &format!("{BASE}\n{extra}"));
            let e = load(&p).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("bridge.toml"), "{key}: {e}");
        }
        let p = write(d.path(), "[matrix]\nuser = \"@a:b\"\n");
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("matrix.homeserver"), "{e}");
        let p = write(d.path(), &format!("{BASE}\n[[rooms]]\nroomz = \"!a:b\"\n"));
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("roomz"), "{e}");
    }
}
