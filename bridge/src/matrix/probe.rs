//! A read-only look at rooms over the plain client-server API, for
//! `varde-bridge check-config`. It uses the bot's access token but never
//! its crypto store or device keys: the running bridge owns those, and two
//! processes must not drive one device's encryption.

use std::time::Duration;

use matrix_sdk::reqwest;
use serde_json::{Value, json};

use crate::config;
use crate::policy::RoomView;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{what}: cannot reach {url}: {detail}")]
    Http {
        what: String,
        url: String,
        detail: String,
    },
    #[error("{what}: HTTP {status} {errcode}")]
    Status {
        what: String,
        status: u16,
        errcode: String,
    },
    #[error(
        "no way to log in: no saved session in {store}, no matrix.password and no matrix.access_token"
    )]
    NoCredentials { store: String },
}

/// A plain client with one access token.
pub struct Probe {
    http: reqwest::Client,
    base: String,
    token: String,
    /// Set when the probe logged in on a device of its own (to log it out).
    own_device: bool,
    pub user_id: String,
}

impl Probe {
    /// Uses the saved session, else the configured token, else logs in
    /// with the password on a throwaway device (logged out by `close`).
    pub async fn connect(cfg: &config::Matrix) -> Result<Probe, ProbeError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ProbeError::Http {
                what: "HTTP client".into(),
                url: String::new(),
                detail: e.to_string(),
            })?;
        let base = cfg.homeserver.as_str().trim_end_matches('/').to_string();
        let saved = std::fs::read(cfg.session_file())
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| {
                v.get("access_token")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        let mut probe = Probe {
            http,
            base,
            token: String::new(),
            own_device: false,
            user_id: cfg.user.clone(),
        };
        if let Some(t) = saved.or_else(|| cfg.access_token.clone()) {
            probe.token = t;
            return Ok(probe);
        }
        let Some(password) = &cfg.password else {
            return Err(ProbeError::NoCredentials {
                store: cfg.store.display().to_string(),
            });
        };
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": cfg.user },
            "password": password,
            "initial_device_display_name": "varde-bridge check-config",
        });
        let r = probe
            .call(
                reqwest::Method::POST,
                "login",
                "/_matrix/client/v3/login",
                Some(body),
            )
            .await?;
        probe.token = r
            .get("access_token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        probe.own_device = true;
        Ok(probe)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        what: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ProbeError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| ProbeError::Http {
            what: what.into(),
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| ProbeError::Http {
            what: what.into(),
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(ProbeError::Status {
                what: what.into(),
                status,
                errcode: v
                    .get("errcode")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            });
        }
        Ok(v)
    }

    pub async fn whoami(&self) -> Result<String, ProbeError> {
        let v = self
            .call(
                reqwest::Method::GET,
                "whoami",
                "/_matrix/client/v3/account/whoami",
                None,
            )
            .await?;
        Ok(v.get("user_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    pub async fn resolve_alias(&self, alias: &str) -> Result<String, ProbeError> {
        let path = format!(
            "/_matrix/client/v3/directory/room/{}",
            urlencoding::encode(alias)
        );
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("resolving {alias}"),
                &path,
                None,
            )
            .await?;
        Ok(v.get("room_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// Encryption and members (joined and invited, without the bot).
    pub async fn view(&self, room_id: &str) -> Result<RoomView, ProbeError> {
        let room = urlencoding::encode(room_id);
        let members = self
            .call(
                reqwest::Method::GET,
                &format!("members of {room_id}"),
                &format!("/_matrix/client/v3/rooms/{room}/members"),
                None,
            )
            .await?;
        let mut list: Vec<String> = members
            .get("chunk")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter(|ev| {
                        matches!(
                            ev.pointer("/content/membership").and_then(Value::as_str),
                            Some("join" | "invite")
                        )
                    })
                    .filter_map(|ev| ev.get("state_key").and_then(Value::as_str))
                    .filter(|u| *u != self.user_id)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        list.sort();
        let encrypted = match self
            .call(
                reqwest::Method::GET,
                &format!("encryption of {room_id}"),
                &format!("/_matrix/client/v3/rooms/{room}/state/m.room.encryption/"),
                None,
            )
            .await
        {
            Ok(v) => v.get("algorithm").is_some(),
            Err(ProbeError::Status { status: 404, .. }) => false,
            Err(e) => return Err(e),
        };
        let join_rule = self
            .state_field(room_id, "m.room.join_rules", "join_rule")
            .await?;
        let history = self
            .state_field(room_id, "m.room.history_visibility", "history_visibility")
            .await?;
        Ok(RoomView {
            encrypted,
            members: list,
            open_to_join: matches!(
                join_rule.as_deref(),
                Some("public" | "restricted" | "knock_restricted")
            ),
            world_readable: history.as_deref() == Some("world_readable"),
        })
    }

    /// One string field of a room state event; `None` when the room has no
    /// such event (the spec's default applies).
    async fn state_field(
        &self,
        room_id: &str,
        event_type: &str,
        field: &str,
    ) -> Result<Option<String>, ProbeError> {
        let room = urlencoding::encode(room_id);
        match self
            .call(
                reqwest::Method::GET,
                &format!("{event_type} of {room_id}"),
                &format!("/_matrix/client/v3/rooms/{room}/state/{event_type}/"),
                None,
            )
            .await
        {
            Ok(v) => Ok(v.get(field).and_then(Value::as_str).map(str::to_owned)),
            Err(ProbeError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Logs out the throwaway device, if the probe made one.
    pub async fn close(self) {
        if self.own_device {
            let _ = self
                .call(
                    reqwest::Method::POST,
                    "logout",
                    "/_matrix/client/v3/logout",
                    Some(json!({})),
                )
                .await;
        }
    }
}
