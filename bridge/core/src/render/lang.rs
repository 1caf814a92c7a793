//! Message templates' words in English and Norwegian Bokmål. TLP labels,
//! ids, CVEs and product names are never translated.

use varde_schemas::Kind;
use varde_schemas::payload::Severity;

use crate::config::Language;
use crate::policy::Violation;

/// Fixed words of one language.
pub struct Strings {
    pub advisory: &'static str,
    pub revision: &'static str,
    pub severity: &'static str,
    pub cves: &'static str,
    pub affected: &'static str,
    pub actions: &'static str,
    pub references: &'static str,
    pub sectors: &'static str,
    pub you_run: &'static str,
    pub from: &'static str,
    pub alert: &'static str,
    pub indicators: &'static str,
    pub source: &'static str,
    pub digest: &'static str,
    pub csv_note: &'static str,
    pub notification: &'static str,
    pub indicator: &'static str,
    pub matched: &'static str,
    pub first_seen: &'static str,
    pub last_seen: &'static str,
    pub sighting: &'static str,
    pub seen_at: &'static str,
    pub note: &'static str,
    pub withheld_title: &'static str,
    pub withheld_no_content: &'static str,
    pub withheld_release: &'static str,
    pub updated: &'static str,
    pub changes: &'static str,
    pub by_type: &'static str,
    pub more: &'static str,
}

const EN: Strings = Strings {
    advisory: "Advisory",
    revision: "revision",
    severity: "Severity",
    cves: "CVEs",
    affected: "Affected",
    actions: "Recommended actions",
    references: "References",
    sectors: "Sectors",
    you_run: "Matched your assets",
    from: "From",
    alert: "Alert",
    indicators: "Indicators",
    source: "Source",
    digest: "Indicator digest",
    csv_note: "All values are in the attached CSV file.",
    notification: "Finding in your constituency",
    indicator: "Indicator",
    matched: "Matched",
    first_seen: "First seen",
    last_seen: "Last seen",
    sighting: "Sighting",
    seen_at: "seen at",
    note: "Note",
    withheld_title: "Message withheld",
    withheld_no_content: "Its content was not posted here.",
    withheld_release: "Once the room complies, an operator can post it with",
    updated: "Updated to revision",
    changes: "What changed",
    by_type: "By type",
    more: "more",
};

const NB: Strings = Strings {
    advisory: "Sikkerhetsvarsel",
    revision: "revisjon",
    severity: "Alvorlighetsgrad",
    cves: "CVE-er",
    affected: "Berørte produkter",
    actions: "Anbefalte tiltak",
    references: "Referanser",
    sectors: "Sektorer",
    you_run: "Treff i deres systemer",
    from: "Fra",
    alert: "Hastevarsel",
    indicators: "Indikatorer",
    source: "Kilde",
    digest: "Sammendrag av indikatorer",
    csv_note: "Alle verdiene ligger i vedlagt CSV-fil.",
    notification: "Funn i deres virksomhet",
    indicator: "Indikator",
    matched: "Treff på",
    first_seen: "Først sett",
    last_seen: "Sist sett",
    sighting: "Observasjon",
    seen_at: "sett",
    note: "Merknad",
    withheld_title: "Melding holdt tilbake",
    withheld_no_content: "Innholdet er ikke lagt ut her.",
    withheld_release: "Når rommet oppfyller kravene, kan en operatør legge den ut med",
    updated: "Oppdatert til revisjon",
    changes: "Endringer",
    by_type: "Etter type",
    more: "til",
};

pub fn strings(lang: Language) -> &'static Strings {
    match lang {
        Language::En => &EN,
        Language::Nb => &NB,
    }
}

pub fn severity(lang: Language, s: Severity) -> &'static str {
    match (lang, s) {
        (Language::En, s) => s.as_str(),
        (Language::Nb, Severity::Info) => "info",
        (Language::Nb, Severity::Low) => "lav",
        (Language::Nb, Severity::Medium) => "middels",
        (Language::Nb, Severity::High) => "høy",
        (Language::Nb, Severity::Critical) => "kritisk",
    }
}

/// A kind as a noun ("an advisory").
pub fn kind(lang: Language, k: Kind) -> &'static str {
    match (lang, k) {
        (Language::En, Kind::Indicator) => "indicator batch",
        (Language::En, Kind::Advisory) => "advisory",
        (Language::En, Kind::Alert) => "alert",
        (Language::En, Kind::Sighting) => "sighting",
        (Language::En, Kind::Ack) => "acknowledgement",
        (Language::En, Kind::Chat) => "chat message",
        (Language::En, Kind::Incident) => "incident message",
        (Language::En, Kind::Notification) => "notification",
        (Language::En, Kind::Status) => "status report",
        (Language::En, Kind::Campaign) => "campaign message",
        (Language::Nb, Kind::Indicator) => "indikatorsett",
        (Language::Nb, Kind::Advisory) => "sikkerhetsvarsel",
        (Language::Nb, Kind::Alert) => "hastevarsel",
        (Language::Nb, Kind::Sighting) => "observasjon",
        (Language::Nb, Kind::Ack) => "kvittering",
        (Language::Nb, Kind::Chat) => "chatmelding",
        (Language::Nb, Kind::Incident) => "hendelsesmelding",
        (Language::Nb, Kind::Notification) => "funnmelding",
        (Language::Nb, Kind::Status) => "statusmelding",
        (Language::Nb, Kind::Campaign) => "oppfølgingsmelding",
    }
}

/// Why a message was withheld, in the room's language. Names users and
/// orgs, never the message's content.
pub fn violation(lang: Language, v: &Violation) -> String {
    match lang {
        Language::En => match v {
            Violation::AboveCeiling { ceiling, .. } => {
                format!("the room may show at most {ceiling}")
            }
            Violation::NotEncrypted { label } => {
                format!("{label} needs an end-to-end encrypted room, and this room is not")
            }
            Violation::UnknownMember { user } => {
                format!("{user} does not belong to any organisation in the directory")
            }
            Violation::OutsideCommunity { user, org } => {
                format!("{user} ({org}) is outside the community")
            }
            Violation::OutsideAudience { user, org } => {
                format!("{user} ({org}) is outside the message's audience")
            }
            Violation::SeveralOrgs { orgs } => format!(
                "TLP:AMBER+STRICT needs members of a single organisation, and this room has members of {}",
                join(orgs)
            ),
            Violation::RedNotAllowed => "the room is not configured for TLP:RED".into(),
            Violation::NotNamedRecipient { user } => {
                format!("{user} is not a named recipient")
            }
            Violation::OpenToJoin { label } => format!(
                "{label} needs a room that only invited users can join, and this room's join rule lets anyone in"
            ),
            Violation::WorldReadable { label } => {
                format!("{label} needs a room whose history is not readable by everyone")
            }
            Violation::RefusedByHomeserver { status } => {
                format!("the homeserver refused to take the post (HTTP {status})")
            }
        },
        Language::Nb => match v {
            Violation::AboveCeiling { ceiling, .. } => {
                format!("rommet kan vise høyst {ceiling}")
            }
            Violation::NotEncrypted { label } => {
                format!(
                    "{label} krever et ende-til-ende-kryptert rom, og dette rommet er ikke kryptert"
                )
            }
            Violation::UnknownMember { user } => {
                format!("{user} hører ikke til noen virksomhet i katalogen")
            }
            Violation::OutsideCommunity { user, org } => {
                format!("{user} ({org}) er utenfor fellesskapet")
            }
            Violation::OutsideAudience { user, org } => {
                format!("{user} ({org}) er ikke blant mottakerne av meldingen")
            }
            Violation::SeveralOrgs { orgs } => format!(
                "TLP:AMBER+STRICT krever at alle medlemmer er fra én virksomhet, og rommet har medlemmer fra {}",
                join(orgs)
            ),
            Violation::RedNotAllowed => "rommet er ikke satt opp for TLP:RED".into(),
            Violation::NotNamedRecipient { user } => {
                format!("{user} er ikke navngitt mottaker")
            }
            Violation::OpenToJoin { label } => format!(
                "{label} krever et rom som bare inviterte kan bli med i, og dette rommet slipper inn alle"
            ),
            Violation::WorldReadable { label } => {
                format!("{label} krever et rom der historikken ikke er åpen for alle")
            }
            Violation::RefusedByHomeserver { status } => {
                format!("hjemmeserveren nektet å ta imot innlegget (HTTP {status})")
            }
        },
    }
}

fn join(orgs: &[varde_schemas::OrgId]) -> String {
    orgs.iter()
        .map(|o| o.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
