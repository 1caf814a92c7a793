//! The board's HTTP side: read-only pages over the campaign store, their
//! fragments for live updates, CSV/JSON exports, and `/events`
//! (server-sent events) that says when the store changed.
//!
//! Every request opens the store read-only for as long as it renders, so
//! the board never holds a transaction the hub would wait on, and nothing
//! it serves is older than the request.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use jiff::Timestamp;
use maud::Markup;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use varde_campaign::{Picture, Store, StoreError};
use varde_schemas::OrgId;

use crate::listen::{self, ListenError, TlsFiles, TlsListener};
use crate::page;
use crate::view::{Matrix, OrgPage};

/// What `varde board` is given.
#[derive(Clone, Debug)]
pub struct BoardConfig {
    /// The hub's campaign store (`<state_dir>/campaigns.sqlite`).
    pub store: PathBuf,
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// How often the store is checked for changes.
    pub poll: Duration,
    /// Pages are told to refresh at least this often, so deadlines that
    /// pass show without any change in the store.
    pub refresh: Duration,
}

impl BoardConfig {
    pub fn new(store: PathBuf, listen: SocketAddr) -> BoardConfig {
        BoardConfig {
            store,
            listen,
            tls: None,
            poll: Duration::from_millis(500),
            refresh: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the board stopped: {0}")]
    Serve(std::io::Error),
}

#[derive(Clone)]
struct AppState {
    store: Arc<PathBuf>,
    version: watch::Receiver<u64>,
    /// Plain HTTP on loopback: only loopback names in `Host`, so a web
    /// page elsewhere cannot rebind its name to 127.0.0.1 and read the
    /// board through the operator's browser.
    loopback_names_only: bool,
}

/// A running board; dropping it stops it.
pub struct Board {
    addr: SocketAddr,
    tls: bool,
    server: JoinHandle<std::io::Result<()>>,
    watcher: JoinHandle<()>,
}

impl Board {
    pub async fn start(cfg: BoardConfig) -> Result<Board, BoardError> {
        listen::check_exposure(cfg.listen, cfg.tls.as_ref())?;
        let tls = cfg.tls.as_ref().map(listen::server_config).transpose()?;
        if !cfg.store.exists() {
            // Nothing recorded yet: an empty store (as the hub makes), so
            // the board shows "no campaigns" and picks up the hub's writes.
            Store::open(&cfg.store)?;
        }
        // Fails now, with the path, if the store cannot be read.
        let first = Store::open_read_only(&cfg.store)?;
        drop(first);
        let (tx, version) = watch::channel(0u64);
        let watcher = tokio::spawn(watch_store(cfg.store.clone(), tx, cfg.poll, cfg.refresh));
        let state = AppState {
            store: Arc::new(cfg.store.clone()),
            version,
            loopback_names_only: tls.is_none(),
        };
        let app = router(state);
        let tcp = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| ListenError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = tcp.local_addr().map_err(BoardError::Serve)?;
        let server = match tls {
            Some(tls) => {
                let l = TlsListener::new(tcp, Arc::new(tls)).map_err(BoardError::Serve)?;
                tokio::spawn(async move { axum::serve(l, app).await })
            }
            None => tokio::spawn(async move { axum::serve(tcp, app).await }),
        };
        tracing::info!(%addr, tls = cfg.tls.is_some(), store = %cfg.store.display(), "board listening");
        Ok(Board {
            addr,
            tls: cfg.tls.is_some(),
            server,
            watcher,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:8480/`, or `https://…` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
    }

    /// Serves until the server fails.
    pub async fn wait(mut self) -> Result<(), BoardError> {
        match (&mut self.server).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BoardError::Serve(e)),
            Err(e) => Err(BoardError::Serve(std::io::Error::other(e))),
        }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        self.server.abort();
        self.watcher.abort();
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|s: State<AppState>| matrix(s, Shape::Page)))
        .route(
            "/fragment/matrix",
            get(|s: State<AppState>| matrix(s, Shape::Fragment)),
        )
        .route(
            "/org/{org}",
            get(|s: State<AppState>, p: Path<String>| org(s, p, Shape::Page)),
        )
        .route(
            "/fragment/org/{org}",
            get(|s: State<AppState>, p: Path<String>| org(s, p, Shape::Fragment)),
        )
        .route(
            "/campaign/{id}",
            get(|s: State<AppState>, p: Path<String>| campaign(s, p, Shape::Page)),
        )
        .route(
            "/fragment/campaign/{id}",
            get(|s: State<AppState>, p: Path<String>| campaign(s, p, Shape::Fragment)),
        )
        .route("/campaign/{id}/export.csv", get(export_csv))
        .route("/campaign/{id}/export.json", get(export_json))
        .route("/events", get(events))
        .route(
            "/assets/board.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/assets/board.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

const CSS: &str = include_str!("../assets/board.css");
const JS: &str = include_str!("../assets/board.js");

/// Only our own script and style, no framing, no caching, no referrer.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if st.loopback_names_only && !loopback_host(req.headers().get(header::HOST)) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this board answers only to 127.0.0.1, ::1 or localhost\n",
        )
            .into_response();
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn loopback_host(h: Option<&HeaderValue>) -> bool {
    let Some(h) = h.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = match h.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => h.rsplit_once(':').map_or(h, |(name, _)| name),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[derive(Clone, Copy)]
enum Shape {
    Page,
    Fragment,
}

fn shaped(shape: Shape, title: &str, fragment: &str, body: Markup) -> Response {
    match shape {
        Shape::Page => page::frame(title, fragment, body).into_response(),
        Shape::Fragment => body.into_response(),
    }
}

/// Runs `f` on the store, opened read-only, off the async threads.
async fn read<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&Store, Timestamp) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let path = st.store.clone();
    let done = tokio::task::spawn_blocking(move || {
        let s = Store::open_read_only(&path)?;
        f(&s, Timestamp::now())
    })
    .await;
    match done {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "board: cannot read the campaign store");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "the campaign store cannot be read; see the board's log\n",
            )
                .into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "board: a read failed");
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

fn not_found(shape: Shape, what: String) -> Response {
    let mut r = shaped(
        shape,
        "Not found",
        "/fragment/matrix",
        page::not_found(&what),
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

async fn matrix(State(st): State<AppState>, shape: Shape) -> Response {
    match read(&st, Matrix::of).await {
        Ok(m) => shaped(
            shape,
            "Open campaigns",
            "/fragment/matrix",
            page::matrix(&m),
        ),
        Err(r) => r,
    }
}

async fn org(State(st): State<AppState>, Path(org): Path<String>, shape: Shape) -> Response {
    let Ok(id) = OrgId::new(&org) else {
        return not_found(shape, "That is not an organisation id.".into());
    };
    let lookup = id.clone();
    match read(&st, move |s, now| OrgPage::of(s, &lookup, now)).await {
        Ok(Some(o)) => shaped(
            shape,
            id.as_str(),
            &format!("/fragment/org/{id}"),
            page::org(&o),
        ),
        Ok(None) => not_found(shape, format!("The CSIRT has no record of {id}.")),
        Err(r) => r,
    }
}

async fn picture(st: &AppState, key: String) -> Result<Option<Picture>, Response> {
    read(st, move |s, now| match s.find(&key)? {
        Some(c) => Picture::of(s, &c, now).map(Some),
        None => Ok(None),
    })
    .await
}

async fn campaign(State(st): State<AppState>, Path(id): Path<String>, shape: Shape) -> Response {
    match picture(&st, id).await {
        Ok(Some(p)) => shaped(
            shape,
            &p.campaign.about,
            &format!("/fragment/campaign/{}", p.campaign.id),
            page::campaign(&p),
        ),
        Ok(None) => not_found(shape, "No such campaign.".into()),
        Err(r) => r,
    }
}

/// `campaign-KCSIRT-2026-0042.csv`: only characters safe in a header.
fn file_name(p: &Picture, ext: &str) -> String {
    let about: String = p
        .campaign
        .about
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("attachment; filename=\"campaign-{about}.{ext}\"")
}

fn download(p: &Picture, ext: &str, content_type: &'static str, body: String) -> Response {
    let disposition =
        HeaderValue::from_str(&file_name(p, ext)).unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

async fn export_csv(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match picture(&st, id).await {
        Ok(Some(p)) => match p.to_csv() {
            Ok(csv) => download(&p, "csv", "text/csv; charset=utf-8", csv),
            Err(e) => {
                tracing::error!(error = %e, "board: CSV export failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(r) => r,
    }
}

async fn export_json(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match picture(&st, id).await {
        Ok(Some(p)) => match serde_json::to_string_pretty(&p) {
            Ok(json) => download(&p, "json", "application/json", json),
            Err(e) => {
                tracing::error!(error = %e, "board: JSON export failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(r) => r,
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `changed` with a counter: at once (so a page that reconnects catches
/// up), then after every change of the store.
async fn events(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold((st.version, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let v = *rx.borrow_and_update();
        let ev = Event::default().event("changed").data(v.to_string());
        Some((Ok(ev), (rx, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Bumps the version when another connection (the hub) committed to the
/// store, and at least every `refresh`.
async fn watch_store(path: PathBuf, tx: watch::Sender<u64>, poll: Duration, refresh: Duration) {
    let mut store: Option<Store> = None;
    let mut last: Option<i64> = None;
    let mut bumped = Instant::now();
    loop {
        tokio::time::sleep(poll).await;
        if store.is_none() {
            match Store::open_read_only(&path) {
                Ok(s) => store = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "board: cannot open the campaign store; retrying");
                    continue;
                }
            }
        }
        let seen = match store.as_ref().map(Store::data_version) {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "board: cannot read the campaign store; reopening");
                store = None;
                continue;
            }
            None => continue,
        };
        let changed = last.is_some_and(|l| l != seen);
        last = Some(seen);
        if changed || bumped.elapsed() >= refresh {
            tx.send_modify(|v| *v += 1);
            bumped = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_pass() {
        let ok = [
            "127.0.0.1:8480",
            "localhost:8480",
            "LOCALHOST",
            "[::1]:8480",
            "127.0.0.2",
        ];
        for h in ok {
            assert!(loopback_host(Some(&HeaderValue::from_static(h))), "{h}");
        }
        let bad = [
            "evil.example:8480",
            "10.0.0.1",
            "[2001:db8::1]:80",
            "",
            "localhost.evil.example",
        ];
        for h in bad {
            assert!(!loopback_host(Some(&HeaderValue::from_static(h))), "{h}");
        }
        assert!(!loopback_host(None));
    }
}
