//! The durable consumers, one per provisioned user on each scope stream it
//! reads, all of the user's name. Reconciled in place: a consumer whose
//! settings changed is updated, which keeps its position and unacknowledged
//! messages. An org that joins a group gets a consumer on the group's
//! stream that starts at its first message (envelopes from before it
//! joined are not sealed to it and are skipped as not for it); one that
//! leaves a group loses that consumer. Only consumers provisioning made
//! (marked in their metadata) are ever deleted; ephemeral `tail` consumers
//! and others are left alone.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream::{self, consumer};
use futures::TryStreamExt;

use super::ProvisionError;
use super::plan::{Member, Plan};

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

/// The consumers provisioning wants for `m`, by stream: the same settings
/// a member's `Inbox` would use, plus the provisioning mark.
pub fn configs_for(m: &Member) -> Vec<(String, consumer::pull::Config)> {
    m.consumers()
        .into_iter()
        .map(|(stream, mut c)| {
            c.description = Some(format!("Varde: {} of {}", m.role, m.org));
            c.metadata = [
                (MARK.to_string(), "true".to_string()),
                ("varde-org".to_string(), m.org.to_string()),
            ]
            .into_iter()
            .collect();
            (stream, c)
        })
        .collect()
}

fn err<'a>(op: &'static str, name: &'a str) -> impl Fn(String) -> ProvisionError + 'a {
    move |detail| ProvisionError::Consumer {
        op,
        name: name.to_string(),
        detail,
    }
}

/// How a consumer is named in reports: `<user> on <stream>`.
fn label(name: &str, stream: &str) -> String {
    format!("{name} on {stream}")
}

/// Every scope stream on the broker, by name.
async fn streams(js: &jetstream::Context) -> Result<Vec<String>, ProvisionError> {
    let names: Vec<String> = js
        .stream_names()
        .try_collect()
        .await
        .map_err(|e| err("list streams", "all")(e.to_string()))?;
    Ok(names
        .into_iter()
        .filter(|n| n.starts_with(varde_bus::subject::STREAM_PREFIX))
        .collect())
}

async fn stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<jetstream::stream::Stream, ProvisionError> {
    js.get_stream(name)
        .await
        .map_err(|e| ProvisionError::Consumer {
            op: "find stream",
            name: name.into(),
            detail: format!(
                "{e} (run `varde bus init` and push the directory with the operator's credentials first)"
            ),
        })
}

/// Existing consumers on a stream by name.
async fn existing(
    stream: &jetstream::stream::Stream,
    name: &str,
) -> Result<BTreeMap<String, consumer::Info>, ProvisionError> {
    let infos: Vec<consumer::Info> = stream
        .consumers()
        .try_collect()
        .await
        .map_err(|e| err("list", name)(e.to_string()))?;
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
    let mut wanted: BTreeMap<String, Vec<(&Member, consumer::pull::Config)>> = BTreeMap::new();
    for m in &plan.members {
        for (s, c) in configs_for(m) {
            wanted.entry(s).or_default().push((m, c));
        }
    }
    let mut report = ConsumerReport::default();
    for (name, members) in wanted {
        let stream = stream(js, &name).await?;
        let have = existing(&stream, &name).await?;
        for (m, want) in members {
            let what = label(m.durable(), &name);
            match have.get(m.durable()) {
                None => {
                    stream
                        .create_consumer(want)
                        .await
                        .map_err(|e| err("create", &what)(e.to_string()))?;
                    report.created.push(what);
                }
                Some(info) if differs(&info.config, &want) => {
                    stream.update_consumer(want).await.map_err(|e| {
                        err("update", &what)(format!(
                            "{e} (if its settings cannot be changed in place, delete the consumer and run provisioning again)"
                        ))
                    })?;
                    report.updated.push(what);
                }
                Some(_) => report.unchanged.push(what),
            }
        }
    }
    Ok(report)
}

/// Deletes consumers provisioning made whose user is gone or no longer
/// reads that stream. Run after the server dropped those users.
pub async fn retire(js: &jetstream::Context, plan: &Plan) -> Result<Vec<String>, ProvisionError> {
    let keep: BTreeSet<(String, String)> = plan
        .members
        .iter()
        .flat_map(|m| {
            m.streams()
                .into_iter()
                .map(|s| (s, m.durable().to_string()))
        })
        .collect();
    let mut deleted = Vec::new();
    for name in streams(js).await? {
        let stream = stream(js, &name).await?;
        for (consumer, info) in existing(&stream, &name).await? {
            let ours = info.config.metadata.get(MARK).is_some_and(|v| v == "true");
            if ours && !keep.contains(&(name.clone(), consumer.clone())) {
                let what = label(&consumer, &name);
                stream
                    .delete_consumer(&consumer)
                    .await
                    .map_err(|e| err("delete", &what)(e.to_string()))?;
                deleted.push(what);
            }
        }
    }
    Ok(deleted)
}
