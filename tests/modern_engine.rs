//! The modern path, proven on a modern ClickHouse engine (chdb, 26.x) next to the 18.16
//! server of the local stack, with the same rows: the DDL wmtop writes for a modern
//! server (DateTime64(3), Bool, LowCardinality, record_version/record_hash), the RowBinary
//! bytes the row plan encodes for it (read back by the engine through `file()`), and every
//! statement loading relies on (the stored-version lookup, the copies among what a load
//! wrote, the merge of one partition, the plain counts, the table's description): a reload that changed one
//! transaction leaves copies until the merge, and the newest version is what stays. The
//! five reference queries then give the same answers on both engines.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};
use wmtop_core::clickhouse::compat::{dead_letter_ddl, metrics_ddl, METRICS_PARTITION_KEY};
use wmtop_core::clickhouse::queries::PRESETS;
use wmtop_core::clickhouse::table::{RowPlan, TableInfo};
use wmtop_core::clickhouse::{sql, Loader, Rows, ServerVersion};
use wmtop_core::config::Settings;
use wmtop_core::record::columns::{MetricRow, COLUMNS};
use wmtop_core::record::flatten::flatten_message;

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

fn num(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("{v} is not a count"))
}

/// Runs steps on the modern engine; returns its version and the queries' rows.
fn chdb(steps: Vec<Value>) -> (String, Value) {
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
        .write_all(json!({ "steps": steps }).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chdb failed (is chdb-core installed? scripts/test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        answer["version"].as_str().unwrap().to_string(),
        answer["results"].clone(),
    )
}

/// The structure string `file()` reads a plan's RowBinary with.
fn structure(plan: &RowPlan, info: &TableInfo) -> String {
    let type_of = |name: &str| {
        info.columns
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .type_
            .clone()
    };
    let mut cols: Vec<String> = plan
        .columns
        .iter()
        .map(|(i, _)| format!("{} {}", COLUMNS[*i].name, type_of(COLUMNS[*i].name)))
        .collect();
    cols.push("record_version UInt64".into());
    cols.push("record_hash UInt64".into());
    cols.join(", ")
}

fn encode(plan: &RowPlan, rows: &[MetricRow], version: u64) -> Rows {
    let mut out = Rows::default();
    for r in rows {
        out.push(plan, r, version);
    }
    out
}

/// The rows, flattened by the pipeline itself from what the simulator serves; and a
/// reload in which one transaction's counts changed.
fn flattened(data: &[wmtop_sim::SimTransaction]) -> (Vec<MetricRow>, Vec<MetricRow>) {
    let mut rows = Vec::new();
    for tx in data {
        let f = flatten_message(&serde_json::to_vec(tx).unwrap()).unwrap();
        assert!(f.bad_records.is_empty());
        rows.extend(f.rows);
    }
    let changed: Vec<MetricRow> = rows
        .iter()
        .filter(|r| r.transaction_name == data[0].name)
        .map(|r| {
            let mut r = r.clone();
            r.total_count = r.total_count.map(|n| n + 1);
            r
        })
        .collect();
    (rows, changed)
}

/// 18.16, the real server, through the loader: a load, the same again, a reload with
/// changed hours, copies found among what it wrote and merged by day. Returns the
/// loader, the condition that selects what the reload wrote, the days merged and the
/// counts per transaction.
async fn on_18_16(
    s: &Settings,
    rows: &[MetricRow],
    changed: &[MetricRow],
) -> (
    Loader,
    String,
    Vec<String>,
    std::collections::BTreeMap<String, wmtop_core::clickhouse::Stored>,
) {
    let loader = Loader::prepare(ch(s).await, s).await.unwrap();
    assert_eq!(loader.ch.version.major, 18);
    let first = loader.insert(&encode(&loader.plan, rows, 1)).await.unwrap();
    assert_eq!(first.rows, rows.len());
    let again = loader.insert(&encode(&loader.plan, rows, 2)).await.unwrap();
    assert_eq!(
        (again.rows, again.unchanged),
        (0, rows.len()),
        "the same content is not written again"
    );
    let reload = loader
        .insert(&encode(&loader.plan, changed, 3))
        .await
        .unwrap();
    assert_eq!(
        (reload.rows, reload.replaced),
        (changed.len(), changed.len())
    );
    // Copies until merged, found among the records the reload wrote, by partition (days).
    let condition = reload.written.conditions().remove(0);
    let found: Vec<Value> = loader
        .ch
        .json_rows(&sql::copies_per_partition(
            &loader.ch.qualified(),
            METRICS_PARTITION_KEY,
            &condition,
        ))
        .await
        .unwrap();
    let copies_found: u64 = found.iter().map(|r| num(&r["copies"])).sum();
    assert_eq!(copies_found, changed.len() as u64, "copies until merged");
    let mut partitions: Vec<String> = found
        .iter()
        .map(|r| sql::partition_literal(&r["p"]))
        .collect();
    partitions.sort();
    assert!(
        partitions.len() >= 2,
        "the changed hours span days: {partitions:?}"
    );
    let settled = loader
        .settle(&reload.written, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(settled.copies_left, 0);
    let mut merged = settled.merged.clone();
    merged.sort();
    assert_eq!(
        merged, partitions,
        "only the days holding copies are merged"
    );
    let old_counts = loader.ch.stored_per_transaction().await.unwrap();
    assert_eq!(
        old_counts.values().map(|c| c.rows).sum::<u64>(),
        rows.len() as u64
    );

    (loader, condition, partitions, old_counts)
}

/// The bytes were read as the columns they are: the types and every row are there.
fn modern_columns(results: &Value) {
    let columns: Vec<&Value> = results["columns"].as_array().unwrap().iter().collect();
    let type_of = |name: &str| {
        columns
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["type"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(type_of("timestamp"), "DateTime64(3, 'UTC')");
    assert_eq!(type_of("eb_breached"), "Nullable(Bool)");
    assert_eq!(type_of("transaction_name"), "LowCardinality(String)");
    let key = |name: &str| {
        columns.iter().find(|c| c["name"] == name).unwrap()["is_in_sorting_key"].clone()
    };
    assert_eq!((num(&key("timestamp")), num(&key("total_count"))), (1, 0));
    assert_eq!(results["info"][0]["partition_key"], METRICS_PARTITION_KEY);
    assert!(results["info"][0]["engine"]
        .as_str()
        .unwrap()
        .contains("ReplacingMergeTree"));
}

/// The lookup sees the newest version and its hash; copies until the merge, none after;
/// every row stored once and the newest fetch won.
fn modern_rows(results: &Value, (plan, rows, changed): (&RowPlan, &[MetricRow], &[MetricRow])) {
    let n0 = changed.len();
    let before = results["versions_before"].as_array().unwrap();
    let after = results["versions_after"].as_array().unwrap();
    assert_eq!((before.len(), after.len()), (n0, n0));
    assert!(before.iter().all(|r| num(&r["v"]) == 1) && after.iter().all(|r| num(&r["v"]) == 3));
    let hashes = encode(plan, changed, 3);
    let want: BTreeSet<u64> = hashes.meta.iter().map(|m| m.hash).collect();
    let got: BTreeSet<u64> = after.iter().map(|r| num(&r["h"])).collect();
    assert_eq!(
        got, want,
        "argMax gives the newest content's hash, as wmtop computes it"
    );
    let copies = |name: &str| -> u64 {
        results[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| num(&r["copies"]))
            .sum()
    };
    assert_eq!(copies("copies_before"), n0 as u64);
    assert_eq!(copies("copies_after"), 0);
    let per_record = results["per_record"].as_array().unwrap();
    assert_eq!(per_record.len(), rows.len());
    assert!(per_record.iter().all(|r| num(&r["rows"]) == 1));
    let stored: u64 = results["per_transaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| num(&r["rows"]))
        .sum();
    assert_eq!(stored as usize, rows.len());
    let new_total: i64 = changed.iter().filter_map(|r| r.total_count).sum();
    assert_eq!(
        num(&results["first_values"][0]["total"]) as i64,
        new_total,
        "the newest fetch won"
    );
    assert!(results["kept"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_modern_path_loads_reloads_and_merges_as_on_18_16() {
    let cfg = sim_config(12, 240);
    let data = wmtop_sim::dataset(&cfg);
    let modern = ServerVersion {
        major: 26,
        minor: 9,
    };

    let (rows, changed) = flattened(&data);
    let s = settings("modern", None);
    let (loader, condition, partitions, old_counts) = on_18_16(&s, &rows, &changed).await;

    // Modern: chdb, with the DDL and the bytes wmtop writes for a modern server.
    let info = TableInfo::own(modern);
    let table = format!("{}.{}", s.database, s.table);
    let plan = RowPlan::for_table(&table, &info, modern).unwrap();
    let dir = std::env::temp_dir().join(unique("wmtop-modern"));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, r: Rows| {
        let path = dir.join(name);
        std::fs::write(&path, r.into_bytes()).unwrap();
        path.display().to_string()
    };
    let f1 = write("first.bin", encode(&plan, &rows, 1));
    let f3 = write("reload.bin", encode(&plan, &changed, 3));
    let columns = plan
        .insert_sql
        .split(" (")
        .nth(1)
        .unwrap()
        .split(") FORMAT")
        .next()
        .unwrap();
    let insert = |file: &str| {
        format!(
            "INSERT INTO {table} ({columns}) SELECT * FROM file('{file}', 'RowBinary', '{}')",
            structure(&plan, &info).replace('\'', "\\'")
        )
    };
    let names = [data[0].name.as_str()];
    let (lo, hi) = (1_700_000_000, 1_900_000_000);
    let app = s.application_id.clone();
    let versions_of = sql::written_condition(&[app.as_str()], &names, lo, hi);
    let mut steps = vec![
        json!({"run": format!("CREATE DATABASE IF NOT EXISTS {}", s.database)}),
        json!({"run": metrics_ddl(&s.database, &s.table, modern)}),
        json!({"run": dead_letter_ddl(&s.database, &s.table)}),
        json!({"run": insert(&f1)}),
        json!({"query": "versions_before", "sql": sql::stored_versions(&table, &versions_of)}),
        json!({"run": insert(&f3)}),
        json!({"query": "versions_after", "sql": sql::stored_versions(&table, &versions_of)}),
        json!({"query": "copies_before", "sql": sql::copies_per_partition(&table, METRICS_PARTITION_KEY, &condition)}),
    ];
    for p in &partitions {
        steps.push(json!({"run": sql::merge_partition(&table, None, p)}));
    }
    let window = &loader.ch.window;
    steps.extend([
        json!({"query": "copies_after", "sql": sql::copies_per_partition(&table, METRICS_PARTITION_KEY, &condition)}),
        json!({"query": "per_transaction", "sql": sql::stored_per_transaction(&table, window)}),
        json!({"query": "per_record", "sql": sql::stored_per_record(&table, window)}),
        json!({"query": "info", "sql": sql::table_info(&s.database, &s.table)}),
        json!({"query": "columns", "sql": sql::table_columns(&s.database, &s.table)}),
        json!({"query": "kept", "sql": sql::kept_dead_letters(&format!("{table}_dead_letters"), &["t"], &[(0, 1)])}),
        json!({"query": "first_values", "sql": format!(
            "SELECT sum(total_count) AS total FROM {table} WHERE transaction_name = '{}'",
            data[0].name.replace('\'', "\\'")
        )}),
    ]);
    for p in PRESETS {
        steps.push(json!({"query": p.key, "sql": p.sql(&table, window, &data[3].name)}));
    }
    let (version, results) = chdb(steps);
    assert!(
        ServerVersion::parse(&version).unwrap().major >= 24,
        "modern engine, got {version}"
    );

    modern_columns(&results);
    let plan_rows = (&plan, rows.as_slice(), changed.as_slice());
    modern_rows(&results, plan_rows);

    // Both engines: the same plain counts, and the same answers to the reference queries.
    for r in results["per_transaction"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        assert_eq!(num(&r["rows"]), old_counts[name].rows, "{name}");
        assert_eq!(num(&r["distinct"]), old_counts[name].distinct, "{name}");
    }
    for p in PRESETS {
        let on_old: Vec<Value> = loader
            .ch
            .json_rows(&p.sql(&table, window, &data[3].name))
            .await
            .unwrap();
        let on_new = results[p.key].as_array().unwrap();
        assert_eq!(
            norm_rows(&on_old),
            norm_rows(on_new),
            "preset {} differs between 18.16 and {version}",
            p.key
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
