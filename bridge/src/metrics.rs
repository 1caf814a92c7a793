//! Prometheus `/metrics` (OpenMetrics text) and `/healthz` on a loopback
//! port. Labels carry room names, kinds and reasons, never content.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use varde_bus::inbox::InboxStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoomKind {
    pub room: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoomReason {
    pub room: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoomLabel {
    pub room: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Every metric of a running bridge.
pub struct Metrics {
    registry: Registry,
    pub posted: Family<RoomKind, Counter>,
    pub withheld: Family<RoomReason, Counter>,
    pub retries: Family<RoomReason, Counter>,
    pub parked: Family<RoomLabel, Gauge>,
    pub digests: Family<RoomLabel, Counter>,
    pub released: Family<RoomLabel, Counter>,
    /// Bus messages refused by the bridge's own trust checks (a payload
    /// speaking for another org, an edit of someone else's words, …).
    pub refused: Family<ReasonLabel, Counter>,
    /// Panics caught in a task that then went on (a bug met by some
    /// input; the message is withheld or dropped, the task survives).
    pub panics: Family<ReasonLabel, Counter>,
    pub delivery_seconds: Histogram,
    pub oldest_in_flight_seconds: Gauge,
    pub in_flight: Gauge,
    pub cross_signed: Gauge,
    inbox: Arc<InboxSlot>,
    pub health: Arc<Health>,
}

/// What `/healthz` looks at.
#[derive(Debug, Default)]
pub struct Health {
    /// Unix ms of the last successful Matrix sync.
    pub last_sync_ms: AtomicI64,
    pub bus_connected: AtomicBool,
    /// Unix ms of the last message read from the bus.
    pub last_bus_ms: AtomicI64,
}

impl Health {
    /// `Err(reason)` when the bridge cannot do its job right now.
    pub fn check(&self, now_ms: i64) -> Result<(), &'static str> {
        if !self.bus_connected.load(Ordering::Relaxed) {
            return Err("not connected to the bus");
        }
        let last = self.last_sync_ms.load(Ordering::Relaxed);
        if last == 0 || now_ms - last > 90_000 {
            return Err("no successful Matrix sync in the last 90 s");
        }
        Ok(())
    }
}

/// The inbox counters, filled in once the bus consumer is open.
#[derive(Debug, Default)]
struct InboxSlot(std::sync::Mutex<Option<Arc<InboxStats>>>);

impl Collector for InboxSlot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Ok(());
        };
        // Names without the `varde_bridge_` prefix: the registry adds it
        // to collectors' metrics too.
        let counter = |encoder: &mut DescriptorEncoder, name, help, v: u64| {
            let c = ConstCounter::new(v);
            let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(m)
        };
        counter(
            &mut encoder,
            "bus_opened",
            "Envelopes received and opened",
            InboxStats::get(&stats.opened),
        )?;
        counter(
            &mut encoder,
            "bus_duplicates",
            "Envelopes dropped as replays of one already received",
            InboxStats::get(&stats.duplicates),
        )?;
        counter(
            &mut encoder,
            "bus_terminated",
            "Envelopes that can never be opened, terminated on the broker",
            InboxStats::get(&stats.terminated),
        )?;
        let pending = ConstGauge::new(InboxStats::get(&stats.pending) as i64);
        let m = encoder.encode_descriptor(
            "bus_lag_messages",
            "Messages waiting on the broker for this bridge's consumer",
            None,
            pending.metric_type(),
        )?;
        pending.encode(m)?;
        let refused = stats.refused_by_reason();
        let mut m = encoder.encode_descriptor(
            "bus_refused",
            "Envelopes refused, by reason",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (reason, n) in refused {
            let labels = ReasonLabel {
                reason: reason.to_string(),
            };
            ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("varde_bridge");
        let posted = Family::<RoomKind, Counter>::default();
        registry.register("posted", "Messages posted into rooms", posted.clone());
        let withheld = Family::<RoomReason, Counter>::default();
        registry.register(
            "withheld",
            "Messages withheld from a room, by reason",
            withheld.clone(),
        );
        let retries = Family::<RoomReason, Counter>::default();
        registry.register(
            "retries",
            "Matrix requests retried, by reason (rate_limited, server_error, network, forbidden, …)",
            retries.clone(),
        );
        let parked = Family::<RoomLabel, Gauge>::default();
        registry.register(
            "parked",
            "Messages parked in the bridge's store for a room that keeps failing",
            parked.clone(),
        );
        let digests = Family::<RoomLabel, Counter>::default();
        registry.register("digests", "Indicator digests posted", digests.clone());
        let released = Family::<RoomLabel, Counter>::default();
        registry.register(
            "released",
            "Withheld messages posted by `varde-bridge release`",
            released.clone(),
        );
        let refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "refused",
            "Bus messages refused by the bridge's trust checks, by reason",
            refused.clone(),
        );
        let panics = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "panics",
            "Panics caught in a bridge task, by task; the task went on",
            panics.clone(),
        );
        let delivery_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register(
            "delivery_seconds",
            "Time from a message's creation to its event id in a room",
            delivery_seconds.clone(),
        );
        let oldest_in_flight_seconds = Gauge::default();
        registry.register(
            "oldest_in_flight_seconds",
            "Age of the oldest bus message not yet delivered to all its rooms (lag)",
            oldest_in_flight_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Bus messages being delivered (not yet acked)",
            in_flight.clone(),
        );
        let cross_signed = Gauge::default();
        registry.register(
            "device_cross_signed",
            "1 when the bot's device is signed by its cross-signing identity",
            cross_signed.clone(),
        );
        let inbox = Arc::new(InboxSlot::default());
        registry.register_collector(Box::new(inbox.clone()));
        Arc::new(Metrics {
            registry,
            posted,
            withheld,
            retries,
            parked,
            digests,
            released,
            refused,
            panics,
            delivery_seconds,
            oldest_in_flight_seconds,
            in_flight,
            cross_signed,
            inbox,
            health: Arc::new(Health::default()),
        })
    }

    /// Messages waiting on the broker for the bridge's consumer.
    pub fn lag(&self) -> Option<u64> {
        let stats = self
            .inbox
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(InboxStats::get(&stats.pending))
    }

    /// Exposes the bus consumer's counters.
    pub fn watch_inbox(&self, stats: Arc<InboxStats>) {
        *self.inbox.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats);
    }

    pub fn posted(&self, room: &str, kind: &str) {
        self.posted
            .get_or_create(&RoomKind {
                room: room.into(),
                kind: kind.into(),
            })
            .inc();
    }

    pub fn withheld(&self, room: &str, reason: &str) {
        self.withheld
            .get_or_create(&RoomReason {
                room: room.into(),
                reason: reason.into(),
            })
            .inc();
    }

    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn panicked(&self, task: &str) {
        self.panics
            .get_or_create(&ReasonLabel {
                reason: task.into(),
            })
            .inc();
    }

    pub fn retry(&self, room: &str, reason: &str) {
        self.retries
            .get_or_create(&RoomReason {
                room: room.into(),
                reason: reason.into(),
            })
            .inc();
    }

    pub fn set_parked(&self, room: &str, n: u64) {
        self.parked
            .get_or_create(&RoomLabel { room: room.into() })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Serves `/metrics` and `/healthz` on `addr` until the task is dropped.
    pub async fn serve(self: Arc<Self>, addr: SocketAddr) -> std::io::Result<()> {
        use axum::http::{StatusCode, header};
        use axum::routing::get;
        let me = self.clone();
        let health = self.health.clone();
        let app = axum::Router::new()
            .route(
                "/metrics",
                get(move || {
                    let me = me.clone();
                    async move {
                        (
                            [(
                                header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            me.encode(),
                        )
                    }
                }),
            )
            .route(
                "/healthz",
                get(move || {
                    let health = health.clone();
                    async move {
                        match health.check(crate::store::now_ms()) {
                            Ok(()) => (StatusCode::OK, "ok\n".to_string()),
                            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                        }
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(%addr, "serving /metrics and /healthz");
        axum::serve(listener, app).await
    }
}

/// Seconds as f64 → whole seconds for a gauge.
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let m = Metrics::new();
        m.posted("soc", "advisory");
        m.withheld("soc", "not_encrypted");
        m.watch_inbox(Arc::new(InboxStats::default()));
        let text = m.encode();
        assert!(
            text.contains("varde_bridge_posted_total{room=\"soc\",kind=\"advisory\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("varde_bridge_withheld_total{room=\"soc\",reason=\"not_encrypted\"} 1")
        );
        assert!(
            text.lines().any(|l| l == "varde_bridge_bus_lag_messages 0"),
            "{text}"
        );
        assert!(!text.contains("varde_bridge_varde_bridge"), "{text}");
        assert!(m.health.check(1).is_err());
    }
}
