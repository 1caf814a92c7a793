//! A plain client-server API client for the bench: the baseline sender
//! and the second account whose sync measures arrival.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use matrix_sdk::reqwest;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Plain {
    http: reqwest::Client,
    pub base: String,
    pub user_id: String,
    pub token: String,
}

static TXN: AtomicU64 = AtomicU64::new(0);

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.with_context(|| url.to_string())?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

impl Plain {
    /// Registers `localpart` with the dummy flow (open registration).
    pub async fn register(base: &str, localpart: &str, password: &str) -> anyhow::Result<Plain> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let url = format!("{base}/_matrix/client/v3/register");
        let mut body = json!({
            "username": localpart,
            "password": password,
            "auth": { "type": "m.login.dummy" },
            "initial_device_display_name": "varde bench",
        });
        let (mut status, mut v) =
            call(&http, reqwest::Method::POST, &url, None, Some(&body)).await?;
        if status == 401
            && let Some(session) = v.get("session").and_then(Value::as_str)
        {
            body["auth"]["session"] = json!(session);
            (status, v) = call(&http, reqwest::Method::POST, &url, None, Some(&body)).await?;
        }
        if status != 200 {
            bail!("registering {localpart}: HTTP {status} {v}");
        }
        let get = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("register: no {k}"))
        };
        Ok(Plain {
            http,
            base: base.to_string(),
            user_id: get("user_id")?,
            token: get("access_token")?,
        })
    }

    async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/_matrix/client/v3/{path}", self.base);
        let (status, v) = call(&self.http, method, &url, Some(&self.token), body).await?;
        if !(200..300).contains(&status) {
            bail!("{path}: HTTP {status} {v}");
        }
        Ok(v)
    }

    pub async fn create_room(&self, name: &str, invite: &[&str]) -> anyhow::Result<String> {
        let v = self
            .req(
                reqwest::Method::POST,
                "createRoom",
                Some(&json!({ "name": name, "preset": "private_chat", "invite": invite })),
            )
            .await?;
        v.get("room_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("createRoom: no room_id")
    }

    pub async fn joined_members(&self, room: &str) -> anyhow::Result<Vec<String>> {
        let v = self
            .req(
                reqwest::Method::GET,
                &format!("rooms/{}/joined_members", urlencoding::encode(room)),
                None,
            )
            .await?;
        Ok(v.get("joined")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }

    pub async fn send(&self, room: &str, content: &Value) -> anyhow::Result<String> {
        let txn = format!(
            "bench-{}-{}",
            std::process::id(),
            TXN.fetch_add(1, Ordering::Relaxed)
        );
        let v = self
            .req(
                reqwest::Method::PUT,
                &format!(
                    "rooms/{}/send/m.room.message/{txn}",
                    urlencoding::encode(room)
                ),
                Some(content),
            )
            .await?;
        v.get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("send: no event_id")
    }

    /// One long-poll sync; returns the next token and the message bodies
    /// per room.
    pub async fn sync(
        &self,
        since: Option<&str>,
        timeout_ms: u64,
    ) -> anyhow::Result<(String, Vec<(String, String)>)> {
        let filter = json!({
            "room": {
                "timeline": { "limit": 1000, "types": ["m.room.message"] },
                "state": { "lazy_load_members": true },
                "ephemeral": { "types": [] },
                "account_data": { "types": [] }
            },
            "presence": { "types": [] },
            "account_data": { "types": [] }
        })
        .to_string();
        let mut path = format!(
            "sync?timeout={timeout_ms}&filter={}",
            urlencoding::encode(&filter)
        );
        if let Some(s) = since {
            path.push_str(&format!("&since={}", urlencoding::encode(s)));
        }
        let v = self.req(reqwest::Method::GET, &path, None).await?;
        let next = v
            .get("next_batch")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut out = Vec::new();
        if let Some(rooms) = v.pointer("/rooms/join").and_then(Value::as_object) {
            for (room, r) in rooms {
                if let Some(events) = r.pointer("/timeline/events").and_then(Value::as_array) {
                    for e in events {
                        if let Some(body) = e.pointer("/content/body").and_then(Value::as_str) {
                            out.push((room.clone(), body.to_string()));
                        }
                    }
                }
            }
        }
        Ok((next, out))
    }
}
