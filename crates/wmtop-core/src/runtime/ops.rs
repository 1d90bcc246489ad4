//! Operations endpoints: `/health` (JSON: status, connections, counts, last flush) and
//! `/metrics` (Prometheus text: lag per partition, rows inserted, flush latency histogram,
//! errors by stage), served on a loopback port in both the monitor and headless mode.
//! Pipeline tasks feed an [`Ops`] as they work; the server only reads it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::kafka::PartitionLag;
use crate::load::events::Event;

/// Upper bounds (seconds) of the flush latency histogram.
const BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
struct State {
    kafka_connected: bool,
    clickhouse_connected: bool,
    messages: u64,
    rows: u64,
    unchanged: u64,
    set_aside_records: u64,
    set_aside_messages: u64,
    batches: u64,
    dead_letters: u64,
    errors: BTreeMap<&'static str, u64>,
    last_flush_at: Option<jiff::Timestamp>,
    lag: Vec<PartitionLag>,
    latency_counts: [u64; BUCKETS.len()],
    latency_sum: f64,
}

/// What the pipeline has done, for the endpoints.
pub struct Ops {
    started_at: jiff::Timestamp,
    topic: String,
    state: Mutex<State>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Ops {
    pub fn new(topic: &str) -> Arc<Ops> {
        Arc::new(Ops {
            started_at: jiff::Timestamp::now(),
            topic: topic.to_string(),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters; keep serving them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in a pipeline event.
    pub fn observe(&self, e: &Event) {
        let mut s = self.lock();
        match e {
            Event::Flushed {
                rows,
                unchanged,
                messages,
                dead_letters,
                took,
                ..
            } => {
                s.kafka_connected = true;
                s.clickhouse_connected = true;
                s.rows += *rows as u64;
                s.unchanged += *unchanged as u64;
                s.messages += *messages as u64;
                s.batches += 1;
                s.dead_letters += *dead_letters as u64;
                s.last_flush_at = Some(jiff::Timestamp::now());
                let secs = took.as_secs_f64();
                s.latency_sum += secs;
                for (i, bound) in BUCKETS.iter().enumerate() {
                    if secs <= *bound {
                        s.latency_counts[i] += 1;
                    }
                }
            }
            Event::InsertRetry { .. } => {
                s.clickhouse_connected = false;
                *s.errors.entry("clickhouse").or_default() += 1;
            }
            Event::DeadLettered { whole_message, .. } => {
                *s.errors.entry("consume").or_default() += 1;
                if *whole_message {
                    s.set_aside_messages += 1;
                } else {
                    s.set_aside_records += 1;
                }
            }
            Event::Stuck(_) => *s.errors.entry("kafka").or_default() += 1,
            Event::Assigned { .. }
            | Event::Paused(_)
            | Event::SchemaDrift(_)
            | Event::Unstuck { .. }
            | Event::Settling { .. }
            | Event::Settled(_) => {}
        }
    }

    /// Records a failure of a stage (kafka, clickhouse, api, keycloak).
    pub fn error(&self, stage: &'static str) {
        let mut s = self.lock();
        *s.errors.entry(stage).or_default() += 1;
        match stage {
            "kafka" => s.kafka_connected = false,
            "clickhouse" => s.clickhouse_connected = false,
            _ => {}
        }
    }

    /// Marks a stage reachable.
    pub fn connected(&self, stage: &'static str) {
        let mut s = self.lock();
        match stage {
            "kafka" => s.kafka_connected = true,
            "clickhouse" => s.clickhouse_connected = true,
            _ => {}
        }
    }

    /// A fresh lag sample.
    pub fn set_lag(&self, lag: &[PartitionLag]) {
        let mut s = self.lock();
        s.kafka_connected = true;
        s.lag = lag.to_vec();
    }

    /// The `/health` body.
    pub fn health_json(&self) -> String {
        let s = self.lock();
        let errors: u64 = s.errors.values().sum();
        let status = if s.kafka_connected && s.clickhouse_connected {
            "ok"
        } else {
            "degraded"
        };
        serde_json::json!({
            "status": status,
            "kafka_connected": s.kafka_connected,
            "clickhouse_connected": s.clickhouse_connected,
            "events_consumed": s.messages,
            "events_inserted": s.rows,
            "rows_unchanged": s.unchanged,
            "batches_flushed": s.batches,
            "dead_letters": s.dead_letters,
            "errors": errors,
            "errors_by_stage": s.errors,
            "last_flush_at": s.last_flush_at.map(|t| t.to_string()),
            "started_at": self.started_at.to_string(),
        })
        .to_string()
    }

    /// The `/metrics` body, Prometheus text format 0.0.4.
    pub fn metrics_text(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        let topic = self.topic.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "# HELP wmtop_consumer_lag Messages not yet committed, per partition."
        );
        let _ = writeln!(out, "# TYPE wmtop_consumer_lag gauge");
        for p in &s.lag {
            if let Some(lag) = p.lag {
                let _ = writeln!(
                    out,
                    "wmtop_consumer_lag{{topic=\"{topic}\",partition=\"{}\"}} {lag}",
                    p.partition
                );
            }
        }
        let counters = [
            (
                "wmtop_messages_consumed_total",
                "Kafka messages consumed and flushed.",
                s.messages,
            ),
            (
                "wmtop_rows_inserted_total",
                "Rows ClickHouse acknowledged.",
                s.rows,
            ),
            (
                "wmtop_rows_unchanged_total",
                "Rows not written because their hour was stored with the same content.",
                s.unchanged,
            ),
            (
                "wmtop_batches_flushed_total",
                "Batches inserted and committed.",
                s.batches,
            ),
            (
                "wmtop_dead_letters_total",
                "Messages and records set aside.",
                s.dead_letters,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP wmtop_records_total Records the consumer took in, by outcome: loaded (stored, or already stored the same) or set aside (each with its reason).\n# TYPE wmtop_records_total counter\nwmtop_records_total{{outcome=\"loaded\"}} {}\nwmtop_records_total{{outcome=\"set_aside\"}} {}",
            s.rows + s.unchanged,
            s.set_aside_records
        );
        let _ = writeln!(
            out,
            "# HELP wmtop_messages_set_aside_total Messages set aside whole (not usable at all).\n# TYPE wmtop_messages_set_aside_total counter\nwmtop_messages_set_aside_total {}",
            s.set_aside_messages
        );
        let _ = writeln!(out, "# HELP wmtop_errors_total Errors by pipeline stage.\n# TYPE wmtop_errors_total counter");
        for stage in ["keycloak", "api", "kafka", "consume", "clickhouse"] {
            let n = s.errors.get(stage).copied().unwrap_or(0);
            let _ = writeln!(out, "wmtop_errors_total{{stage=\"{stage}\"}} {n}");
        }
        for (name, up) in [
            ("kafka", s.kafka_connected),
            ("clickhouse", s.clickhouse_connected),
        ] {
            let _ = writeln!(out, "wmtop_up{{stage=\"{name}\"}} {}", u8::from(up));
        }
        let _ = writeln!(
            out,
            "# HELP wmtop_flush_duration_seconds Time to insert a batch and commit its offsets.\n# TYPE wmtop_flush_duration_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "wmtop_flush_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                s.latency_counts[i]
            );
        }
        let _ = writeln!(
            out,
            "wmtop_flush_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            s.batches
        );
        let _ = writeln!(out, "wmtop_flush_duration_seconds_sum {}", s.latency_sum);
        let _ = writeln!(out, "wmtop_flush_duration_seconds_count {}", s.batches);
        out
    }
}

fn respond(ops: &Ops, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/health") => (StatusCode::OK, "application/json", ops.health_json()),
        ("GET", "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            ops.metrics_text(),
        ),
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
            match sample.map(|s| s.rows) {
                Some(Ok(rows)) => ops.set_lag(&rows.into_iter().map(|r| r.lag).collect::<Vec<_>>()),
                Some(Err(_)) => ops.error("kafka"),
                None => {}
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
    }
}
