//! The durable consumers on `VARDE`, one per provisioned user, filtered to
//! what that user's org may read. Reconciled in place: a consumer whose
//! filters changed (the org moved group) is updated, which keeps its
//! position and unacknowledged messages, so nothing is lost or replayed.
//! Only consumers provisioning made (marked in their metadata) are ever
//! deleted; ephemeral `tail` consumers and others are left alone.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream::{self, consumer};
use futures::TryStreamExt;

use super::ProvisionError;
use super::plan::{Member, Plan};
use varde_bus::inbox::InboxConfig;
use varde_bus::transport::STREAM;

/// Metadata key marking a consumer as made by provisioning.
pub const MARK: &str = "varde-provisioned";

/// What reconciliation did, by consumer name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConsumerReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub deleted: Vec<String>,
}

/// The consumer provisioning wants for `m`: the same settings a member's
/// `Inbox` would use, plus the provisioning mark.
pub fn config_for(m: &Member) -> consumer::pull::Config {
    let mut c = InboxConfig::durable(m.durable(), m.filters.clone()).consumer_config();
    c.description = Some(format!("Varde: {} of {}", m.role, m.org));
    c.metadata = [
        (MARK.to_string(), "true".to_string()),
        ("varde-org".to_string(), m.org.to_string()),
    ]
    .into_iter()
    .collect();
    c
}

fn err<'a>(op: &'static str, name: &'a str) -> impl Fn(String) -> ProvisionError + 'a {
    move |detail| ProvisionError::Consumer {
        op,
        name: name.to_string(),
        detail,
    }
}

async fn stream(js: &jetstream::Context) -> Result<jetstream::stream::Stream, ProvisionError> {
    js.get_stream(STREAM)
        .await
        .map_err(|e| ProvisionError::Consumer {
            op: "find stream",
            name: STREAM.into(),
            detail: format!("{e} (run `varde bus init` with the operator's credentials first)"),
        })
}

/// Existing consumers on the stream by name.
async fn existing(
    stream: &jetstream::stream::Stream,
) -> Result<BTreeMap<String, consumer::Info>, ProvisionError> {
    let infos: Vec<consumer::Info> = stream
        .consumers()
        .try_collect()
        .await
        .map_err(|e| err("list", STREAM)(e.to_string()))?;
    Ok(infos.into_iter().map(|i| (i.name.clone(), i)).collect())
}

fn filters_of(c: &consumer::Config) -> BTreeSet<String> {
    let mut f: BTreeSet<String> = c.filter_subjects.iter().cloned().collect();
    if !c.filter_subject.is_empty() {
        f.insert(c.filter_subject.clone());
    }
    f
}

fn differs(have: &consumer::Config, want: &consumer::pull::Config) -> bool {
    filters_of(have) != want.filter_subjects.iter().cloned().collect()
        || have.ack_wait != want.ack_wait
        || have.max_deliver != want.max_deliver
        || have.max_ack_pending != want.max_ack_pending
        || have.description != want.description
        || have.metadata.get(MARK) != want.metadata.get(MARK)
}

/// Creates missing consumers and updates changed ones. Run before the
/// server learns of new users, so a new member can bind at once.
pub async fn ensure(
    js: &jetstream::Context,
    plan: &Plan,
) -> Result<ConsumerReport, ProvisionError> {
    let stream = stream(js).await?;
    let have = existing(&stream).await?;
    let mut report = ConsumerReport::default();
    for m in &plan.members {
        let want = config_for(m);
        match have.get(m.durable()) {
            None => {
                stream
                    .create_consumer(want)
                    .await
                    .map_err(|e| err("create", m.durable())(e.to_string()))?;
                report.created.push(m.name.clone());
            }
            Some(info) if differs(&info.config, &want) => {
                stream.update_consumer(want).await.map_err(|e| {
                    err("update", m.durable())(format!(
                        "{e} (if its settings cannot be changed in place, delete the consumer and run provisioning again)"
                    ))
                })?;
                report.updated.push(m.name.clone());
            }
            Some(_) => report.unchanged.push(m.name.clone()),
        }
    }
    Ok(report)
}

/// Deletes consumers provisioning made whose user is gone. Run after the
/// server dropped those users.
pub async fn retire(js: &jetstream::Context, plan: &Plan) -> Result<Vec<String>, ProvisionError> {
    let stream = stream(js).await?;
    let keep = plan.names();
    let mut deleted = Vec::new();
    for (name, info) in existing(&stream).await? {
        let ours = info.config.metadata.get(MARK).is_some_and(|v| v == "true");
        if ours && !keep.contains(name.as_str()) {
            stream
                .delete_consumer(&name)
                .await
                .map_err(|e| err("delete", &name)(e.to_string()))?;
            deleted.push(name);
        }
    }
    Ok(deleted)
}
