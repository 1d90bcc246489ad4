//! Shared set-up for the integration tests: settings pointing at the real local stack
//! (`scripts/stack up --secure`) with a fresh topic, group and table per test, an
//! in-process simulator, the secured stack's settings, and helpers to load and to read
//! back with plain counts (no FINAL: what any query sees).
#![allow(dead_code)]

pub mod procs;
pub mod tmux;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wmtop_core::clickhouse::Ch;
use wmtop_core::config::secret::Secret;
use wmtop_core::config::{SaslMechanism, SecurityProtocol, Settings, Span};
use wmtop_core::kafka::produce::{self, PublishReport};
use wmtop_core::kafka::Kafka;
use wmtop_core::load::events::Events;
use wmtop_core::load::{self, ConsumeOptions, ConsumeSummary, Verdict};
use wmtop_core::source::api::{Answer, ApiClient};
use wmtop_core::source::keycloak::{http_client, TokenSource};
use wmtop_sim::{SimConfig, SimHandle};

pub const PASSWORD: &str = "test-password-5f2c9e";

/// The repository's root (where `scripts/` and `.stack/` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

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

/// Ends a test that needs the local servers when they are not running, with one line
/// saying how to run the tests (the same line for every such test, no panic trace).
pub fn require_stack() {
    static UP: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let up = UP.get_or_init(|| {
        let ch = reqwest::Url::parse(&clickhouse()).map_err(|e| e.to_string())?;
        let ch_addr = format!(
            "{}:{}",
            ch.host_str().unwrap_or("127.0.0.1"),
            ch.port_or_known_default().unwrap_or(8123)
        );
        let broker = kafka().split(',').next().unwrap_or_default().to_string();
        for (what, addr) in [("Kafka", broker), ("ClickHouse", ch_addr)] {
            let reachable = std::net::ToSocketAddrs::to_socket_addrs(&addr.as_str())
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|a| {
                    std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok()
                });
            if !reachable {
                return Err(format!(
                    "this test needs the local servers and {what} does not answer at {addr}: run scripts/test (it starts them, then runs every test)"
                ));
            }
        }
        Ok(())
    });
    if let Err(line) = up {
        eprintln!("{line}");
        std::panic::resume_unwind(Box::new(line.clone()));
    }
}

/// Settings for one test: fresh topic, group and table; the simulator's URL if given.
pub fn settings(name: &str, sim_url: Option<&str>) -> Settings {
    require_stack();
    let mut s = Settings::defaults();
    s.kafka_brokers = kafka();
    s.clickhouse_url = clickhouse();
    s.topic = unique(&format!("wmtop_test_{name}"));
    s.group = unique(&format!("g_{name}"));
    s.database = "wmtop_test".into();
    s.table = unique(&format!("t_{name}"));
    s.batch_interval = Span(Duration::from_millis(300));
    s.max_wait = Span(Duration::from_secs(60));
    s.data_dir = std::env::temp_dir().join(unique("wmtop-data"));
    s.password = Secret::new(PASSWORD);
    if let Some(url) = sim_url {
        s.api_url = Some(url.to_string());
        s.keycloak_url = Some(url.to_string());
    }
    s
}

/// The secured stack's settings, as `scripts/stack up --secure` wrote them.
pub fn secure_env() -> BTreeMap<String, String> {
    require_stack();
    let dir = std::env::var("WMTOP_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".stack"));
    let path = dir.join("secure/secure.env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/stack up --secure)", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Settings for the secured stack: SASL_SSL with `mechanism`, ClickHouse over HTTPS,
/// both trusting the test CA.
pub fn secure_settings(name: &str, sim_url: Option<&str>, mechanism: SaslMechanism) -> Settings {
    let env = secure_env();
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    let mut s = settings(name, sim_url);
    let (user, password) = match mechanism {
        SaslMechanism::ScramSha256 => (
            "WMTOP_SECURE_SCRAM256_USER",
            "WMTOP_SECURE_SCRAM256_PASSWORD",
        ),
        _ => (
            "WMTOP_SECURE_SCRAM512_USER",
            "WMTOP_SECURE_SCRAM512_PASSWORD",
        ),
    };
    s.kafka_brokers = get("WMTOP_SECURE_KAFKA");
    s.kafka_security_protocol = SecurityProtocol::SaslSsl;
    s.kafka_sasl_mechanism = Some(mechanism);
    s.kafka_sasl_username = Some(get(user));
    s.kafka_sasl_password = Some(Secret::new(get(password)));
    s.kafka_ca_file = Some(get("WMTOP_SECURE_CA").into());
    s.clickhouse_url = get("WMTOP_SECURE_CLICKHOUSE");
    s.clickhouse_ca_file = Some(get("WMTOP_SECURE_CA").into());
    s.clickhouse_user = get("WMTOP_SECURE_CH_USER");
    s.clickhouse_password = Secret::new(get("WMTOP_SECURE_CH_PASSWORD"));
    s
}

pub fn sim_config(transactions: usize, hours: usize) -> SimConfig {
    let mut c = SimConfig::new(Secret::new(PASSWORD));
    c.transactions = transactions;
    c.hours = hours;
    c
}

pub async fn start_sim(cfg: SimConfig) -> SimHandle {
    wmtop_sim::spawn(cfg).await.expect("simulator starts")
}

pub fn api(s: &Settings) -> ApiClient {
    let http = http_client(s).unwrap();
    let kc = s.keycloak_url.clone().expect("keycloak_url");
    let url = s.api_url.clone().expect("api_url");
    ApiClient::new(
        http.clone(),
        Arc::new(TokenSource::new(http, s, &kc)),
        s,
        &url,
    )
}

/// A receiver that never turns true.
pub fn never() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(tx);
    rx
}

/// Fetches from the API and saves the answer into the test's data dir.
pub async fn fetch(s: &Settings) -> Answer {
    api(s)
        .fetch(
            s.window(),
            Some(&s.last_fetch_path()),
            &never(),
            |_, _, _| {},
        )
        .await
        .expect("fetch")
        .answer
}

pub async fn publish(s: &Settings, answer: &Answer) -> PublishReport {
    produce::publish(&Kafka::new(s), answer)
        .await
        .expect("publish")
}

/// Consumes until the topic has been idle for `idle`; the run must end done.
pub async fn consume_until_idle(s: &Settings, idle: Duration) -> ConsumeSummary {
    let opts = ConsumeOptions {
        until_idle: Some(idle),
        pause: None,
        lag: None,
    };
    let summary = load::run(s, opts, never(), Events::default()).await;
    assert_eq!(summary.verdict, Verdict::Done, "{summary:?}");
    summary
}

/// One transaction's message as the API's answer splits into: application 31854, one
/// record `hour` hours after 2025-12-31 18:30 UTC with `totalCount` `count`.
pub fn tx_message(name: &str, hour: i64, count: i64) -> Vec<u8> {
    format!(
        r#"{{"transactionName":"{name}","applicationId":31854,"transactionSeries":[{{"timestamp":{},"totalCount":{count}}}]}}"#,
        1_767_205_800_000_i64 + hour * 3_600_000
    )
    .into_bytes()
}

/// Records per transaction that load: served minus set aside.
pub fn expected_rows(answer: &Answer) -> BTreeMap<String, u64> {
    answer
        .accounting()
        .into_iter()
        .map(|(k, a)| (k, a.loadable()))
        .collect()
}

pub async fn ch(s: &Settings) -> Ch {
    Ch::connect(s).await.expect("clickhouse")
}

/// Holds (or lets go) the background merges of the test's table, so that a copy
/// inserted by hand is not merged away before it is looked for.
pub async fn hold_merges(s: &Settings, hold: bool) {
    let sink = ch(s).await;
    let what = if hold { "STOP" } else { "START" };
    sink.execute(&format!("SYSTEM {what} MERGES {}", sink.qualified()))
        .await
        .unwrap();
}

/// Per transaction in the test's table, all of it (no window): rows stored by a plain
/// count, and distinct records. Raw SQL, independent of wmtop's own reads.
pub async fn stored_raw(s: &Settings) -> BTreeMap<String, (u64, u64)> {
    let sql = format!(
        "SELECT transaction_name AS n, toString(count()) AS r, toString(uniqExact(application_id, timestamp)) AS d \
         FROM {}.{} GROUP BY n",
        s.database, s.table
    );
    let rows = match ch(s).await.json_rows::<serde_json::Value>(&sql).await {
        Err(e) if e.kind == wmtop_core::clickhouse::ChErrorKind::Missing => Vec::new(),
        r => r.unwrap(),
    };
    rows.iter()
        .map(|v| {
            let n = |k: &str| v[k].as_str().unwrap().parse::<u64>().unwrap();
            (v["n"].as_str().unwrap().to_string(), (n("r"), n("d")))
        })
        .collect()
}

/// Rows stored per transaction, a plain count (copies count too).
pub async fn rows_in_clickhouse(s: &Settings) -> BTreeMap<String, u64> {
    stored_raw(s)
        .await
        .into_iter()
        .map(|(k, (rows, _))| (k, rows))
        .collect()
}

/// Rows stored per transaction (plain count) must equal `expected`, and every record
/// must be stored once.
pub async fn assert_exact(s: &Settings, expected: &BTreeMap<String, u64>) {
    let stored = stored_raw(s).await;
    let rows: BTreeMap<String, u64> = stored.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    assert_eq!(&rows, expected, "rows stored per transaction (plain count)");
    for (name, (rows, distinct)) in &stored {
        assert_eq!(rows, distinct, "{name}: stored copies");
    }
}

pub async fn query_json(s: &Settings, sql: &str) -> Vec<serde_json::Value> {
    ch(s).await.json_rows(sql).await.unwrap()
}

/// The built binary.
pub fn wmtop_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wmtop"))
}

/// Environment for running the binary against a test's settings.
pub fn env_for(s: &Settings) -> Vec<(String, String)> {
    let mut v = vec![
        ("WMTOP_KAFKA_BROKERS".into(), s.kafka_brokers.clone()),
        ("WMTOP_CLICKHOUSE_URL".into(), s.clickhouse_url.clone()),
        ("WMTOP_TOPIC".into(), s.topic.clone()),
        ("WMTOP_GROUP".into(), s.group.clone()),
        ("WMTOP_DATABASE".into(), s.database.clone()),
        ("WMTOP_TABLE".into(), s.table.clone()),
        ("WMTOP_PASSWORD".into(), s.password.expose().to_string()),
        ("WMTOP_DATA_DIR".into(), s.data_dir.display().to_string()),
        ("WMTOP_BATCH_INTERVAL".into(), "300ms".into()),
        (
            "WMTOP_MAX_WAIT".into(),
            format!("{}s", s.max_wait.0.as_secs()),
        ),
        ("WMTOP_LOG".into(), "info".into()),
        ("WMTOP_OPS_ADDR".into(), "off".into()),
    ];
    if let (Some(a), Some(k)) = (&s.api_url, &s.keycloak_url) {
        v.push(("WMTOP_API_URL".into(), a.clone()));
        v.push(("WMTOP_KEYCLOAK_URL".into(), k.clone()));
    }
    if let Some(c) = &s.clickhouse_cluster {
        v.push(("WMTOP_CLICKHOUSE_CLUSTER".into(), c.clone()));
    }
    v
}

/// The shared stack's ClickHouse replicas (`scripts/stack up --clickhouse-cluster`), in
/// the cluster's order.
pub fn replicas() -> Vec<String> {
    std::env::var("WMTOP_TEST_REPLICAS")
        .unwrap_or_else(|_| "http://127.0.0.2:8123 http://127.0.0.3:8123".into())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Rows stored and distinct records in `table` (`database.table`) of the ClickHouse at
/// `url`, by plain counts; the table's rows from this replica alone ((0, 0) while the
/// table is not there yet).
pub async fn counts_at(s: &Settings, url: &str, table: &str) -> (u64, u64) {
    let mut at = s.clone();
    at.clickhouse_url = url.to_string();
    let rows = match ch(&at)
        .await
        .json_rows::<serde_json::Value>(&format!(
            "SELECT count() AS n, uniqExact(application_id, transaction_name, timestamp) AS d FROM {table}"
        ))
        .await
    {
        Err(e) if e.kind == wmtop_core::clickhouse::ChErrorKind::Missing => return (0, 0),
        other => other.unwrap(),
    };
    let num = |v: &serde_json::Value| v.as_u64().or_else(|| v.as_str()?.parse().ok()).unwrap();
    (num(&rows[0]["n"]), num(&rows[0]["d"]))
}

/// A stack of its own (broker and ClickHouse on free ports, data in a temp dir), started
/// with the project's script, for tests that stop and restart servers without touching
/// the shared one.
pub struct PrivateStack {
    pub dir: PathBuf,
    pub kafka_port: u16,
    pub http_port: u16,
    pub tcp_port: u16,
    /// The three Kafka nodes' client ports, with `up --kafka-cluster`.
    pub cluster_ports: Vec<u16>,
    /// The ClickHouse replicas' HTTP port (on 127.0.0.2 and 127.0.0.3), with `up
    /// --clickhouse-cluster`.
    pub replica_http_port: u16,
    /// Every port variable the script is given.
    env: Vec<(&'static str, String)>,
}

/// A loopback port nothing listens on (just now), never one this test process handed out
/// before: the kernel may give a port it just freed again, and two servers told the same
/// port (two replicas' TCP ports, say) fail in ways that look like something else.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Every listener stays bound until one is new, so the kernel cannot repeat itself.
    let mut held = Vec::new();
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if given.insert(port) {
            return port;
        }
        held.push(listener);
        assert!(held.len() < 1000, "no new free loopback port");
    }
}

impl PrivateStack {
    /// One Kafka node and one ClickHouse.
    pub fn start() -> PrivateStack {
        PrivateStack::start_with(&[])
    }

    /// With `up`'s options too (`--kafka-cluster`: three more Kafka nodes;
    /// `--clickhouse-cluster`: ZooKeeper and two ClickHouse replicas).
    pub fn start_with(options: &[&str]) -> PrivateStack {
        require_stack();
        let ports = |n: usize| (0..n).map(|_| free_port()).collect::<Vec<u16>>();
        let list = |ports: &[u16]| {
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (cluster, controllers) = (ports(3), ports(3));
        let replica_http_port = free_port();
        let s = PrivateStack {
            dir: std::env::temp_dir().join(unique("wmtop-stack")),
            kafka_port: free_port(),
            http_port: free_port(),
            tcp_port: free_port(),
            env: vec![
                ("WMTOP_STACK_KAFKA_CONTROLLER_PORT", free_port().to_string()),
                ("WMTOP_STACK_CLUSTER_KAFKA_PORTS", list(&cluster)),
                ("WMTOP_STACK_CLUSTER_CONTROLLER_PORTS", list(&controllers)),
                ("WMTOP_STACK_ZK_PORT", free_port().to_string()),
                (
                    "WMTOP_STACK_REPLICA_HTTP_PORT",
                    replica_http_port.to_string(),
                ),
                ("WMTOP_STACK_REPLICA_TCP_PORTS", list(&ports(2))),
                (
                    "WMTOP_STACK_REPLICA_INTERSERVER_PORT",
                    free_port().to_string(),
                ),
                ("WMTOP_STACK_LEGACY_KAFKA_PORT", free_port().to_string()),
            ],
            cluster_ports: cluster,
            replica_http_port,
        };
        let mut up = vec!["up"];
        up.extend_from_slice(options);
        s.run(&up);
        s
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(repo_root().join("scripts/stack"));
        c.args(args)
            .env("WMTOP_STACK_DIR", &self.dir)
            .env("WMTOP_STACK_KAFKA_PORT", self.kafka_port.to_string())
            .env("WMTOP_STACK_CH_HTTP_PORT", self.http_port.to_string())
            .env("WMTOP_STACK_CH_TCP_PORT", self.tcp_port.to_string())
            .envs(self.env.iter().map(|(k, v)| (*k, v)));
        c
    }

    /// The ClickHouse replicas' URLs, in the cluster's order.
    pub fn replica_urls(&self) -> Vec<String> {
        ["127.0.0.2", "127.0.0.3"]
            .iter()
            .map(|h| format!("http://{h}:{}", self.replica_http_port))
            .collect()
    }

    /// The Kafka cluster's bootstrap list.
    pub fn cluster_brokers(&self) -> String {
        let all: Vec<String> = self
            .cluster_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        all.join(",")
    }

    /// Runs the stack script; it must succeed.
    pub fn run(&self, args: &[&str]) {
        let out = self.command(args).output().unwrap();
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
        // Stop what the script started; a failure here is reported, never a panic in a
        // panic.
        match self.command(&["down"]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "private stack {}: down failed: {}",
                self.dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("private stack {}: down failed: {e}", self.dir.display()),
        }
        if std::thread::panicking() {
            eprintln!("private stack kept for a look: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Each partition's (low, high, committed) as an independent client sees them: the
/// Python confluent-kafka client, with its own librdkafka (tests/kafka_offsets.py).
pub fn independent_offsets(s: &Settings) -> BTreeMap<i32, (i64, i64, Option<i64>)> {
    let python = std::env::var("WMTOP_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/kafka_offsets.py"
        ))
        .args([&s.kafka_brokers, &s.topic, &s.group])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "kafka_offsets.py (is confluent-kafka installed? scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(p, o)| {
            (
                p.parse().unwrap(),
                (
                    o["low"].as_i64().unwrap(),
                    o["high"].as_i64().unwrap(),
                    o["committed"].as_i64(),
                ),
            )
        })
        .collect()
}

/// Messages not yet committed by the group, as an independent client counts them.
pub fn independent_lag(s: &Settings) -> i64 {
    independent_offsets(s)
        .values()
        .map(|(low, high, c)| high - c.unwrap_or(*low).max(*low))
        .sum()
}

/// Runs tests/kafka_admin.py (confluent-kafka, independent of wmtop) against `brokers`,
/// with client properties `config` (a JSON object: SASL and TLS); its JSON answer.
pub fn kafka_admin(brokers: &str, config: &serde_json::Value, args: &[&str]) -> serde_json::Value {
    let python = std::env::var("WMTOP_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka_admin.py"))
        .arg(brokers)
        .args(args)
        .env("WMTOP_TEST_KAFKA_CONFIG", config.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "kafka_admin.py {args:?} (is confluent-kafka installed? scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The secured broker's admin user, as client properties for kafka_admin.py.
pub fn secure_admin_config() -> serde_json::Value {
    let env = secure_env();
    serde_json::json!({
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": env["WMTOP_SECURE_ADMIN_USER"],
        "sasl.password": env["WMTOP_SECURE_ADMIN_PASSWORD"],
        "ssl.ca.location": env["WMTOP_SECURE_CA"],
    })
}

/// Creates the settings' topic with the broker's own client library, not wmtop (as the
/// admin user on the secured broker): `partitions`, `replication`, topic configs.
pub fn create_topic(s: &Settings, partitions: u32, replication: u32, configs: &[&str]) {
    let config = if s.kafka_security_protocol == SecurityProtocol::SaslSsl {
        secure_admin_config()
    } else {
        serde_json::json!({})
    };
    let (p, r) = (partitions.to_string(), replication.to_string());
    let mut args = vec!["create-topic", s.topic.as_str(), &p, &r];
    args.extend_from_slice(configs);
    kafka_admin(&s.kafka_brokers, &config, &args);
}

/// The group as confluent-kafka's AdminClient describes it: (state, members as
/// (client id, host, partitions of the settings' topic)).
pub fn describe_group(s: &Settings) -> (String, Vec<(String, String, Vec<i32>)>) {
    let v = kafka_admin(
        &s.kafka_brokers,
        &serde_json::json!({}),
        &["describe-group", &s.group, &s.topic],
    );
    let members = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["client_id"].as_str().unwrap().to_string(),
                m["host"].as_str().unwrap().to_string(),
                m["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_i64().unwrap() as i32)
                    .collect(),
            )
        })
        .collect();
    (v["state"].as_str().unwrap().to_string(), members)
}
