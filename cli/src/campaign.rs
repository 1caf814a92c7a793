//! `varde campaign open|list|show|close` (the CSIRT, with the hub's
//! configuration and state dir) and `varde status` (a member telling the
//! CSIRT where it stands). Flag parsing and printing only; the work is in
//! the `varde-campaign` crate and the bus.

use std::path::Path;

use jiff::Timestamp;
use varde_bus::kind_rules;
use varde_bus::seal::{self, Draft};
use varde_campaign::{Desk, OpenSpec, Picture, Store};
use varde_schemas::payload::{Person, RemediationState, Status};
use varde_schemas::{GroupId, OrgId, Payload};

use crate::Session;
use crate::render::terminal_safe;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Ask target orgs for their status on an advisory or alert: each gets
    /// a campaign envelope sealed to it alone; `varde hub run` records
    /// their statuses and reminds the silent ones.
    Open {
        /// The advisory id (`KCSIRT-2026-0042`) or an alert's envelope id.
        #[arg(long)]
        about: String,
        /// What is asked, in a line (shown in members' rooms).
        #[arg(long)]
        title: String,
        /// A target org (repeat).
        #[arg(long = "org")]
        orgs: Vec<String>,
        /// Every org of a group (repeat).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Deadline: a time (`2026-12-04T16:00:00Z`) or from now (`3d`).
        #[arg(long)]
        deadline: Option<String>,
        /// Remind orgs without an answer this often (`1d`, `12h`).
        #[arg(long, default_value = "1d")]
        remind_every: String,
    },
    /// Campaigns, newest first.
    List {
        /// Closed ones too.
        #[arg(long)]
        all: bool,
    },
    /// Where each target org stands (id, id prefix or advisory id).
    Show {
        campaign: String,
        /// As JSON.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// As CSV (one row per org).
        #[arg(long)]
        csv: bool,
    },
    /// Stop asking; targets are told.
    Close { campaign: String },
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The advisory id or alert envelope id the status is about.
    pub about: String,
    /// delivered, acknowledged, not_affected, affected, in_progress,
    /// remediated or needs_help.
    pub state: RemediationState,
    /// A short note for the CSIRT ("patched 14:05").
    pub note: Option<String>,
    /// Who sets it (a name within your org).
    #[arg(long)]
    pub by: Option<String>,
}

fn desk(s: &Session) -> anyhow::Result<Desk> {
    let store = Store::open(&s.settings.path(&s.settings.value.hub.campaign_store()))?;
    Ok(Desk::new(
        store,
        s.identity.clone(),
        s.directory.clone(),
        s.js.clone(),
    ))
}

fn when(s: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d = varde_bus::time::parse_duration(s)
        .map_err(|e| anyhow::anyhow!("--deadline {s:?}: not a time or a duration: {e}"))?;
    Ok(Timestamp::now() + jiff::SignedDuration::try_from(d)?)
}

pub async fn run(c: Command, config: &Path) -> anyhow::Result<()> {
    let s = Session::connect(config).await?;
    let mut desk = desk(&s)?;
    let now = Timestamp::now();
    match c {
        Command::Open {
            about,
            title,
            orgs,
            groups,
            deadline,
            remind_every,
        } => {
            let dir = s.directory.current();
            let mut targets = Vec::new();
            for o in orgs {
                targets.push(OrgId::new(&o).map_err(|e| anyhow::anyhow!("--org {o:?}: {e}"))?);
            }
            for g in groups {
                let gid = GroupId::new(&g).map_err(|e| anyhow::anyhow!("--group {g:?}: {e}"))?;
                if !dir.group_exists(&gid) {
                    anyhow::bail!("--group {gid}: not a group in the directory");
                }
                targets.extend(
                    dir.group_members(&gid)
                        .iter()
                        .map(|&i| dir.org_at(i).id.clone()),
                );
            }
            let spec = OpenSpec {
                about,
                title,
                targets,
                deadline: deadline.as_deref().map(when).transpose()?,
                remind_every: varde_bus::time::parse_duration(&remind_every)
                    .map_err(|e| anyhow::anyhow!("--remind-every {remind_every:?}: {e}"))?,
            };
            let c = desk.open(spec, now).await?;
            let n = desk.store.targets(c.id)?.len();
            println!(
                "campaign {} about {} opened for {n} org(s){}",
                c.id,
                terminal_safe(&c.about),
                c.deadline
                    .map(|d| format!(", deadline {d}"))
                    .unwrap_or_default()
            );
        }
        Command::List { all } => {
            let list = desk.store.campaigns(all)?;
            if list.is_empty() {
                println!("no campaigns");
            }
            for c in list {
                let p = Picture::of(&desk.store, &c, now)?;
                let counts: Vec<String> =
                    p.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
                println!(
                    "{}  {:<20} {}{}  [{}]",
                    c.id,
                    terminal_safe(&c.about),
                    terminal_safe(&c.title),
                    if c.closed_at.is_some() {
                        " (closed)"
                    } else {
                        ""
                    },
                    counts.join(", ")
                );
            }
        }
        Command::Show {
            campaign,
            json,
            csv,
        } => {
            let c = desk
                .store
                .find(&campaign)?
                .ok_or_else(|| anyhow::anyhow!("no campaign {campaign:?}"))?;
            let p = Picture::of(&desk.store, &c, now)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else if csv {
                print!("{}", p.to_csv()?);
            } else {
                print_picture(&p);
            }
        }
        Command::Close { campaign } => {
            let c = desk.close(&campaign, now).await?;
            println!("campaign {} about {} closed", c.id, terminal_safe(&c.about));
        }
    }
    Ok(())
}

fn print_picture(p: &Picture) {
    let c = &p.campaign;
    println!("campaign   {}", c.id);
    println!("about      {}", terminal_safe(&c.about));
    println!("title      {}", terminal_safe(&c.title));
    println!("opened     {}", c.opened_at);
    if let Some(d) = c.deadline {
        println!("deadline   {d}");
    }
    println!("remind     every {}s", c.remind_every.as_secs());
    if let Some(at) = c.closed_at {
        println!("closed     {at}");
    }
    println!();
    for r in &p.rows {
        println!(
            "{:<24} {:<24} {:<28} {}",
            r.org,
            r.label(),
            r.at.map(|t| t.to_string()).unwrap_or_default(),
            terminal_safe(&match (&r.by, &r.note) {
                (Some(b), Some(n)) => format!("{b}: {n}"),
                (Some(b), None) => b.clone(),
                (None, Some(n)) => n.clone(),
                (None, None) => String::new(),
            })
        );
    }
    if !p.escalation.is_empty() {
        let names: Vec<&str> = p.escalation.iter().map(|o| o.as_str()).collect();
        println!("\npast the deadline, not done: {}", names.join(", "));
    }
}

/// `varde status`: seals the status TLP:AMBER+STRICT to the CSIRT alone.
pub async fn status(a: StatusArgs, config: &Path) -> anyhow::Result<()> {
    let s = Session::connect(config).await?;
    let dir = s.directory.current();
    let (label, audience) = kind_rules::status_audience(&dir)?;
    let state = a.state;
    let status = Status {
        about: a.about,
        state: a.state,
        note: a.note,
        by: a.by.map(|name| Person {
            display_name: Some(name),
            ..Default::default()
        }),
    };
    // What the CSIRT's desk would refuse is refused here, before sending.
    if !status.within_limits() {
        anyhow::bail!(
            "the advisory id must be 1 to {} bytes and the note at most {} bytes",
            varde_schemas::payload::MAX_ABOUT,
            varde_schemas::payload::MAX_NOTE
        );
    }
    let payload = Payload::Status(status);
    let sealed = seal::seal(&s.identity, &dir, Draft::new(&payload, label, audience))?;
    varde_bus::transport::publish(&s.js, &sealed).await?;
    println!(
        "status {state} sent to {} ({label}, id {})",
        kind_rules::csirt(&dir)?,
        sealed.id()
    );
    Ok(())
}
