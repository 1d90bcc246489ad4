//! The modern path, proven: the table DDL wmtop writes for a modern server (DateTime64(3),
//! Bool, LowCardinality) and the five reference queries run on a modern ClickHouse engine
//! (chdb, 26.x), and give the same answers as on the 18.16 server of the local stack for
//! the same rows.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};
use wmtop::flatten::{flatten_message, TimeMode};
use wmtop::queries::PRESETS;
use wmtop::sim;
use wmtop::sink::{self, ServerVersion, Sink};

fn python() -> String {
    std::env::var("WMTOP_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A value as both engines may print it: numbers compared as numbers.
fn norm(v: &Value) -> Value {
    match v {
        Value::String(s) => match s.parse::<f64>() {
            Ok(n) => json!((n * 1000.0).round() / 1000.0),
            Err(_) => v.clone(),
        },
        Value::Number(n) => json!((n.as_f64().unwrap() * 1000.0).round() / 1000.0),
        Value::Bool(b) => json!(if *b { 1.0 } else { 0.0 }),
        other => other.clone(),
    }
}

fn norm_rows(rows: &[Value]) -> Vec<Vec<(String, Value)>> {
    rows.iter()
        .map(|r| {
            r.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), norm(v)))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_and_reference_queries_run_on_a_modern_engine_and_agree_with_18_16() {
    let cfg = sim_config(12, 240);
    let data = sim::dataset(&cfg);
    let modern = ServerVersion {
        major: 26,
        minor: 9,
    };

    // The rows, flattened by the pipeline itself from what the simulator serves.
    let mut rows = Vec::new();
    for tx in &data {
        let payload = serde_json::to_vec(tx).unwrap();
        let f = flatten_message(&payload, TimeMode::Millis).unwrap();
        assert!(f.bad_records.is_empty());
        rows.extend(f.rows);
    }
    let mut json_rows = String::new();
    for r in &rows {
        let mut v = serde_json::to_value(r).unwrap();
        let ms = r.timestamp.millis();
        let ts = jiff::Timestamp::from_millisecond(ms).unwrap();
        v["timestamp"] = json!(ts.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string());
        json_rows.push_str(&v.to_string());
        json_rows.push('\n');
    }

    // 18.16: the real server, through the sink.
    let mut s = settings("modern", None);
    s.table = unique("t_modern");
    let old_sink = Sink::connect(&s).await.unwrap();
    assert_eq!(old_sink.version.major, 18);
    let old_rows: Vec<_> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.timestamp = wmtop::fields::Timestamp::Seconds((r.timestamp.millis() / 1000) as u32);
            r
        })
        .collect();
    // Through the consumer's own encoder and insert.
    let mut encoded = Vec::new();
    for r in &old_rows {
        r.encode(&mut encoded);
    }
    old_sink.insert_encoded(encoded.into()).await.unwrap();

    // Modern: chdb, with the DDL wmtop writes for a modern server.
    let table = format!("{}.{}", s.database, s.table);
    let mut queries = serde_json::Map::new();
    for p in PRESETS {
        queries.insert(p.key.to_string(), json!(p.sql(&table, &data[3].name)));
    }
    queries.insert(
        "types".into(),
        json!(format!(
            "SELECT name, type FROM system.columns WHERE database = '{}' AND table = '{}' AND name IN ('timestamp', 'eb_breached', 'transaction_name') ORDER BY name",
            s.database, s.table
        )),
    );
    let spec = json!({
        "statements": [
            format!("CREATE DATABASE IF NOT EXISTS {}", s.database),
            sink::metrics_ddl(&s.database, &s.table, modern),
            sink::dead_letter_ddl(&s.database, &s.table),
            format!("INSERT INTO {table} FORMAT JSONEachRow\n{json_rows}"),
            // Loading the same rows again must not double them (ReplacingMergeTree + FINAL).
            format!("INSERT INTO {table} FORMAT JSONEachRow\n{json_rows}"),
        ],
        "queries": queries,
    });
    let mut child = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/modern_engine.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chdb failed (is chdb-core installed? scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = answer["version"].as_str().unwrap();
    assert!(
        ServerVersion::parse(version).unwrap().major >= 24,
        "modern engine, got {version}"
    );
    let results = &answer["results"];

    let types: Vec<(String, String)> = results["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("eb_breached".into(), "Nullable(Bool)".into()),
            ("timestamp".into(), "DateTime64(3, 'UTC')".into()),
            ("transaction_name".into(), "LowCardinality(String)".into()),
        ]
    );

    // Row counts equal what was flattened, once each, despite the double insert.
    let counts = results["rows"].as_array().unwrap();
    assert_eq!(counts.len(), data.len());
    // 64-bit integers are quoted by old servers and bare on new ones.
    let total: u64 = counts
        .iter()
        .map(|r| {
            r["rows"]
                .as_u64()
                .or_else(|| r["rows"].as_str()?.parse().ok())
                .unwrap()
        })
        .sum();
    assert_eq!(total as usize, rows.len());
    assert_eq!(
        results["p95"].as_array().unwrap().len(),
        data[3].records.len()
    );
    let errors_expected = data
        .iter()
        .filter(|t| {
            t.records.iter().map(|r| r.error_rate).sum::<f64>() / t.records.len() as f64 > 1.0
        })
        .count();
    assert_eq!(results["errors"].as_array().unwrap().len(), errors_expected);

    // Both engines give the same answers.
    for p in PRESETS {
        let on_old: Vec<Value> = old_sink
            .query_text(&p.sql(&table, &data[3].name), "JSONEachRow", true)
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let on_new = results[p.key].as_array().unwrap();
        assert_eq!(
            norm_rows(&on_old),
            norm_rows(on_new),
            "preset {} differs between 18.16 and {version}",
            p.key
        );
    }
}
