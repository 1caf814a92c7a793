//! `[hub]` in the varde.toml: state, noise filters, routing policy and the
//! sources `varde hub run` keeps polling. Unknown keys are refused, so a
//! typo never silently turns a filter off.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use varde_bus::settings::{ConsumerSettings, DirectorySettings, IdentitySettings};
use varde_bus::transport::{NatsSettings, StreamSettings};
use varde_schemas::payload::{IndicatorType, Severity};
use varde_schemas::{GroupId, Tlp};

/// `varde.toml`, the file of the `varde` CLI and the hub: the core's
/// sections (identity, directory, NATS, stream, consumer) and `[hub]`. It
/// lives here, not in the CLI, so that the fuzz targets read the file
/// exactly as `varde` does without building the CLI and its benches.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VardeToml {
    #[serde(default)]
    pub identity: IdentitySettings,
    #[serde(default)]
    pub directory: DirectorySettings,
    #[serde(default)]
    pub nats: NatsSettings,
    #[serde(default)]
    pub stream: StreamSettings,
    #[serde(default)]
    pub consumer: ConsumerSettings,
    /// Hub settings (`varde ingest`, `varde hub run`, `varde export`).
    #[serde(default)]
    pub hub: HubSettings,
    /// Log format: `text` (default) or `json`.
    #[serde(default)]
    pub log_format: Option<String>,
}

varde_bus::impl_bus_settings!(VardeToml);

/// `[hub]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSettings {
    /// Where the dedup store, sighting counts and per-source positions live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// A value seen again within this window is a duplicate (`7d`).
    #[serde(default = "default_dedup_window", deserialize_with = "duration")]
    pub dedup_window: Duration,
    /// Label of records whose source carries none (a MISP event without a
    /// `tlp:` tag, a CSV file).
    #[serde(default = "default_tlp", deserialize_with = "tlp")]
    pub default_tlp: Tlp,
    /// Folders or files of MISP warninglists (JSON); empty means the
    /// shipped defaults in `deploy/hub/warninglists/` when present.
    #[serde(default)]
    pub warninglists: Vec<PathBuf>,
    /// Largest single input file or event accepted; a bigger one is
    /// counted as invalid, never read into memory.
    #[serde(default = "default_max_input_mib")]
    pub max_input_mib: u64,
    /// Indicators per community batch envelope (at most 5,000).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Audience of TLP:AMBER batches that match no owner: these groups
    /// (empty: every group in the directory). AMBER cannot go to the
    /// community as such.
    #[serde(default)]
    pub amber_groups: Vec<GroupId>,
    /// MISP attributes with `to_ids = false` are context, not detections;
    /// skipped unless this is false.
    #[serde(default = "yes")]
    pub misp_to_ids_only: bool,
    /// Distinct member orgs that must report a value before its count is
    /// published to the community.
    #[serde(default = "default_sighting_threshold")]
    pub sighting_threshold: u32,
    /// Window over which sightings are counted (`24h`).
    #[serde(default = "default_sighting_window", deserialize_with = "duration")]
    pub sighting_window: Duration,
    /// Durable consumer of the hub's inbox (sightings).
    #[serde(default)]
    pub durable: Option<String>,
    /// How often the campaign desk looks for reminders due (`30s`).
    #[serde(default = "default_campaign_tick", deserialize_with = "duration")]
    pub campaign_tick: Duration,
    /// `[hub.auto_campaign]`: open a campaign for every advisory of at
    /// least this severity that matched orgs' assets, targeting those orgs.
    /// Absent: campaigns are opened by hand only.
    #[serde(default)]
    pub auto_campaign: Option<AutoCampaign>,
    /// Sources for `varde hub run`.
    #[serde(default)]
    pub sources: Vec<SourceSettings>,
}

/// `[hub.auto_campaign]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoCampaign {
    /// `high` opens campaigns for high and critical advisories.
    pub min_severity: Severity,
    /// From the advisory's ingest (`7d`).
    #[serde(default = "default_auto_deadline", deserialize_with = "duration")]
    pub deadline: Duration,
    /// Reminders to orgs without an answer (`1d`).
    #[serde(default = "default_auto_remind", deserialize_with = "duration")]
    pub remind_every: Duration,
}

fn default_auto_deadline() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_auto_remind() -> Duration {
    Duration::from_secs(86_400)
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            state_dir: default_state_dir(),
            dedup_window: default_dedup_window(),
            default_tlp: default_tlp(),
            warninglists: Vec::new(),
            max_input_mib: default_max_input_mib(),
            batch_size: default_batch_size(),
            amber_groups: Vec::new(),
            misp_to_ids_only: true,
            sighting_threshold: default_sighting_threshold(),
            sighting_window: default_sighting_window(),
            durable: None,
            campaign_tick: default_campaign_tick(),
            auto_campaign: None,
            sources: Vec::new(),
        }
    }
}

impl HubSettings {
    /// The campaign desk's store (campaigns, targets, statuses).
    pub fn campaign_store(&self) -> std::path::PathBuf {
        self.state_dir.join("campaigns.sqlite")
    }

    pub fn max_input_bytes(&self) -> u64 {
        self.max_input_mib.saturating_mul(1 << 20)
    }
}

/// What a source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// MISP feed: folder or http(s) URL with manifest.json and <uuid>.json.
    Misp,
    /// STIX 2.1 bundle (file, folder of bundles, or URL).
    Stix,
    /// CSV with a column mapping.
    Csv,
    /// Plain list, one value per line (`#` comments).
    List,
    /// Varde advisory JSON (schemas/json/advisory.schema.json).
    Advisory,
}

impl SourceKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::Misp => "misp",
            SourceKind::Stix => "stix",
            SourceKind::Csv => "csv",
            SourceKind::List => "list",
            SourceKind::Advisory => "advisory",
        }
    }
}

/// `[[hub.sources]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// Short name, used as the `source` of what it produces (`circl-osint`).
    pub name: String,
    pub kind: SourceKind,
    /// Path (file or folder) or http(s) URL.
    pub location: String,
    /// Poll every so often (`1h`).
    #[serde(default, deserialize_with = "opt_duration")]
    pub every: Option<Duration>,
    /// Treat `location` as a drop folder: ingest each new or changed file.
    #[serde(default)]
    pub watch: bool,
    /// Label for records without one (overrides `hub.default_tlp`).
    #[serde(default, deserialize_with = "opt_tlp")]
    pub tlp: Option<Tlp>,
    /// CSV columns in order: `type`, `value`, `first_seen`, `last_seen`,
    /// `comment`, `tlp`, `tags` or `-` to ignore one.
    #[serde(default)]
    pub columns: Vec<String>,
    /// CSV/list: the indicator type when there is no `type` column
    /// (otherwise guessed per value).
    #[serde(default, rename = "type", deserialize_with = "opt_indicator_type")]
    pub indicator_type: Option<IndicatorType>,
    /// CSV delimiter (one character, default `,`).
    #[serde(default)]
    pub delimiter: Option<char>,
    /// CSV: the first row is a header.
    #[serde(default)]
    pub header: bool,
}

fn yes() -> bool {
    true
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("state/hub")
}
fn default_dedup_window() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_tlp() -> Tlp {
    Tlp::Amber
}
fn default_max_input_mib() -> u64 {
    32
}
fn default_batch_size() -> usize {
    varde_schemas::payload::MAX_INDICATORS
}
fn default_sighting_threshold() -> u32 {
    3
}
fn default_campaign_tick() -> Duration {
    Duration::from_secs(30)
}
fn default_sighting_window() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    varde_bus::time::parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn tlp<'de, D: Deserializer<'de>>(d: D) -> Result<Tlp, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn opt_tlp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tlp>, D::Error> {
    tlp(d).map(Some)
}

fn opt_indicator_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IndicatorType>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use varde_bus::settings::Loaded;

    fn read(text: &str) -> Result<Loaded<super::VardeToml>, String> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("varde.toml");
        std::fs::write(&p, text).unwrap();
        Loaded::<super::VardeToml>::read(&p).map_err(|e| e.to_string())
    }

    #[test]
    fn hub_table_is_typed_and_errors_name_key_and_file() {
        let l = read(
            "[hub]\nstate_dir = \"/var/lib/varde/hub\"\ndedup_window = \"3d\"\ndefault_tlp = \"TLP:GREEN\"\n\
             amber_groups = [\"admin\", \"health\"]\n\n\
             [[hub.sources]]\nname = \"circl\"\nkind = \"misp\"\nlocation = \"https://feed.example/misp/\"\nevery = \"1h\"\n\n\
             [[hub.sources]]\nname = \"drop\"\nkind = \"csv\"\nlocation = \"incoming\"\nwatch = true\ncolumns = [\"type\", \"value\"]\ntype = \"ipv4\"\n",
        )
        .unwrap();
        let h = &l.value.hub;
        assert_eq!(h.dedup_window, std::time::Duration::from_secs(3 * 86400));
        assert_eq!(h.default_tlp, varde_schemas::Tlp::Green);
        assert_eq!(h.sources.len(), 2);
        assert_eq!(
            h.sources[0].every,
            Some(std::time::Duration::from_secs(3600))
        );
        assert!(h.sources[1].watch);
        assert_eq!(
            h.sources[1].indicator_type,
            Some(varde_schemas::payload::IndicatorType::Ipv4)
        );
        // defaults
        let l = read("").unwrap();
        assert_eq!(
            l.value.hub.dedup_window,
            std::time::Duration::from_secs(7 * 86400)
        );
        assert_eq!(l.value.hub.sighting_threshold, 3);

        for (text, key) in [
            ("[hub]\ndedup_windw = \"7d\"\n", "dedup_windw"),
            ("[hub]\ndedup_window = \"a week\"\n", "a week"),
            ("[hub]\ndefault_tlp = \"purple\"\n", "purple"),
            (
                "[[hub.sources]]\nname = \"x\"\nkind = \"rss\"\nlocation = \"y\"\n",
                "rss",
            ),
            (
                "[[hub.sources]]\nname = \"x\"\nkind = \"csv\"\nlocation = \"y\"\ncolumnz = []\n",
                "columnz",
            ),
        ] {
            let e = read(text)
                .err()
                .unwrap_or_else(|| panic!("{text} should be refused"));
            assert!(e.contains("varde.toml") && e.contains(key), "{text}: {e}");
            assert!(e.contains("hub"), "the error should name the hub key: {e}");
        }
    }
}
