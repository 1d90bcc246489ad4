//! Shared set-up for the integration tests: settings pointing at the real local stack
//! (`scripts/stack up`) with a fresh topic, group and table per test, an in-process
//! simulator, and helpers to load and to read back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wmtop::api::{Answer, ApiClient};
use wmtop::auth::{http_client, TokenSource};
use wmtop::config::{CommonArgs, Settings, Span};
use wmtop::consume::{self, ConsumeOptions, ConsumeSummary};
use wmtop::events::Events;
use wmtop::secret::Secret;
use wmtop::sim::{self, SimConfig, SimHandle};
use wmtop::sink::Sink;

pub const PASSWORD: &str = "test-password-5f2c9e";

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

pub fn kafka() -> String {
    std::env::var("WMTOP_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn clickhouse() -> String {
    std::env::var("WMTOP_TEST_CLICKHOUSE").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// Settings for one test: fresh topic, group and table; the simulator's URL if given.
pub fn settings(name: &str, sim_url: Option<&str>) -> Settings {
    let mut s = Settings::resolve_with(&CommonArgs::default(), &|_| None).unwrap();
    s.kafka_brokers = kafka();
    s.clickhouse_url = clickhouse();
    s.topic = unique(&format!("wmtop_test_{name}"));
    s.group = unique(&format!("g_{name}"));
    s.database = "wmtop_test".into();
    s.table = unique(&format!("t_{name}"));
    s.batch_interval = Span(Duration::from_millis(300));
    s.data_dir = std::env::temp_dir().join(unique("wmtop-data"));
    s.password = Secret::new(PASSWORD);
    if let Some(url) = sim_url {
        s.api_url = url.to_string();
        s.keycloak_url = url.to_string();
    }
    s
}

pub fn sim_config(transactions: usize, hours: usize) -> SimConfig {
    let mut c = SimConfig::new(Secret::new(PASSWORD));
    c.transactions = transactions;
    c.hours = hours;
    c
}

pub async fn start_sim(cfg: SimConfig) -> SimHandle {
    sim::spawn(cfg).await.expect("simulator starts")
}

pub fn api(s: &Settings) -> ApiClient {
    let http = http_client(s).unwrap();
    ApiClient::new(http.clone(), Arc::new(TokenSource::new(http, s)), s)
}

/// Fetches from the API and saves the answer into the test's data dir.
pub async fn fetch(s: &Settings) -> Answer {
    api(s)
        .fetch(Some(&s.last_fetch_path()))
        .await
        .expect("fetch")
        .answer
}

/// Consumes until the topic has been idle for `idle`.
pub async fn consume_until_idle(s: &Settings, idle: Duration) -> ConsumeSummary {
    let sink = Sink::connect(s).await.expect("clickhouse");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let opts = ConsumeOptions {
        until_idle: Some(idle),
        max_insert_attempts: Some(20),
        pause: None,
    };
    consume::run(s, sink, opts, rx, Events::default())
        .await
        .expect("consume")
}

/// Records per transaction in an answer.
pub fn expected_rows(answer: &Answer) -> BTreeMap<String, u64> {
    answer.records_per_transaction()
}

pub async fn rows_in_clickhouse(s: &Settings) -> BTreeMap<String, u64> {
    Sink::connect(s)
        .await
        .unwrap()
        .rows_per_transaction()
        .await
        .unwrap()
}

pub async fn query_json(s: &Settings, sql: &str) -> Vec<serde_json::Value> {
    let sink = Sink::connect(s).await.unwrap();
    let text = sink.query_text(sql, "JSONEachRow", true).await.unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The built binary.
pub fn wmtop_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wmtop"))
}

/// Environment for running the binary against a test's settings.
pub fn env_for(s: &Settings) -> Vec<(String, String)> {
    vec![
        ("WMTOP_KAFKA_BROKERS".into(), s.kafka_brokers.clone()),
        ("WMTOP_CLICKHOUSE_URL".into(), s.clickhouse_url.clone()),
        ("WMTOP_TOPIC".into(), s.topic.clone()),
        ("WMTOP_GROUP".into(), s.group.clone()),
        ("WMTOP_DATABASE".into(), s.database.clone()),
        ("WMTOP_TABLE".into(), s.table.clone()),
        ("WMTOP_API_URL".into(), s.api_url.clone()),
        ("WMTOP_KEYCLOAK_URL".into(), s.keycloak_url.clone()),
        ("WMTOP_PASSWORD".into(), s.password.expose().to_string()),
        ("WMTOP_DATA_DIR".into(), s.data_dir.display().to_string()),
        ("WMTOP_BATCH_INTERVAL".into(), "300ms".into()),
        ("WMTOP_LOG".into(), "info".into()),
    ]
}

/// A stack of its own (broker and ClickHouse on free ports, data in a temp dir), started
/// with the project's script, for tests that stop and restart servers without touching
/// the shared one.
pub struct PrivateStack {
    pub dir: PathBuf,
    pub kafka_port: u16,
    pub http_port: u16,
    pub tcp_port: u16,
}

/// A loopback port nothing listens on (just now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrivateStack {
    pub fn start() -> PrivateStack {
        let s = PrivateStack {
            dir: std::env::temp_dir().join(unique("wmtop-stack")),
            kafka_port: free_port(),
            http_port: free_port(),
            tcp_port: free_port(),
        };
        s.run(&["up"]);
        s
    }

    pub fn run(&self, args: &[&str]) {
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack"))
            .args(args)
            .env("WMTOP_STACK_DIR", &self.dir)
            .env("WMTOP_STACK_KAFKA_PORT", self.kafka_port.to_string())
            .env("WMTOP_STACK_CH_HTTP_PORT", self.http_port.to_string())
            .env("WMTOP_STACK_CH_TCP_PORT", self.tcp_port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/stack {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Points settings at this stack.
    pub fn apply(&self, s: &mut Settings) {
        s.kafka_brokers = format!("127.0.0.1:{}", self.kafka_port);
        s.clickhouse_url = format!("http://127.0.0.1:{}", self.http_port);
    }
}

impl Drop for PrivateStack {
    fn drop(&mut self) {
        self.run(&["down"]);
        if std::thread::panicking() {
            eprintln!("private stack kept for a look: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
