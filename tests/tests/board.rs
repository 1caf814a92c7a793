//! `varde board` in a real browser (Debian's headless chromium through
//! chromedriver), over a real nats-server: the CSIRT's hub records the
//! orgs' statuses from the bus, and the board shows the campaigns ×
//! organisations matrix with the right colours and counts, changes a cell
//! without a reload when a status arrives, shows the per-organisation page
//! and the exports, survives a restart, and refuses a browser or client
//! without a certificate from the CSIRT's CA. Screenshots are written to
//! `target/tmp/board/`.
//!
//! The abuse side: a member's note with markup stays text, a request that
//! names another host (DNS rebinding to 127.0.0.1) is refused, and a
//! member cannot open or close an incident it is not part of.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;
use varde_board::{Board, BoardConfig, TlsFiles};
use varde_bus::kind_rules;
use varde_bus::seal::Draft;
use varde_campaign::OpenSpec;
use varde_hub::run::serve_inbox;
use varde_schemas::payload::{Incident, IncidentAction, Person, RemediationState, Status};
use varde_schemas::{Audience, OrgId, Payload, Tlp};
use varde_tests::BusFixture;
use varde_tests::browser::Browser;

const IDLE: Duration = Duration::from_millis(1500);
const ABOUT: &str = "KCSIRT-2026-0042";
const LIVE: Duration = Duration::from_secs(20);

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

fn shots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("board")
}

async fn send_status(bus: &BusFixture, who: &str, state: RemediationState, note: Option<&str>) {
    let dir = bus.handle.current();
    let (label, audience) = kind_rules::status_audience(&dir).unwrap();
    let p = Payload::Status(Status {
        about: ABOUT.into(),
        state,
        note: note.map(String::from),
        by: Some(Person {
            display_name: Some("Kari Nordmann".into()),
            ..Default::default()
        }),
    });
    bus.publish(&bus.identity(who), Draft::new(&p, label, audience))
        .await
        .unwrap();
}

/// The computed background colour of the first element `selector` picks.
async fn colour(b: &Browser, selector: &str) -> String {
    let v = b
        .js(
            "const e = document.querySelector(arguments[0]); return e ? getComputedStyle(e).backgroundColor : null;",
            vec![json!(selector)],
        )
        .await
        .unwrap();
    v.as_str().unwrap_or_default().to_string()
}

async fn text(b: &Browser, selector: &str) -> String {
    let v = b
        .js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
            vec![json!(selector)],
        )
        .await
        .unwrap();
    v.as_str().unwrap_or_default().to_string()
}

fn cell(org: &str) -> String {
    format!("#matrix td.cell[data-org=\"{org}\"]")
}

/// One HTTP/1.1 request over a plain socket, with the Host header given.
async fn raw_get(addr: SocketAddr, host: &str, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// GET / over TLS trusting `ca`, with a client certificate or without.
async fn tls_get(
    addr: SocketAddr,
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            b.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap())
                .unwrap()
        }
        None => b.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let mut tls = conn.connect(name, tcp).await.map_err(|e| e.to_string())?;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn board(store: &Path, tls: Option<TlsFiles>) -> Board {
    let mut cfg = BoardConfig::new(store.to_path_buf(), "127.0.0.1:0".parse().unwrap());
    cfg.poll = Duration::from_millis(100);
    cfg.tls = tls;
    Board::start(cfg).await.unwrap()
}

#[tokio::test]
async fn board_shows_the_matrix_live_in_chromium_and_refuses_clients_without_a_certificate() {
    let bus = BusFixture::start().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let (h, mut inbox, mut sightings, mut desk) =
        varde_tests::csirt::csirt(&bus, state.path()).await.unwrap();

    // The acceptance campaign: gjovik acknowledges (remediates later, while
    // the page is open), lillehammer's bridge delivers and nothing more,
    // innlandet-fk is offline; both silent ones are reminded.
    let t0 = Timestamp::now();
    let c = desk
        .open(
            OpenSpec {
                about: ABOUT.into(),
                title: "Citrix NetScaler: patch by Friday".into(),
                targets: vec![org("gjovik"), org("lillehammer"), org("innlandet-fk")],
                deadline: Some(t0 + SignedDuration::from_hours(72)),
                remind_every: Duration::from_secs(60),
            },
            t0,
        )
        .await
        .unwrap();
    let hostile = "<img src=x onerror=\"document.title='pwned'\">on it";
    send_status(
        &bus,
        "gjovik",
        RemediationState::Acknowledged,
        Some(hostile),
    )
    .await;
    send_status(&bus, "lillehammer", RemediationState::Delivered, None).await;
    // An incident gjovik opened with the CSIRT: on gjovik's page.
    let incident_id = Uuid::now_v7();
    let incident = |id, action, title: &str| {
        Payload::Incident(Incident {
            incident_id: id,
            action,
            title: title.into(),
            participants: vec![org("gjovik"), org("kcsirt")],
            by: Person {
                display_name: Some("Kari Nordmann".into()),
                ..Default::default()
            },
            text: None,
        })
    };
    let send_incident = |who: &'static str, p: Payload, to: &[&str]| {
        let to = Audience::orgs(to.iter().map(|o| org(o)));
        let bus = &bus;
        async move {
            bus.publish(&bus.identity(who), Draft::new(&p, Tlp::Amber, to))
                .await
                .unwrap();
        }
    };
    let opened = incident(
        incident_id,
        IncidentAction::Open,
        "Phishing wave against payroll",
    );
    send_incident("gjovik", opened, &["gjovik", "kcsirt"]).await;
    // Abuse: lillehammer, no participant, opens one in gjovik's name and
    // closes gjovik's. Neither counts.
    let fake = incident(Uuid::now_v7(), IncidentAction::Open, "Fake incident");
    send_incident("lillehammer", fake, &["gjovik", "kcsirt"]).await;
    let close = incident(incident_id, IncidentAction::Close, "closed");
    send_incident("lillehammer", close, &["kcsirt"]).await;
    serve_inbox(&h, &mut sightings, &mut desk, &mut inbox, Some(IDLE))
        .await
        .unwrap();
    let reminded = desk
        .remind_due(t0 + SignedDuration::from_secs(61))
        .await
        .unwrap();
    assert_eq!(reminded.len(), 2, "{reminded:?}");

    let store = h.settings.campaign_store();
    let plain = board(&store, None).await;
    let url = plain.url();
    let b = Browser::start().await.unwrap();
    b.client.goto(&url).await.unwrap();
    b.wait_for(
        "return document.getElementById('conn').textContent",
        json!("live"),
        LIVE,
    )
    .await
    .unwrap();

    // The matrix: one column, three rows, each cell coloured by status.
    let cells = b
        .js(
            "return [...document.querySelectorAll('#matrix td.cell')].map(e => [e.dataset.org, e.dataset.state, e.textContent.trim()])",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        cells,
        json!([
            ["gjovik", "acknowledged", "acknowledged"],
            ["innlandet-fk", "pending", "pending+reminded"],
            ["lillehammer", "delivered", "delivered+reminded"],
        ])
    );
    assert_eq!(colour(&b, &cell("gjovik")).await, "rgb(107, 174, 214)");
    assert_eq!(colour(&b, &cell("lillehammer")).await, "rgb(158, 202, 225)");
    assert_eq!(
        colour(&b, &cell("innlandet-fk")).await,
        "rgb(217, 217, 217)"
    );
    let counts = "return [...document.querySelectorAll('#matrix th.campaign li.count')].map(e => e.textContent.trim())";
    assert_eq!(
        b.js(counts, vec![]).await.unwrap(),
        json!(["1 acknowledged", "1 delivered", "1 pending"])
    );

    // gjovik remediates: the hub records it from the bus, the board sees
    // the store change and the open page updates itself. The marker
    // proves there was no reload (a reload would drop it).
    b.js("window.__noReload = 42; return true", vec![])
        .await
        .unwrap();
    send_status(
        &bus,
        "gjovik",
        RemediationState::Remediated,
        Some("patched 14:05"),
    )
    .await;
    serve_inbox(&h, &mut sightings, &mut desk, &mut inbox, Some(IDLE))
        .await
        .unwrap();
    b.wait_for(
        &format!(
            "return document.querySelector('{}').dataset.state",
            cell("gjovik")
        ),
        json!("remediated"),
        LIVE,
    )
    .await
    .unwrap();
    assert_eq!(
        b.js("return window.__noReload", vec![]).await.unwrap(),
        json!(42)
    );
    assert_eq!(colour(&b, &cell("gjovik")).await, "rgb(49, 163, 84)");
    assert_eq!(
        b.js(counts, vec![]).await.unwrap(),
        json!(["1 delivered", "1 pending", "1 remediated"])
    );
    b.screenshot(&shots().join("matrix.png")).await.unwrap();

    // The campaign page: the member's note is text, not markup.
    b.client
        .goto(&format!("{url}campaign/{}", c.id))
        .await
        .unwrap();
    assert_eq!(
        b.js(
            "return document.querySelectorAll('td.note img, td.note script').length",
            vec![]
        )
        .await
        .unwrap(),
        json!(0)
    );
    let title = b.client.title().await.unwrap();
    assert!(!title.contains("pwned"), "{title}");
    let notes = b
        .js(
            "return [...document.querySelectorAll('td.note')].map(e => e.textContent)",
            vec![],
        )
        .await
        .unwrap();
    assert!(notes.to_string().contains("patched 14:05"), "{notes}");
    b.screenshot(&shots().join("campaign.png")).await.unwrap();

    // The per-organisation pages.
    b.client
        .goto(&format!("{url}org/lillehammer"))
        .await
        .unwrap();
    let last = text(&b, "#last-delivered").await;
    assert!(
        last.contains(&Timestamp::now().strftime("%Y-%m-%d").to_string()),
        "{last}"
    );
    assert!(text(&b, "#org-received").await.contains(ABOUT));
    assert!(
        text(&b, "#org-campaigns")
            .await
            .contains("delivered+reminded")
    );
    b.client.goto(&format!("{url}org/gjovik")).await.unwrap();
    let incidents = text(&b, "#org-incidents").await;
    assert!(
        incidents.contains("Phishing wave against payroll") && !incidents.contains("Fake"),
        "{incidents}"
    );
    assert!(text(&b, "#org-campaigns").await.contains("remediated"));
    b.screenshot(&shots().join("org-gjovik.png")).await.unwrap();

    // Exports, as the CSIRT downloads them.
    let http = reqwest::Client::new();
    let csv = http
        .get(format!("{url}campaign/{}/export.csv", c.id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("org,status,"), "{csv}");
    assert!(csv.contains("gjovik,remediated,0,"), "{csv}");
    assert!(csv.contains("lillehammer,delivered,1,"), "{csv}");
    let json: Value = http
        .get(format!("{url}campaign/{}/export.json", c.id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json["counts"],
        json!({"delivered": 1, "pending": 1, "remediated": 1})
    );

    // Abuse: a page elsewhere that rebinds its name to 127.0.0.1 gets
    // nothing; security headers are on every answer.
    let rebound = raw_get(plain.addr(), "evil.example:8480", "/").await;
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    let home = raw_get(plain.addr(), &plain.addr().to_string(), "/").await;
    assert!(home.starts_with("HTTP/1.1 200"), "{home}");
    assert!(home.contains("content-security-policy: default-src 'none'; script-src 'self'"));

    // A restart shows the same picture (it is all in the store).
    drop(plain);
    let again = board(&store, None).await;
    let fragment = http
        .get(format!("{}fragment/matrix", again.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        fragment.contains(r#"data-org="gjovik" data-campaign"#)
            && fragment.contains(r#"data-state="remediated""#),
        "{fragment}"
    );
    drop(again);

    // Exposed: TLS with client certificates from the CSIRT's CA (here the
    // development CA of `varde nats tls-dev`).
    let pki = tempfile::tempdir().unwrap();
    varde_cli::provision::dev_ca::make(pki.path(), &[], &["operator".to_string()]).unwrap();
    let ca = pki.path().join("ca.pem");
    let secure = board(
        &store,
        Some(TlsFiles {
            cert: pki.path().join("server.pem"),
            key: pki.path().join("server-key.pem"),
            client_ca: ca.clone(),
        }),
    )
    .await;
    // The browser has no client certificate: refused in the handshake,
    // nothing of the board reaches it.
    let nav = b.client.goto(&secure.url()).await;
    let shown = b
        .js(
            "return document.querySelector('#matrix, #live') === null",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!(true), "navigation: {nav:?}");
    // Chromium's own error page (the server's certificate is accepted by
    // the session, so what fails is the client certificate it lacks).
    let error_page = text(&b, "body").await;
    assert!(error_page.contains("ERR_"), "{error_page}");
    b.screenshot(&shots().join("refused-without-certificate.png"))
        .await
        .unwrap();
    // A client without a certificate is refused; with the operator's it
    // reads the board.
    let without = tls_get(secure.addr(), &ca, None).await;
    eprintln!("without a client certificate: {without:?}; browser navigation: {nav:?}");
    assert!(
        matches!(&without, Err(e) if e.contains("CertificateRequired")),
        "{without:?}"
    );
    let with = tls_get(
        secure.addr(),
        &ca,
        Some((
            &pki.path().join("client-operator.pem"),
            &pki.path().join("client-operator-key.pem"),
        )),
    )
    .await
    .unwrap();
    assert!(with.starts_with("HTTP/1.1 200"), "{with}");
    assert!(with.contains("Open campaigns"), "{with}");
    eprintln!("board screenshots in {}", shots().display());
}
