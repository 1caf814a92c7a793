//! `varde-bridge check-config`: validates the configuration, the keys, the
//! directory and every room (its encryption and members against its
//! ceiling), and prints a table. Exits non-zero when anything is flagged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use varde_schemas::Tlp;

use crate::config;
use crate::matrix::probe::Probe;
use crate::policy;

/// One line of the report.
struct Row {
    room: String,
    id: String,
    encrypted: String,
    members: String,
    ceiling: String,
    supports: String,
    status: String,
}

pub async fn run(config_path: &Path) -> anyhow::Result<bool> {
    let mut ok = true;
    let (loaded, checked) = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            println!("configuration: FLAG {e}");
            return Ok(false);
        }
    };
    println!("configuration: ok ({})", config_path.display());
    let identity = match loaded.identity() {
        Ok(i) => {
            println!("identity: ok ({} key {})", i.org, i.key_id);
            Some(i)
        }
        Err(e) => {
            println!("identity: FLAG {e}");
            ok = false;
            None
        }
    };
    // The bus is optional here: the directory may come from the file.
    let kv = match tokio::time::timeout(Duration::from_secs(5), loaded.nats().connect()).await {
        Ok(Ok(client)) => {
            let js = varde_bus::transport::jetstream(client);
            println!("bus: ok ({})", loaded.value.nats.url);
            varde_bus::directory_kv::fetch(&js).await.ok().flatten()
        }
        Ok(Err(e)) => {
            println!("bus: FLAG {e}");
            ok = false;
            None
        }
        Err(_) => {
            println!(
                "bus: FLAG no answer from {} within 5 s",
                loaded.value.nats.url
            );
            ok = false;
            None
        }
    };
    let directory = match loaded.directory_handle(kv) {
        Ok(d) => d,
        Err(e) => {
            println!("directory: FLAG {e}");
            return Ok(false);
        }
    };
    let dir = directory.current();
    println!(
        "directory: ok (version {}, {} orgs)",
        dir.version(),
        dir.orgs().len()
    );
    if let Some(i) = &identity
        && let Err(e) = varde_bus::session::check_identity_registered(&directory, i)
    {
        println!("identity: FLAG {e}");
        ok = false;
    }
    let probe = match Probe::connect(&checked.matrix).await {
        Ok(p) => p,
        Err(e) => {
            println!("matrix: FLAG {e}");
            return Ok(false);
        }
    };
    match probe.whoami().await {
        Ok(u) if u == checked.matrix.user => {
            println!("matrix: ok ({u} on {})", checked.matrix.homeserver)
        }
        Ok(u) => {
            println!(
                "matrix: FLAG the token belongs to {u}, not matrix.user = {}",
                checked.matrix.user
            );
            ok = false;
        }
        Err(e) => {
            println!("matrix: FLAG {e}");
            probe.close().await;
            return Ok(false);
        }
    }

    let mut rows = Vec::new();
    for r in &checked.rooms {
        let mut row = Row {
            room: r.name.clone(),
            id: r.reference.as_str().to_string(),
            encrypted: "?".into(),
            members: "?".into(),
            ceiling: r.ceiling.to_string(),
            supports: "?".into(),
            status: String::new(),
        };
        let id = match &r.reference {
            config::RoomRef::Id(id) => Ok(id.clone()),
            config::RoomRef::Alias(a) => probe.resolve_alias(a).await,
        };
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                row.status = format!("FLAG {e}");
                ok = false;
                rows.push(row);
                continue;
            }
        };
        row.id = id.clone();
        match probe.view(&id).await {
            Ok(view) => {
                row.encrypted = if view.encrypted { "yes" } else { "no" }.into();
                row.members = describe_members(&dir, &view.members);
                let top = policy::highest_supported(&dir, &view, r.red);
                row.supports = top.to_string();
                match policy::room_supports(&dir, &view, r.red, r.ceiling) {
                    Ok(()) => row.status = "ok".into(),
                    Err(v) => {
                        row.status = format!("FLAG ceiling {} not supported: {v}", r.ceiling);
                        ok = false;
                    }
                }
                if r.ceiling == Tlp::Red && !r.red {
                    row.status = "FLAG ceiling TLP:RED without red = true".into();
                    ok = false;
                }
            }
            Err(e) => {
                row.status = format!("FLAG {e} (is the bot in the room?)");
                ok = false;
            }
        }
        rows.push(row);
    }
    probe.close().await;
    print_table(&rows);
    println!(
        "{}",
        if ok {
            "all checks passed"
        } else {
            "some checks FLAGGED; see above"
        }
    );
    Ok(ok)
}

fn describe_members(dir: &varde_bus::directory::VerifiedDirectory, members: &[String]) -> String {
    let mut by_org: BTreeMap<String, usize> = BTreeMap::new();
    for m in members {
        let org = dir
            .org_of_matrix_user(m)
            .map_or_else(|| "unknown".to_string(), |o| o.id.to_string());
        *by_org.entry(org).or_default() += 1;
    }
    let parts: Vec<String> = by_org.iter().map(|(o, n)| format!("{o}:{n}")).collect();
    if parts.is_empty() {
        "0".into()
    } else {
        format!("{} ({})", members.len(), parts.join(", "))
    }
}

fn print_table(rows: &[Row]) {
    let head = [
        "ROOM",
        "ID",
        "ENCRYPTED",
        "MEMBERS (ORG:N)",
        "CEILING",
        "SUPPORTS",
        "STATUS",
    ];
    let cells: Vec<[&str; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.room.as_str(),
                r.id.as_str(),
                r.encrypted.as_str(),
                r.members.as_str(),
                r.ceiling.as_str(),
                r.supports.as_str(),
                r.status.as_str(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            width[i] = width[i].max(s.chars().count());
        }
    }
    let line = |c: [&str; 7]| {
        let mut s = String::new();
        for (i, v) in c.iter().enumerate() {
            if i == 6 {
                s.push_str(v);
            } else {
                s.push_str(&format!("{v:<w$}  ", w = width[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head);
    for c in cells {
        line(c);
    }
}
