//! A small, plain Matrix client-server API client over reqwest, for tests
//! that act as "another account". The bridge owns matrix-sdk; this is not it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use reqwest::{Method, Url};
use serde_json::{Value, json};

/// Timeout for one request that does not long-poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A non-2xx answer from the homeserver. Downcast an `anyhow::Error` to this
/// to check the `errcode`.
#[derive(Debug, Clone)]
pub struct MatrixError {
    pub method: String,
    /// The request path (no query).
    pub path: String,
    pub status: u16,
    /// The Matrix `errcode` (e.g. `M_FORBIDDEN`), when the body had one.
    pub errcode: Option<String>,
    /// The Matrix `error` text, when the body had one.
    pub error: Option<String>,
    /// The whole body, `Value::Null` when it was not JSON.
    pub body: Value,
}

impl fmt::Display for MatrixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: HTTP {}", self.method, self.path, self.status)?;
        if let Some(errcode) = &self.errcode {
            write!(f, " {errcode}")?;
        }
        if let Some(error) = &self.error {
            write!(f, ": {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MatrixError {}

/// An HTTP client for talking to servers on loopback: no proxy, ever.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

/// `base_url` + `/_matrix/client/v3/` + the percent-encoded `segments`.
pub(crate) fn client_url(base_url: &str, segments: &[&str]) -> Result<Url> {
    let mut url = Url::parse(base_url).with_context(|| format!("bad base URL {base_url}"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("base URL {base_url} cannot have a path"))?
        .pop_if_empty()
        .extend(["_matrix", "client", "v3"])
        .extend(segments);
    Ok(url)
}

/// Sends one request; a non-2xx answer becomes a [`MatrixError`].
pub(crate) async fn call(
    http: &reqwest::Client,
    method: Method,
    url: Url,
    token: Option<&str>,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Value> {
    let path = url.path().to_owned();
    let mut request = http.request(method.clone(), url).timeout(timeout);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} {path}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("{method} {path}: reading the body"))?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        return Err(MatrixError {
            method: method.to_string(),
            path,
            status: status.as_u16(),
            errcode: text("errcode"),
            error: text("error").or_else(|| {
                value
                    .is_null()
                    .then(|| String::from_utf8_lossy(&bytes).chars().take(200).collect())
            }),
            body: value,
        }
        .into());
    }
    if value.is_null() && !bytes.is_empty() {
        anyhow::bail!("{method} {path}: HTTP {status} with a body that is not JSON");
    }
    Ok(value)
}

/// A unique transaction id for `PUT .../send/{type}/{txnId}`.
fn txn_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "varde-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The string field `key` of a response, or an error naming what was called.
fn field(value: &Value, key: &str, what: &str) -> Result<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{what}: no `{key}` in the answer {value}"))
}

/// A logged-in Matrix account speaking the client-server API directly.
#[derive(Clone)]
pub struct MatrixUser {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub user_id: String,
    pub access_token: String,
    http: reqwest::Client,
}

impl fmt::Debug for MatrixUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatrixUser")
            .field("base_url", &self.base_url)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl MatrixUser {
    pub fn new(
        base_url: impl Into<String>,
        user_id: impl Into<String>,
        access_token: impl Into<String>,
    ) -> Result<Self> {
        Ok(Self {
            base_url: base_url.into(),
            user_id: user_id.into(),
            access_token: access_token.into(),
            http: http_client()?,
        })
    }

    /// An authenticated request to `/_matrix/client/v3/<segments>`.
    pub async fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        self.request_with_timeout(method, segments, query, body, REQUEST_TIMEOUT)
            .await
    }

    async fn request_with_timeout(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value> {
        let mut url = client_url(&self.base_url, segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        call(
            &self.http,
            method,
            url,
            Some(&self.access_token),
            body,
            timeout,
        )
        .await
    }

    /// `POST /createRoom` with `body` as given; returns the room id.
    pub async fn create_room(&self, body: Value) -> Result<String> {
        let answer = self
            .request(Method::POST, &["createRoom"], &[], Some(&body))
            .await?;
        field(&answer, "room_id", "createRoom")
    }

    /// Invites `user_id` into `room_id`.
    pub async fn invite(&self, room_id: &str, user_id: &str) -> Result<()> {
        self.request(
            Method::POST,
            &["rooms", room_id, "invite"],
            &[],
            Some(&json!({ "user_id": user_id })),
        )
        .await?;
        Ok(())
    }

    /// Joins a room by id or alias; returns the room id.
    pub async fn join(&self, room_id_or_alias: &str) -> Result<String> {
        let answer = self
            .request(
                Method::POST,
                &["join", room_id_or_alias],
                &[],
                Some(&json!({})),
            )
            .await?;
        field(&answer, "room_id", "join")
    }

    /// Leaves a room.
    pub async fn leave(&self, room_id: &str) -> Result<()> {
        self.request(
            Method::POST,
            &["rooms", room_id, "leave"],
            &[],
            Some(&json!({})),
        )
        .await?;
        Ok(())
    }

    /// Sends an `m.text` message; returns the event id.
    pub async fn send_text(&self, room_id: &str, body: &str) -> Result<String> {
        self.send_event(
            room_id,
            "m.room.message",
            json!({ "msgtype": "m.text", "body": body }),
        )
        .await
    }

    /// Sends a message event of any type; returns the event id.
    pub async fn send_event(
        &self,
        room_id: &str,
        event_type: &str,
        content: Value,
    ) -> Result<String> {
        let txn = txn_id();
        let answer = self
            .request(
                Method::PUT,
                &["rooms", room_id, "send", event_type, &txn],
                &[],
                Some(&content),
            )
            .await?;
        field(&answer, "event_id", "send")
    }

    /// Sets a state event; returns the event id.
    pub async fn send_state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        content: Value,
    ) -> Result<String> {
        let answer = self
            .request(
                Method::PUT,
                &["rooms", room_id, "state", event_type, state_key],
                &[],
                Some(&content),
            )
            .await?;
        field(&answer, "event_id", "state")
    }

    /// The content of a state event.
    pub async fn get_state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
    ) -> Result<Value> {
        self.request(
            Method::GET,
            &["rooms", room_id, "state", event_type, state_key],
            &[],
            None,
        )
        .await
    }

    /// Turns on Megolm encryption (`m.room.encryption`, `m.megolm.v1.aes-sha2`).
    /// This account can not read what is sent afterwards: it has no E2EE.
    pub async fn enable_encryption(&self, room_id: &str) -> Result<String> {
        self.send_state(
            room_id,
            "m.room.encryption",
            "",
            json!({ "algorithm": "m.megolm.v1.aes-sha2" }),
        )
        .await
    }

    /// Up to `limit` events of the room timeline, newest first
    /// (`GET /rooms/{id}/messages?dir=b`).
    pub async fn messages(&self, room_id: &str, limit: u32) -> Result<Vec<Value>> {
        let limit = limit.to_string();
        let answer = self
            .request(
                Method::GET,
                &["rooms", room_id, "messages"],
                &[("dir", "b"), ("limit", &limit)],
                None,
            )
            .await?;
        match answer.get("chunk") {
            Some(Value::Array(events)) => Ok(events.clone()),
            _ => anyhow::bail!("messages: no `chunk` array in the answer {answer}"),
        }
    }

    /// `GET /sync`, long-polling up to `timeout_ms`; pass the previous
    /// `next_batch` as `since`.
    pub async fn sync(&self, since: Option<&str>, timeout_ms: u64) -> Result<Value> {
        let timeout = timeout_ms.to_string();
        let mut query = vec![("timeout", timeout.as_str())];
        if let Some(since) = since {
            query.push(("since", since));
        }
        self.request_with_timeout(
            Method::GET,
            &["sync"],
            &query,
            None,
            REQUEST_TIMEOUT + Duration::from_millis(timeout_ms),
        )
        .await
    }

    /// The user ids of the joined members, sorted.
    pub async fn joined_members(&self, room_id: &str) -> Result<Vec<String>> {
        let answer = self
            .request(
                Method::GET,
                &["rooms", room_id, "joined_members"],
                &[],
                None,
            )
            .await?;
        let joined = answer
            .get("joined")
            .and_then(Value::as_object)
            .with_context(|| {
                format!("joined_members: no `joined` object in the answer {answer}")
            })?;
        let mut members: Vec<String> = joined.keys().cloned().collect();
        members.sort();
        Ok(members)
    }
}
