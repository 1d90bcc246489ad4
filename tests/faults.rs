//! The fault suite: the pipeline runs on the simulator's data, a fault is injected
//! mid-load, the pipeline recovers, and rows per transaction in ClickHouse must equal
//! the API's exactly. Tests that stop servers use a private stack of their own (ports and
//! data of their own), so the rest of the suite is not disturbed. Each prints a line
//! `FAULT <name> recovery_ms=… expected=… found=…` (visible with --no-capture).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::procs::*;
use common::*;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use wmtop_core::clickhouse::Loader;
use wmtop_core::config::{Settings, Span};
use wmtop_core::kafka::Kafka;

#[test]
fn clickhouse_stopped_mid_load_and_restarted() {
    let stack = PrivateStack::start();
    let mut s = settings("chstop", None);
    stack.apply(&mut s);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (expected, total) = load_topic(&rt, &s, 122, 288);
    let ops_port = free_port();
    // Batches of a few messages: the load spans the fault in a few dozen inserts, not a
    // hundred (each costs seconds on a busy disk).
    let child = consume_bin(
        &s,
        &["--until-idle", "5"],
        &[
            ("WMTOP_BATCH_ROWS", "1000".into()),
            ("WMTOP_OPS_ADDR", format!("127.0.0.1:{ops_port}")),
        ],
    );
    wait_rows_between(&rt, &s, total);
    stack.run(&["kill", "clickhouse"]);
    std::thread::sleep(Duration::from_millis(1500));
    // While ClickHouse is down: inserts fail and retry, offsets stay where they were.
    let before = committed(&s);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        committed(&s),
        before,
        "offsets moved while ClickHouse was down"
    );
    let health: serde_json::Value = rt
        .block_on(async {
            reqwest::get(format!("http://127.0.0.1:{ops_port}/health"))
                .await?
                .json()
                .await
        })
        .unwrap();
    assert_eq!(health["clickhouse_connected"], false, "{health}");
    assert!(health["errors"].as_u64().unwrap() > 0, "{health}");
    assert_eq!(health["status"], "degraded");
    let up = Instant::now();
    stack.run(&["up"]);
    let (status, out) = finish(child, 180);
    let recovery = up.elapsed();
    assert!(status.success(), "{}", stderr_of(&s));
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(summary["insert_retries"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["verdict"], "done");
    assert!(stderr_of(&s).contains("waiting for ClickHouse at"));
    exact(&rt, &s, "clickhouse_restart", &expected, recovery);
}

#[test]
fn kafka_restarted_mid_load() {
    let stack = PrivateStack::start();
    let mut s = settings("kstop", None);
    stack.apply(&mut s);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (expected, total) = load_topic(&rt, &s, 122, 288);
    let child = consume_bin(
        &s,
        &["--until-idle", "8"],
        &[("WMTOP_BATCH_ROWS", "1000".into())],
    );
    wait_rows_between(&rt, &s, total);
    stack.run(&["kill", "kafka"]);
    std::thread::sleep(Duration::from_secs(2));
    let up = Instant::now();
    stack.run(&["up"]);
    let (status, _) = finish(child, 180);
    assert!(status.success(), "{}", stderr_of(&s));
    exact(&rt, &s, "kafka_restart", &expected, up.elapsed());
}

/// ClickHouse slow to take each batch: the consumer stops reading while it waits for its
/// own insert, so a partition whose messages wait their turn meanwhile is not stuck on
/// the broker's account. A batch is a message or two; each insert is held 2.5 s (a
/// materialized view that sleeps), longer than a consumer that is receiving goes without
/// a message, and a partition waits several inserts, longer than max_wait (3 s).
#[test]
fn a_slow_clickhouse_is_not_a_stuck_broker() {
    let mut s = settings("slowch", None);
    s.max_wait = Span(Duration::from_secs(3));
    s.batch_rows = 200;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (expected, total) = load_topic(&rt, &s, 9, 288);
    rt.block_on(async {
        let sink = ch(&s).await;
        Loader::prepare(sink.clone(), &s).await.unwrap();
        sink.execute(&format!(
            "CREATE MATERIALIZED VIEW {}.{}_slow ENGINE = Null AS SELECT sleep(2.5) AS held FROM {}",
            s.database,
            s.table,
            sink.qualified()
        ))
        .await
        .unwrap();
    });
    let started = Instant::now();
    let summary = rt.block_on(consume_until_idle(&s, Duration::from_secs(2)));
    let took = started.elapsed();
    assert_eq!(summary.rows_inserted, total, "{summary:?}");
    let held = Duration::from_millis(2500) * summary.batches as u32;
    assert!(
        summary.batches >= 5 && took > held,
        "the inserts were not held ({took:?} for {summary:?})"
    );
    assert!(
        summary.stuck.is_empty(),
        "a partition was called stuck: {:?}",
        summary.stuck
    );
    exact(&rt, &s, "slow_clickhouse", &expected, took);
    rt.block_on(async {
        ch(&s)
            .await
            .execute(&format!("DROP TABLE {}.{}_slow", s.database, s.table))
            .await
            .unwrap();
    });
}

#[test]
fn startup_waits_for_clickhouse_and_kafka() {
    let stack = PrivateStack::start();
    let mut s = settings("startup", None);
    stack.apply(&mut s);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (expected, _) = load_topic(&rt, &s, 10, 48);
    stack.run(&["stop", "clickhouse"]);
    stack.run(&["stop", "kafka"]);
    let mut child = consume_bin(&s, &["--until-idle", "4"], &[]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the consumer gave up instead of waiting"
    );
    assert!(
        stderr_of(&s).contains("waiting for ClickHouse at"),
        "{}",
        stderr_of(&s)
    );
    let up = Instant::now();
    stack.run(&["up"]);
    let (status, _) = finish(child, 120);
    assert!(status.success(), "{}", stderr_of(&s));
    exact(&rt, &s, "startup_wait", &expected, up.elapsed());
}

#[test]
fn load_10_100_1000_10000_transactions_nothing_lost() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (transactions, hours) in [(10, 288), (100, 288), (1000, 48), (10_000, 6)] {
        let s = settings("scale", None);
        let started = Instant::now();
        let (expected, total) = load_topic(&rt, &s, transactions, hours);
        let summary = rt.block_on(consume_until_idle(&s, Duration::from_secs(3)));
        assert_eq!(summary.messages, transactions as u64);
        assert_eq!(summary.rows_inserted, total);
        assert_eq!(expected.len(), transactions);
        exact(
            &rt,
            &s,
            &format!("load_{transactions}"),
            &expected,
            started.elapsed(),
        );
    }
}

#[test]
fn schema_drift_is_reported_and_known_fields_still_load() {
    let s = settings("drift", None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = wmtop_sim::dataset(&sim_config(4, 24));
    let mut payloads = Vec::new();
    for (i, tx) in data.iter().enumerate() {
        let mut v = serde_json::to_value(tx).unwrap();
        if i >= 2 {
            // The API adds a field and drops one.
            for r in v["transactionSeries"].as_array_mut().unwrap() {
                let rec = r.as_object_mut().unwrap();
                rec.insert("brandNewMetric".into(), serde_json::json!(1.5));
                rec.remove("percentile99");
            }
        }
        payloads.push((tx.name.clone(), serde_json::to_vec(&v).unwrap()));
    }
    rt.block_on(async {
        let kafka = Kafka::new(&s);
        kafka.ready().await.unwrap();
        let producer = kafka.producer().unwrap();
        for (key, p) in &payloads {
            // One partition keeps the order: the drift comes after the normal messages.
            producer
                .send(
                    FutureRecord::to(&s.topic).key(key).payload(p).partition(0),
                    Timeout::After(Duration::from_secs(10)),
                )
                .await
                .unwrap();
        }
    });
    let summary = rt.block_on(consume_until_idle(&s, Duration::from_secs(2)));
    assert_eq!(summary.unknown_fields, vec!["brandNewMetric".to_string()]);
    assert_eq!(summary.schema_drift.len(), 1, "{:?}", summary.schema_drift);
    let d = &summary.schema_drift[0];
    assert_eq!(d.added, vec!["brandNewMetric".to_string()]);
    assert_eq!(d.missing, vec!["percentile99".to_string()]);
    assert_eq!(d.partition, 0);
    assert_eq!(d.offset, 2);
    assert!(jiff::Timestamp::from_str_or_now(&d.since));
    let expected: u64 = data.iter().map(|t| t.records.len() as u64).sum();
    assert_eq!(summary.rows_inserted, expected);
    let rows = rt.block_on(query_json(
        &s,
        &format!(
            "SELECT transaction_name, countIf(percentile_99 IS NULL) AS nulls, count() AS n FROM {}.{} GROUP BY transaction_name ORDER BY transaction_name",
            s.database, s.table
        ),
    ));
    let nulls: u64 = rows
        .iter()
        .map(|r| r["nulls"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    let late: u64 = data[2..].iter().map(|t| t.records.len() as u64).sum();
    assert_eq!(nulls, late, "only the drifted messages lack percentile_99");
}

trait FromStrOrNow {
    fn from_str_or_now(s: &str) -> bool;
}

impl FromStrOrNow for jiff::Timestamp {
    fn from_str_or_now(s: &str) -> bool {
        s.parse::<jiff::Timestamp>()
            .is_ok_and(|t| (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600)) < t)
    }
}

/// Eight messages: a good one, a valid 3 MB one, five that cannot be read and one with
/// one bad record among good ones.
fn bad_input(data: &[wmtop_sim::SimTransaction]) -> Vec<(&'static str, Vec<u8>)> {
    // A 3 MB transaction: 1,400 records of a busy endpoint, valid, so it loads.
    let mut big = serde_json::to_value(&data[0]).unwrap();
    let rec = big["transactionSeries"][0].clone();
    let series: Vec<serde_json::Value> = (0..1400)
        .map(|i| {
            let mut r = rec.clone();
            r["timestamp"] = serde_json::json!(1_767_205_800_000_i64 + i * 3_600_000);
            r["key"] = r["timestamp"].clone();
            r["timestampStr"] = serde_json::json!(format!("slot {i}"));
            r
        })
        .collect();
    big["transactionName"] = serde_json::json!("GET /big");
    big["transactionSeries"] = serde_json::Value::Array(series);
    let big = serde_json::to_vec(&big).unwrap();
    assert!(big.len() > 2_500_000, "{} bytes", big.len());
    let partly = br#"{"transactionName":"GET /partly","transactionSeries":[{"timestamp":1767205800000,"totalCount":5},{"timestamp":1767209400000,"errorRate":"high"}]}"#.to_vec();
    vec![
        ("good", serde_json::to_vec(&data[1]).unwrap()),
        ("big", big),
        ("notjson", b"{not json".to_vec()),
        ("noseries", br#"{"transactionName":"GET /n"}"#.to_vec()),
        (
            "wrongtype",
            br#"{"transactionName":"GET /w","transactionSeries":"many"}"#.to_vec(),
        ),
        ("binary", vec![0xc3, 0x28, 0xff, 0x00]),
        (
            "empty",
            br#"{"transactionName":"GET /e","transactionSeries":[]}"#.to_vec(),
        ),
        ("partly", partly),
    ]
}

/// `wmtop dead-letters`: the letters kept, as JSON lines.
fn dead_letters(s: &Settings) -> Vec<serde_json::Value> {
    let out = Command::new(wmtop_bin())
        .args(["dead-letters"])
        .envs(env_for(s))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn bad_input_is_kept_aside_listed_and_redriven() {
    let s = settings("badin", None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = wmtop_sim::dataset(&sim_config(3, 24));
    let messages = bad_input(&data);
    rt.block_on(async {
        let kafka = Kafka::new(&s);
        kafka.ready().await.unwrap();
        let producer = kafka.producer().unwrap();
        for (key, p) in &messages {
            producer
                .send(
                    FutureRecord::to(&s.topic).key(*key).payload(p),
                    Timeout::After(Duration::from_secs(20)),
                )
                .await
                .unwrap();
        }
    });
    let summary = rt.block_on(consume_until_idle(&s, Duration::from_secs(3)));
    assert_eq!(summary.messages, 8);
    assert_eq!(summary.bad_messages, 5);
    assert_eq!(summary.bad_records, 1);
    let rows = rt.block_on(rows_in_clickhouse(&s));
    assert_eq!(rows.get("GET /big"), Some(&1400));
    assert_eq!(
        rows.get(&data[1].name),
        Some(&(data[1].records.len() as u64))
    );
    assert_eq!(rows.get("GET /partly"), Some(&1));

    // Listed headless, with reasons.
    let listed = dead_letters(&s);
    assert_eq!(listed.len(), 6);
    let reason = |key: &str| {
        listed
            .iter()
            .find(|l| l["message_key"] == key)
            .map(|l| l["reason"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(
        reason("wrongtype").contains("transactionSeries is not an array"),
        "{}",
        reason("wrongtype")
    );
    assert!(
        reason("partly").contains("record 1: field errorRate: expected a number"),
        "{}",
        reason("partly")
    );

    // Re-driven: published again; the still-bad ones come back aside, nothing doubles.
    let out = Command::new(wmtop_bin())
        .args(["dead-letters", "--redrive"])
        .envs(env_for(&s))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["letters"], 6);
    assert_eq!(report["republished"], 6);
    assert_eq!(
        report["from_topic"], 1,
        "the partly-bad message is read back from the topic"
    );
    assert_eq!(report["removed"], 6);
    let again = rt.block_on(consume_until_idle(&s, Duration::from_secs(3)));
    assert_eq!(again.messages, 6);
    assert_eq!(again.bad_messages, 5);
    assert_eq!(again.bad_records, 1);
    assert_eq!(
        again.rows_inserted, 0,
        "the re-read good records are stored already"
    );
    assert_eq!(
        rt.block_on(rows_in_clickhouse(&s)),
        rows,
        "re-driving doubled nothing (plain count)"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = dead_letters(&s);
        // ALTER … DELETE is asynchronous: wait until the old letters are gone.
        if now.len() == 6 {
            let at = |l: &serde_json::Value| {
                (
                    l["kafka_partition"].to_string(),
                    l["kafka_offset"].to_string(),
                )
            };
            let old: Vec<_> = listed.iter().map(at).collect();
            assert!(
                now.iter().all(|l| !old.contains(&at(l))),
                "the old letters are gone, new ones stand: {now:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "letters: {now:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn api_timeouts_and_5xx_mid_run_recover() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sim = start_sim(sim_config(20, 48)).await;
        let mut s = settings("apifault", Some(&sim.url()));
        s.request_timeout = wmtop_core::config::Span(Duration::from_millis(700));
        // Every answer too slow: the fetch times out, retries, then the API recovers.
        sim.set_faults(wmtop_sim::Faults {
            latency_ms: 1500,
            ..Default::default()
        });
        let client = api(&s);
        let fetching = tokio::spawn(async move {
            client
                .fetch(
                    s.window(),
                    Some(&s.last_fetch_path()),
                    &never(),
                    |_, _, _| {},
                )
                .await
                .map(|r| (r.attempts, r.answer, s))
        });
        tokio::time::sleep(Duration::from_millis(1600)).await;
        sim.set_faults(wmtop_sim::Faults {
            fail_5xx: 1,
            ..Default::default()
        });
        let (attempts, answer, s) = fetching.await.unwrap().unwrap();
        assert!(
            attempts >= 3,
            "timed out, then a 503, then ok: {attempts} attempts"
        );
        publish(&s, &answer).await;
        let summary = consume_until_idle(&s, Duration::from_secs(2)).await;
        assert_eq!(summary.rows_inserted as usize, answer.records());
        assert_exact(&s, &expected_rows(&answer)).await;
        sim.shutdown().await;
    });
}
