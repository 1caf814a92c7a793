//! TLS to a real nats-server with certificates from `varde nats tls-dev`:
//! only a client that trusts the server's CA and presents a certificate of
//! that CA gets in; and the `varde` CLI provisions a TLS broker end to end
//! (offline first run, stream init, consumers, SIGHUP reload via the pid
//! file, and the check that a new member can bind its consumer).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use varde_bus::inbox::{Inbox, InboxConfig};
use varde_bus::keys::encode_verifying_key;
use varde_bus::seal::{self, Draft, Opener};
use varde_bus::transport::{self, NatsSettings, StreamSettings};
use varde_bus::{directory_kv, subject};
use varde_schemas::directory::OrgKind;
use varde_schemas::payload::{Alert, Severity};
use varde_schemas::{Audience, OrgId, Payload, Tlp};
use varde_testkit::synthetic::Synthetic;
use varde_tests::provisioned::include_line;
use varde_tests::{NatsServer, drain, workspace_bin};

fn varde(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(workspace_bin("varde").unwrap());
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("VARDE_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = varde(dir, args, env);
    assert!(
        out.status.success(),
        "varde {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The server side of mutual TLS with the dev CA in `tls`.
fn tls_block(tls: &Path) -> String {
    let p = |f: &str| tls.join(f).display().to_string();
    format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n",
        p("server.pem"),
        p("server-key.pem"),
        p("ca.pem")
    )
}

fn client(url: String, ca: Option<PathBuf>, cert: Option<(PathBuf, PathBuf)>) -> NatsSettings {
    let (tls_cert, tls_key) = cert.map_or((None, None), |(c, k)| (Some(c), Some(k)));
    NatsSettings {
        tls_ca: ca,
        tls_cert,
        tls_key,
        tls_required: true,
        ..NatsSettings::with_url(url)
    }
}

fn alert() -> Payload {
    Payload::Alert(Alert {
        title: "TLS works".into(),
        body: "end to end".into(),
        severity: Severity::Low,
        urgent: false,
        references: vec![],
        indicators: vec![],
        advisory_id: None,
    })
}

#[tokio::test]
async fn only_clients_of_the_dev_ca_get_in() {
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("tls");
    let other = work.path().join("other");
    ok(
        work.path(),
        &["nats", "tls-dev", "--out", "tls", "--client", "gjovik"],
        &[],
    );
    ok(
        work.path(),
        &["nats", "tls-dev", "--out", "other", "--client", "gjovik"],
        &[],
    );
    let nats = NatsServer::start_with(&tls_block(&ours)).await.unwrap();
    let url = format!("tls://127.0.0.1:{}", nats.port());
    let pair = |dir: &Path| {
        Some((
            dir.join("client-gjovik.pem"),
            dir.join("client-gjovik-key.pem"),
        ))
    };

    // The right CA and a certificate it signed: in, and the bus works.
    let good = client(url.clone(), Some(ours.join("ca.pem")), pair(&ours));
    let conn = good.connect().await.unwrap();
    let js = transport::jetstream(conn);
    let world = Synthetic::demo();
    let handle = world.handle().unwrap();
    transport::init(&js, &StreamSettings::default(), Some(&handle.current()))
        .await
        .unwrap();
    let sealed = seal::seal(
        &world.identity("kcsirt"),
        &handle.current(),
        Draft::new(
            &alert(),
            Tlp::Amber,
            Audience::orgs([OrgId::new("gjovik").unwrap()]),
        ),
    )
    .unwrap();
    transport::publish(&js, &sealed).await.unwrap();
    let gjovik = world.identity("gjovik");
    let cfg = InboxConfig::durable(
        "gjovik",
        subject::readable_filters(&handle.current(), &gjovik.org),
    );
    let mut inbox = Inbox::open(&js, &cfg, Arc::new(Opener::new(gjovik)), handle.clone())
        .await
        .unwrap();
    let got = drain(&mut inbox, Duration::from_secs(2)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].opened.header.id, sealed.header.id);

    // The server's certificate names localhost too.
    let by_name = client(
        format!("tls://localhost:{}", nats.port()),
        Some(ours.join("ca.pem")),
        pair(&ours),
    );
    by_name.connect().await.unwrap();

    // Without our CA the client does not trust the server.
    let no_ca = client(url.clone(), None, pair(&ours));
    let e = no_ca.connect().await.unwrap_err().to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    let wrong_ca = client(url.clone(), Some(other.join("ca.pem")), pair(&ours));
    let e = wrong_ca.connect().await.unwrap_err().to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    // With a certificate from another CA, or none, the server refuses.
    let foreign = client(url.clone(), Some(ours.join("ca.pem")), pair(&other));
    assert!(foreign.connect().await.is_err());
    let anonymous = client(url.clone(), Some(ours.join("ca.pem")), None);
    assert!(anonymous.connect().await.is_err());
    // And plain TCP never gets through either.
    let plain = NatsSettings::with_url(nats.url());
    assert!(plain.connect().await.is_err());
    // The server logged the refused client certificates.
    let log = std::fs::read_to_string(nats.log_path()).unwrap();
    assert!(log.contains("TLS handshake error"), "{log}");

    // A misconfigured client is told what is wrong before it dials.
    let half = NatsSettings {
        tls_cert: Some(ours.join("client-gjovik.pem")),
        ..client(url.clone(), Some(ours.join("ca.pem")), None)
    };
    assert!(matches!(
        half.connect().await,
        Err(transport::TransportError::TlsPair)
    ));
    let missing = client(url, Some(work.path().join("nope.pem")), pair(&ours));
    let e = missing.connect().await.unwrap_err().to_string();
    assert!(e.contains("nats.tls_ca") && e.contains("nope.pem"), "{e}");
}

#[tokio::test]
async fn cli_provisions_a_tls_broker_and_reloads_it() {
    let work = tempfile::Builder::new()
        .prefix("varde-cli-provision-")
        .tempdir()
        .unwrap();
    let w = work.path();
    let mut world = Synthetic::demo();
    std::fs::write(w.join("directory.json"), world.signed().unwrap()).unwrap();
    let root = encode_verifying_key(&world.root.verifying_key());
    ok(
        w,
        &["nats", "tls-dev", "--out", "tls", "--client", "operator"],
        &[],
    );
    std::fs::write(
        w.join("operator.toml"),
        format!(
            "# the CSIRT's broker administration\n\
             [directory]\nroot_keys = [\"{root}\"]\nfile = \"directory.json\"\n\
             [nats]\nnkey_seed = \"auth/operator.nk\"\ntls_ca = \"tls/ca.pem\"\n\
             tls_cert = \"tls/client-operator.pem\"\ntls_key = \"tls/client-operator-key.pem\"\n"
        ),
    )
    .unwrap();

    // First run, before the server exists: files only.
    let out = ok(
        w,
        &[
            "-c",
            "operator.toml",
            "nats",
            "provision",
            "--out",
            "auth",
            "--offline",
        ],
        &[],
    );
    assert!(out.contains("made the operator seed"), "{out}");
    let seed_mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(w.join(p)).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(seed_mode("auth/operator.nk"), 0o600);
    assert_eq!(seed_mode("auth/users/gjovik.nk"), 0o600);

    let pid_file = w.join("nats.pid");
    let nats = NatsServer::start_with(&format!(
        "{}{}pid_file: \"{}\"\n",
        include_line(&w.join("auth")).unwrap(),
        tls_block(&w.join("tls")),
        pid_file.display()
    ))
    .await
    .unwrap();
    let url = format!("tls://127.0.0.1:{}", nats.port());
    let env = [("VARDE_NATS__URL", url.as_str())];
    ok(w, &["-c", "operator.toml", "bus", "init"], &env);
    ok(
        w,
        &["-c", "operator.toml", "directory", "push", "directory.json"],
        &env,
    );
    let out = ok(
        w,
        &["-c", "operator.toml", "nats", "provision", "--out", "auth"],
        &env,
    );
    assert!(out.contains("consumers created: gjovik"), "{out}");
    assert!(out.contains("authorization unchanged"), "{out}");
    let handout = std::fs::read_to_string(w.join("auth/users/gjovik.toml")).unwrap();
    assert!(handout.contains(&format!("url = \"{url}\"")), "{handout}");
    assert!(handout.contains("tls_ca = \"ca.pem\""), "{handout}");

    // A new member: sign, provision, SIGHUP through the pid file, check.
    world.add_org("hamar", "Hamar kommune", OrgKind::Kommune, &["health"]);
    world.bump();
    std::fs::write(w.join("directory.json"), world.signed().unwrap()).unwrap();
    let before = nats.varz().await.unwrap()["config_load_time"].clone();
    let out = ok(
        w,
        &[
            "-c",
            "operator.toml",
            "nats",
            "provision",
            "--out",
            "auth",
            "--reload-pid-file",
            "nats.pid",
        ],
        &env,
    );
    assert!(out.contains("users added: hamar"), "{out}");
    assert!(out.contains("server reload requested"), "{out}");
    assert!(
        out.contains("checked: hamar can connect and bind its consumer"),
        "{out}"
    );
    assert_ne!(nats.varz().await.unwrap()["config_load_time"], before);
    ok(
        w,
        &["-c", "operator.toml", "directory", "push", "directory.json"],
        &env,
    );

    // The provisioned user with TLS, as a member would configure it.
    let hamar = NatsSettings {
        nkey_seed: Some(w.join("auth/users/hamar.nk")),
        inbox_prefix: Some("_INBOX.hamar".into()),
        ..client(
            url.clone(),
            Some(w.join("tls/ca.pem")),
            Some((
                w.join("tls/client-operator.pem"),
                w.join("tls/client-operator-key.pem"),
            )),
        )
    };
    let js = transport::jetstream(hamar.connect().await.unwrap());
    let dir = directory_kv::fetch(&js).await.unwrap().unwrap();
    assert!(
        dir == world.signed().unwrap(),
        "hamar reads the new directory"
    );
}
