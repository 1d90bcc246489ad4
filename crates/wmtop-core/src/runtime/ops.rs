//! Operations endpoints: `/health` (JSON: status, connections, counts, last flush) and
//! `/metrics` (OpenMetrics text, which Prometheus scrapes: lag per partition, rows
//! inserted, flush latency histogram, errors by stage), served on a loopback port in both
//! the monitor and headless mode. Pipeline tasks feed an [`Ops`] as they work; its
//! counters are `prometheus-client` metrics, which /metrics encodes and /health reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::kafka::sampler::LagSample;
use crate::kafka::PartitionLag;
use crate::load::events::Event;

/// Upper bounds (seconds) of the flush latency histogram.
const BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The stages `wmtop_errors_total` counts, each shown from the start (at 0).
const ERROR_STAGES: [&str; 5] = ["keycloak", "api", "kafka", "consume", "clickhouse"];

/// The stages `wmtop_up` shows.
const UP_STAGES: [&str; 2] = ["kafka", "clickhouse"];

/// The content type of the `/metrics` body.
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    topic: String,
    partition: i32,
}

const LOADED: OutcomeLabel = OutcomeLabel { outcome: "loaded" };
const SET_ASIDE: OutcomeLabel = OutcomeLabel {
    outcome: "set_aside",
};

/// The metrics, registered once; the registry holds handles on the same values.
#[derive(Debug)]
struct Metrics {
    registry: Registry,
    lag: Family<LagLabels, Gauge>,
    members: Gauge,
    messages: Counter,
    rows: Counter,
    unchanged: Counter,
    batches: Counter,
    dead_letters: Counter,
    records: Family<OutcomeLabel, Counter>,
    messages_set_aside: Counter,
    errors: Family<StageLabel, Counter>,
    up: Family<StageLabel, Gauge>,
    flush_duration: Histogram,
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            lag: Family::default(),
            members: Gauge::default(),
            messages: Counter::default(),
            rows: Counter::default(),
            unchanged: Counter::default(),
            batches: Counter::default(),
            dead_letters: Counter::default(),
            records: Family::default(),
            messages_set_aside: Counter::default(),
            errors: Family::default(),
            up: Family::default(),
            flush_duration: Histogram::new(BUCKETS),
        };
        // Every label set shown from the start, at 0.
        for outcome in [&LOADED, &SET_ASIDE] {
            let _ = m.records.get_or_create(outcome);
        }
        for stage in ERROR_STAGES {
            let _ = m.errors.get_or_create(&StageLabel { stage });
        }
        for stage in UP_STAGES {
            let _ = m.up.get_or_create(&StageLabel { stage });
        }
        // Help texts without their final period: the registry adds it. Counters are
        // registered without `_total`: the encoder adds it to the sample's name.
        m.registry.register(
            "wmtop_consumer_lag",
            "Messages not yet committed, per partition",
            m.lag.clone(),
        );
        m.registry.register(
            "wmtop_group_members",
            "Members of the consumer group, as the broker describes it (-1: not described)",
            m.members.clone(),
        );
        m.registry.register(
            "wmtop_messages_consumed",
            "Kafka messages consumed and flushed",
            m.messages.clone(),
        );
        m.registry.register(
            "wmtop_rows_inserted",
            "Rows ClickHouse acknowledged",
            m.rows.clone(),
        );
        m.registry.register(
            "wmtop_rows_unchanged",
            "Rows not written because their hour was stored with the same content",
            m.unchanged.clone(),
        );
        m.registry.register(
            "wmtop_batches_flushed",
            "Batches inserted and committed",
            m.batches.clone(),
        );
        m.registry.register(
            "wmtop_dead_letters",
            "Messages and records set aside",
            m.dead_letters.clone(),
        );
        m.registry.register(
            "wmtop_records",
            "Records the consumer took in, by outcome: loaded (stored, or already stored the same) or set aside (each with its reason)",
            m.records.clone(),
        );
        m.registry.register(
            "wmtop_messages_set_aside",
            "Messages set aside whole (not usable at all)",
            m.messages_set_aside.clone(),
        );
        m.registry
            .register("wmtop_errors", "Errors by pipeline stage", m.errors.clone());
        m.registry.register(
            "wmtop_up",
            "Whether the stage is reachable (1) or not (0)",
            m.up.clone(),
        );
        m.registry.register(
            "wmtop_flush_duration_seconds",
            "Time to insert a batch and commit its offsets",
            m.flush_duration.clone(),
        );
        m
    }

    fn up(&self, stage: &'static str) -> bool {
        self.up.get_or_create(&StageLabel { stage }).get() == 1
    }

    fn set_up(&self, stage: &'static str, up: bool) {
        self.up
            .get_or_create(&StageLabel { stage })
            .set(i64::from(up));
    }

    fn error(&self, stage: &'static str) {
        self.errors.get_or_create(&StageLabel { stage }).inc();
    }
}

/// The reload schedule as /health reports it.
#[derive(Debug, Default)]
struct Cycles {
    every: Option<std::time::Duration>,
    last_ok_at: Option<jiff::Timestamp>,
    last_failed_at: Option<jiff::Timestamp>,
    ok: u64,
    failed: u64,
}

/// What the pipeline has done, for the endpoints.
pub struct Ops {
    started_at: jiff::Timestamp,
    topic: String,
    metrics: Metrics,
    last_flush_at: Mutex<Option<jiff::Timestamp>>,
    cycles: Mutex<Cycles>,
    /// Partitions in `wmtop_consumer_lag`, so one no longer sampled is taken out.
    lag_shown: Mutex<BTreeSet<i32>>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex that holds plain values; a panic while it was held leaves them usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ops {
    pub fn new(topic: &str) -> Arc<Ops> {
        Arc::new(Ops {
            started_at: jiff::Timestamp::now(),
            topic: topic.to_string(),
            metrics: Metrics::new(),
            last_flush_at: Mutex::new(None),
            cycles: Mutex::new(Cycles::default()),
            lag_shown: Mutex::new(BTreeSet::new()),
        })
    }

    /// Takes in a pipeline event.
    pub fn observe(&self, e: &Event) {
        let m = &self.metrics;
        match e {
            Event::Flushed {
                rows,
                unchanged,
                messages,
                dead_letters,
                took,
                ..
            } => {
                m.set_up("kafka", true);
                m.set_up("clickhouse", true);
                m.rows.inc_by(*rows as u64);
                m.unchanged.inc_by(*unchanged as u64);
                m.records
                    .get_or_create(&LOADED)
                    .inc_by((*rows + *unchanged) as u64);
                m.messages.inc_by(*messages as u64);
                m.batches.inc();
                m.dead_letters.inc_by(*dead_letters as u64);
                *lock(&self.last_flush_at) = Some(jiff::Timestamp::now());
                m.flush_duration.observe(took.as_secs_f64());
            }
            Event::InsertRetry { .. } => {
                m.set_up("clickhouse", false);
                m.error("clickhouse");
            }
            Event::DeadLettered { whole_message, .. } => {
                m.error("consume");
                if *whole_message {
                    m.messages_set_aside.inc();
                } else {
                    m.records.get_or_create(&SET_ASIDE).inc();
                }
            }
            Event::Stuck(_) => m.error("kafka"),
            Event::Assigned { .. }
            | Event::Paused(_)
            | Event::SchemaDrift(_)
            | Event::Unstuck { .. }
            | Event::Settling { .. }
            | Event::Settled(_) => {}
        }
    }

    /// Records a failure of a stage (one of keycloak, api, kafka, consume, clickhouse).
    pub fn error(&self, stage: &'static str) {
        self.metrics.error(stage);
        if UP_STAGES.contains(&stage) {
            self.metrics.set_up(stage, false);
        }
    }

    /// Reloads run every `every`: /health reports the cycles, and is degraded once one
    /// is overdue by more than an interval.
    pub fn schedule(&self, every: std::time::Duration) {
        lock(&self.cycles).every = Some(every);
    }

    /// A reload's cycle ended, landed (`ok`) or not.
    pub fn cycle_ended(&self, ok: bool) {
        let mut c = lock(&self.cycles);
        let now = Some(jiff::Timestamp::now());
        if ok {
            c.ok += 1;
            c.last_ok_at = now;
        } else {
            c.failed += 1;
            c.last_failed_at = now;
        }
    }

    /// The schedule's part of /health, and whether a cycle is overdue: none succeeded
    /// within two intervals (the one due, and one more).
    fn cycles_json(&self, now: jiff::Timestamp) -> (Option<serde_json::Value>, bool) {
        let c = lock(&self.cycles);
        let Some(every) = c.every else {
            return (None, false);
        };
        let since = c.last_ok_at.unwrap_or(self.started_at);
        let waited = now.duration_since(since).as_secs_f64();
        let overdue = waited > 2.0 * every.as_secs_f64();
        let json = serde_json::json!({
            "reload_every_s": every.as_secs_f64(),
            "last_cycle_ok_at": c.last_ok_at.map(|t| t.to_string()),
            "last_cycle_failed_at": c.last_failed_at.map(|t| t.to_string()),
            "cycles_ok": c.ok,
            "cycles_failed": c.failed,
            "cycle_overdue": overdue,
        });
        (Some(json), overdue)
    }

    /// Marks a stage reachable.
    pub fn connected(&self, stage: &'static str) {
        if UP_STAGES.contains(&stage) {
            self.metrics.set_up(stage, true);
        }
    }

    /// A lag sample: its figures if it has them, and the group's member count. (A
    /// failed sample's error is counted by whoever reports the stage down.)
    pub fn on_sample(&self, sample: &LagSample) {
        self.metrics
            .members
            .set(sample.members.map_or(-1, |n| n as i64));
        if let Ok(rows) = &sample.rows {
            self.set_lag(&rows.iter().map(|r| r.lag.clone()).collect::<Vec<_>>());
        }
    }

    /// A fresh lag sample.
    pub fn set_lag(&self, lag: &[PartitionLag]) {
        let mut shown = lock(&self.lag_shown);
        self.metrics.set_up("kafka", true);
        let labels = |partition| LagLabels {
            topic: self.topic.clone(),
            partition,
        };
        let mut now = BTreeSet::new();
        for p in lag {
            if let Some(n) = p.lag {
                self.metrics.lag.get_or_create(&labels(p.partition)).set(n);
                now.insert(p.partition);
            }
        }
        for gone in shown.difference(&now) {
            self.metrics.lag.remove(&labels(*gone));
        }
        *shown = now;
    }

    /// The `/health` body.
    pub fn health_json(&self) -> String {
        let m = &self.metrics;
        let errors_by_stage: BTreeMap<&str, u64> = ERROR_STAGES
            .iter()
            .map(|stage| (*stage, m.errors.get_or_create(&StageLabel { stage }).get()))
            .filter(|(_, n)| *n > 0)
            .collect();
        let errors: u64 = errors_by_stage.values().sum();
        let (kafka_connected, clickhouse_connected) = (m.up("kafka"), m.up("clickhouse"));
        let (cycles, overdue) = self.cycles_json(jiff::Timestamp::now());
        let status = if kafka_connected && clickhouse_connected && !overdue {
            "ok"
        } else {
            "degraded"
        };
        let mut body = serde_json::json!({
            "status": status,
            "kafka_connected": kafka_connected,
            "clickhouse_connected": clickhouse_connected,
            "events_consumed": m.messages.get(),
            "events_inserted": m.rows.get(),
            "rows_unchanged": m.unchanged.get(),
            "batches_flushed": m.batches.get(),
            "dead_letters": m.dead_letters.get(),
            "errors": errors,
            "errors_by_stage": errors_by_stage,
            "last_flush_at": lock(&self.last_flush_at).map(|t| t.to_string()),
            "started_at": self.started_at.to_string(),
        });
        if let (Some(cycles), Some(map)) = (cycles, body.as_object_mut()) {
            map.insert("reloads".into(), cycles);
        }
        body.to_string()
    }

    /// The `/metrics` body, OpenMetrics text (ending with `# EOF`).
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.metrics.registry)
        {
            tracing::warn!("encoding /metrics failed: {e}");
        }
        out
    }
}

fn respond(ops: &Ops, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/health") => (StatusCode::OK, "application/json", ops.health_json()),
        ("GET", "/metrics") => (StatusCode::OK, METRICS_CONTENT_TYPE, ops.metrics_text()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /health or /metrics\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Serves `/health` and `/metrics` until `stop` turns true.
pub async fn serve(listener: TcpListener, ops: Arc<Ops>, mut stop: watch::Receiver<bool>) {
    let handler = move |req: Request<hyper::body::Incoming>| {
        let resp = respond(&ops, &req);
        async move { resp }
    };
    let shutdown = async move {
        let _ = stop.wait_for(|v| *v).await;
    };
    if let Err(e) =
        crate::net::http::serve(listener, handler, shutdown, "operations endpoints").await
    {
        tracing::warn!("operations endpoints stopped: {e}");
    }
}

/// Feeds the lag sampler's samples to `ops` until the sampler stops.
pub fn follow_lag(
    ops: Arc<Ops>,
    mut samples: watch::Receiver<Option<crate::kafka::sampler::LagSample>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while samples.changed().await.is_ok() {
            let sample = samples.borrow_and_update().clone();
            if let Some(sample) = sample {
                ops.on_sample(&sample);
                if sample.rows.is_err() {
                    ops.error("kafka");
                }
            }
        }
    })
}

/// Binds the endpoints at `addr` ("off" disables them) and serves in the background.
/// A port that cannot be bound is a warning, not a failure of the pipeline.
pub async fn start(
    addr: &str,
    ops: Arc<Ops>,
    stop: watch::Receiver<bool>,
) -> Option<std::net::SocketAddr> {
    if addr.eq_ignore_ascii_case("off") || addr.is_empty() {
        return None;
    }
    match TcpListener::bind(addr).await {
        Ok(l) => {
            let bound = l.local_addr().ok();
            tokio::spawn(serve(l, ops, stop));
            if let Some(a) = bound {
                tracing::info!("operations endpoints at http://{a}/health and /metrics");
            }
            bound
        }
        Err(e) => {
            tracing::warn!("operations endpoints not started: cannot listen on {addr}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn flushes_feed_health_and_metrics() {
        let ops = Ops::new("topic_a");
        ops.observe(&Event::Flushed {
            rows: 100,
            unchanged: 7,
            replaced: 0,
            messages: 3,
            bytes: 1000,
            dead_letters: 1,
            took: Duration::from_millis(40),
            retries: 0,
            offsets: vec![],
            per_transaction: vec![],
        });
        ops.observe(&Event::InsertRetry {
            attempt: 1,
            error: "x".into(),
        });
        ops.observe(&Event::DeadLettered {
            partition: 0,
            offset: 1,
            transaction: "t".into(),
            whole_message: false,
            reason: "no usable time".into(),
        });
        ops.set_lag(&[PartitionLag {
            partition: 2,
            committed: Some(5),
            low: 0,
            high: 9,
            lag: Some(4),
        }]);
        let h: serde_json::Value = serde_json::from_str(&ops.health_json()).unwrap();
        assert_eq!(h["events_consumed"], 3);
        assert_eq!(h["events_inserted"], 100);
        assert_eq!(h["batches_flushed"], 1);
        assert_eq!(h["errors"], 2);
        assert_eq!(h["clickhouse_connected"], false);
        assert_eq!(h["status"], "degraded");
        let m = ops.metrics_text();
        assert!(
            m.contains("wmtop_consumer_lag{topic=\"topic_a\",partition=\"2\"} 4\n"),
            "{m}"
        );
        assert!(m.contains("wmtop_rows_inserted_total 100\n"));
        assert!(m.contains("wmtop_rows_unchanged_total 7\n"));
        assert!(
            m.contains("wmtop_records_total{outcome=\"loaded\"} 107\n"),
            "{m}"
        );
        assert!(
            m.contains("wmtop_records_total{outcome=\"set_aside\"} 1\n"),
            "{m}"
        );
        assert!(m.contains("wmtop_flush_duration_seconds_bucket{le=\"0.025\"} 0\n"));
        assert!(m.contains("wmtop_flush_duration_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(m.contains("wmtop_flush_duration_seconds_count 1\n"));
        assert!(m.contains("wmtop_errors_total{stage=\"clickhouse\"} 1\n"));
        assert!(
            m.contains("wmtop_errors_total{stage=\"keycloak\"} 0\n"),
            "{m}"
        );
        assert!(m.contains("wmtop_up{stage=\"clickhouse\"} 0\n"), "{m}");
        assert!(m.contains("wmtop_messages_set_aside_total 0\n"), "{m}");
        assert!(m.ends_with("# EOF\n"), "{m}");
        assert_eq!(h["errors_by_stage"]["clickhouse"], 1);
        assert_eq!(h["errors_by_stage"]["consume"], 1);
        assert!(h["errors_by_stage"].get("kafka").is_none());

        // A partition no longer sampled leaves the lag gauge.
        ops.set_lag(&[PartitionLag {
            partition: 3,
            committed: None,
            low: 0,
            high: 0,
            lag: Some(0),
        }]);
        let m = ops.metrics_text();
        assert!(!m.contains("partition=\"2\""), "{m}");
        assert!(
            m.contains("wmtop_consumer_lag{topic=\"topic_a\",partition=\"3\"} 0\n"),
            "{m}"
        );
    }
}
