//! `varde publish <kind>`: build a payload from flags or a JSON file (or
//! stdin), seal it for the audience, publish, and wait for the broker's ack.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jiff::Timestamp;
use uuid::Uuid;
use varde_schemas::payload::{
    Ack, Advisory, Alert, Chat, ChatAction, Incident, IncidentAction, Indicator, IndicatorBatch,
    IndicatorType, Person, Product, Severity, Sighting,
};
use varde_schemas::{Audience, GroupId, KeyId, Kind, OrgId, Payload, Tlp};

use super::Session;
use varde_bus::seal::{self, Draft};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub kind: KindArgs,
}

/// Who receives it and under which label.
#[derive(clap::Args, Debug, Clone)]
pub struct AudienceArgs {
    /// TLP 2.0 label: CLEAR, GREEN, AMBER, AMBER+STRICT or RED.
    #[arg(long)]
    pub tlp: Option<Tlp>,
    /// Named organisations (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub to: Vec<OrgId>,
    /// Named groups/sectors (comma separated).
    #[arg(long = "group", value_delimiter = ',')]
    pub groups: Vec<GroupId>,
    /// The whole community (GREEN or CLEAR).
    #[arg(long)]
    pub community: bool,
    /// Named person keys (RED), by key id.
    #[arg(long = "person", value_delimiter = ',')]
    pub people: Vec<KeyId>,
    /// Expire the message after this long (e.g. 7d).
    #[arg(long)]
    pub expires: Option<String>,
    /// Read the payload as JSON from this file (`-` for stdin) instead of flags.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum KindArgs {
    /// A security advisory (new or a new revision of an existing one).
    Advisory {
        #[command(flatten)]
        a: AudienceArgs,
        /// Stable id across revisions; generated if omitted.
        #[arg(long)]
        advisory_id: Option<String>,
        #[arg(long, default_value_t = 1)]
        revision: u32,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        summary: Option<String>,
        #[arg(long, default_value = "medium")]
        severity: Severity,
        #[arg(long = "cve")]
        cves: Vec<String>,
        /// `vendor:product[:versions]`, repeatable.
        #[arg(long = "product")]
        products: Vec<String>,
        #[arg(long = "action")]
        actions: Vec<String>,
        #[arg(long = "reference")]
        references: Vec<String>,
        #[arg(long = "sector")]
        sectors: Vec<GroupId>,
        /// What changed in this revision.
        #[arg(long)]
        changes: Option<String>,
    },
    /// A short urgent warning.
    Alert {
        #[command(flatten)]
        a: AudienceArgs,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        body: Option<String>,
        #[arg(long, default_value = "high")]
        severity: Severity,
        /// Ask bridges to mention the room.
        #[arg(long)]
        urgent: bool,
        #[arg(long = "reference")]
        references: Vec<String>,
        #[arg(long)]
        advisory_id: Option<String>,
    },
    /// Indicators: values as `type:value` or bare (type guessed).
    Indicator {
        #[command(flatten)]
        a: AudienceArgs,
        values: Vec<String>,
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// "We saw this value" (to the CSIRT unless an audience is given).
    Sighting {
        #[command(flatten)]
        a: AudienceArgs,
        value: Option<String>,
        #[arg(long = "type")]
        kind: Option<IndicatorType>,
        #[arg(long)]
        note: Option<String>,
    },
    /// A chat message.
    Chat {
        #[command(flatten)]
        a: AudienceArgs,
        text: Option<String>,
        #[arg(long, default_value = "community")]
        conversation: String,
    },
    /// Acknowledge a message (to its sender unless an audience is given).
    Ack {
        #[command(flatten)]
        a: AudienceArgs,
        /// Envelope id being acknowledged.
        of: Option<Uuid>,
        /// The org that sent it (the ack goes there).
        #[arg(long)]
        sender: Option<OrgId>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Incident coordination (open, note, close).
    Incident {
        #[command(flatten)]
        a: AudienceArgs,
        #[arg(long, value_enum, default_value = "open")]
        action: IncidentActionArg,
        #[arg(long)]
        incident_id: Option<Uuid>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        text: Option<String>,
    },
    /// A routed finding (normally the hub's job); payload from --file.
    Notification {
        #[command(flatten)]
        a: AudienceArgs,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum IncidentActionArg {
    Open,
    Note,
    Close,
}

fn read_json(path: &Path, kind: Kind) -> anyhow::Result<Payload> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading stdin")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Payload::from_json(kind, &bytes)
        .with_context(|| format!("{} is not a {kind} payload", path.display()))
}

fn need<T>(v: Option<T>, flag: &str, kind: &str) -> anyhow::Result<T> {
    v.with_context(|| format!("publish {kind}: {flag} is required (or give --file)"))
}

fn parse_value(v: &str, kind: Option<IndicatorType>) -> anyhow::Result<Indicator> {
    let (t, value) = match (kind, v.split_once(':')) {
        (Some(t), _) => (t, v),
        (None, Some((t, rest))) if t.parse::<IndicatorType>().is_ok() => (
            t.parse::<IndicatorType>().map_err(anyhow::Error::msg)?,
            rest,
        ),
        _ => (
            IndicatorType::guess(v)
                .with_context(|| format!("cannot tell the type of `{v}`; write type:value"))?,
            v,
        ),
    };
    Ok(Indicator::new(t, value)?)
}

/// Builds the payload and the default audience for the kind.
fn build(
    k: KindArgs,
    me: &OrgId,
    csirt: &OrgId,
) -> anyhow::Result<(Payload, AudienceArgs, Audience)> {
    Ok(match k {
        KindArgs::Advisory {
            a,
            advisory_id,
            revision,
            title,
            summary,
            severity,
            cves,
            products,
            actions,
            references,
            sectors,
            changes,
        } => {
            let p = match &a.file {
                Some(f) => read_json(f, Kind::Advisory)?,
                None => Payload::Advisory(Advisory {
                    advisory_id: advisory_id.unwrap_or_else(|| {
                        format!(
                            "{}-{}-{}",
                            me.as_str().to_uppercase(),
                            Timestamp::now().strftime("%Y"),
                            &Uuid::now_v7().simple().to_string()[24..]
                        )
                    }),
                    revision,
                    title: need(title, "--title", "advisory")?,
                    summary: need(summary, "--summary", "advisory")?,
                    severity,
                    cves: cves
                        .iter()
                        .map(|c| varde_schemas::normalise::normalise(IndicatorType::Cve, c))
                        .collect::<Result<_, _>>()?,
                    affected: products
                        .iter()
                        .map(|p| {
                            let mut it = p.splitn(3, ':');
                            match (it.next(), it.next()) {
                                (Some(v), Some(pr)) if !v.is_empty() && !pr.is_empty() => {
                                    Ok(Product {
                                        vendor: v.trim().into(),
                                        product: pr.trim().into(),
                                        versions: it.next().map(|s| s.trim().to_string()),
                                    })
                                }
                                _ => bail!("--product `{p}`: expected vendor:product[:versions]"),
                            }
                        })
                        .collect::<anyhow::Result<_>>()?,
                    actions,
                    references,
                    sectors,
                    published: Timestamp::now(),
                    changes,
                    matched_assets: vec![],
                }),
            };
            (p, a, Audience::default())
        }
        KindArgs::Alert {
            a,
            title,
            body,
            severity,
            urgent,
            references,
            advisory_id,
        } => {
            let p = match &a.file {
                Some(f) => read_json(f, Kind::Alert)?,
                None => Payload::Alert(Alert {
                    title: need(title, "--title", "alert")?,
                    body: body.unwrap_or_default(),
                    severity,
                    urgent,
                    references,
                    indicators: vec![],
                    advisory_id,
                }),
            };
            (p, a, Audience::default())
        }
        KindArgs::Indicator {
            a,
            values,
            source,
            description,
        } => {
            let p = match &a.file {
                Some(f) => read_json(f, Kind::Indicator)?,
                None => {
                    if values.is_empty() {
                        bail!("publish indicator: give values (type:value) or --file");
                    }
                    Payload::Indicator(IndicatorBatch {
                        source,
                        description,
                        indicators: values
                            .iter()
                            .map(|v| parse_value(v, None))
                            .collect::<anyhow::Result<_>>()?,
                    })
                }
            };
            (p, a, Audience::default())
        }
        KindArgs::Sighting {
            a,
            value,
            kind,
            note,
        } => {
            let p = match &a.file {
                Some(f) => read_json(f, Kind::Sighting)?,
                None => {
                    let ind = parse_value(&need(value, "a value", "sighting")?, kind)?;
                    Payload::Sighting(Sighting {
                        kind: ind.kind,
                        value: ind.value,
                        seen_at: Timestamp::now(),
                        note,
                        reporter: Some(Person {
                            org: Some(me.clone()),
                            ..Default::default()
                        }),
                        aggregate: None,
                    })
                }
            };
            // Sightings go to the CSIRT hub, which aggregates them.
            (p, a, Audience::orgs([csirt.clone()]))
        }
        KindArgs::Chat {
            a,
            text,
            conversation,
        } => {
            let p = match &a.file {
                Some(f) => read_json(f, Kind::Chat)?,
                None => Payload::Chat(Chat {
                    conversation,
                    action: ChatAction::Message,
                    author: Person {
                        org: Some(me.clone()),
                        ..Default::default()
                    },
                    text: need(text, "the text", "chat")?,
                    html: None,
                    reply_to: None,
                    target: None,
                    attachment: None,
                    origin_room: None,
                    origin_event: None,
                }),
            };
            (p, a, Audience::default())
        }
        KindArgs::Ack {
            a,
            of,
            sender,
            note,
        } => {
            let p = match &a.file {
                Some(f) => read_json(f, Kind::Ack)?,
                None => Payload::Ack(Ack {
                    of: need(of, "the envelope id", "ack")?,
                    by: Some(Person {
                        org: Some(me.clone()),
                        ..Default::default()
                    }),
                    note,
                }),
            };
            let to = sender.unwrap_or_else(|| csirt.clone());
            (p, a, Audience::orgs([to]))
        }
        KindArgs::Incident {
            a,
            action,
            incident_id,
            title,
            text,
        } => {
            let p = match &a.file {
                Some(f) => read_json(f, Kind::Incident)?,
                None => Payload::Incident(Incident {
                    incident_id: incident_id.unwrap_or_else(Uuid::now_v7),
                    action: match action {
                        IncidentActionArg::Open => IncidentAction::Open,
                        IncidentActionArg::Note => IncidentAction::Note,
                        IncidentActionArg::Close => IncidentAction::Close,
                    },
                    title: title.unwrap_or_default(),
                    participants: a.to.clone(),
                    by: Person {
                        org: Some(me.clone()),
                        ..Default::default()
                    },
                    text,
                }),
            };
            (p, a, Audience::default())
        }
        KindArgs::Notification { a } => {
            let f = a
                .file
                .clone()
                .context("publish notification: the payload must come from --file")?;
            (read_json(&f, Kind::Notification)?, a, Audience::default())
        }
    })
}

pub async fn run(args: Args, config: &Path) -> anyhow::Result<()> {
    let s = Session::connect(config).await?;
    let dir = s.directory.current();
    let (payload, a, default_audience) = build(args.kind, &s.identity.org, &dir.doc.csirt)?;
    let label = a
        .tlp
        .context("--tlp is required: say which TLP label this carries (e.g. --tlp amber)")?;
    let mut audience = Audience {
        community: a.community,
        groups: a.groups.clone(),
        orgs: a.to.clone(),
        people: a.people.clone(),
    };
    if audience.is_empty() {
        audience = default_audience;
    }
    if audience.is_empty() && matches!(label, Tlp::Clear | Tlp::Green) {
        audience = Audience::community();
    }
    let mut draft = Draft::new(&payload, label, audience);
    if let Some(e) = &a.expires {
        let d = varde_bus::time::parse_duration(e).map_err(anyhow::Error::msg)?;
        let d = jiff::SignedDuration::try_from(d)?;
        draft = draft.expires(Timestamp::now() + d);
    }
    let sealed = seal::seal(&s.identity, &dir, draft)?;
    let stored = varde_bus::transport::publish(&s.js, &sealed).await?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "id": sealed.id(),
                "label": sealed.header.label,
                "kind": sealed.header.kind,
                "bytes": sealed.stored_bytes(),
                "copies": sealed.copies.len(),
                "subjects": stored.iter().map(|x| serde_json::json!({"subject": x.subject, "seq": x.sequence, "duplicate": x.duplicate})).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "published {} {} {} ({} bytes in {} copies) to {}",
            sealed.header.label,
            sealed.header.kind,
            sealed.id(),
            sealed.stored_bytes(),
            sealed.copies.len(),
            stored
                .iter()
                .map(|x| format!("{} #{}", x.subject, x.sequence))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
