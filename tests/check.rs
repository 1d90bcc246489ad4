//! Reconciliation against the real stack, with plain counts: a clean load reconciles; a
//! row deleted from ClickHouse is a gap there; a copy inserted by hand is named by
//! transaction and hour and fails the check; a set-aside record is "ok, 1 set aside";
//! transactions never published are gaps on the topic and in ClickHouse; rows the API
//! did not serve are extras and do not fail the check. The library's report and `wmtop
//! check` (exit code, JSON, summary) are both checked.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use wmtop_core::clickhouse::queries::quote;
use wmtop_core::clickhouse::{Loader, Rows};
use wmtop_core::config::Settings;
use wmtop_core::record::flatten::flatten_message;
use wmtop_core::source::api::Answer;
use wmtop_core::tools::check::{self, Copies, Extra, Gap, MissingFrom};
use wmtop_sim::{SimHandle, SimTransaction};

const T0: i64 = 1_767_205_800_000;
const HOUR: i64 = 3_600_000;

/// Serves `transactions` x `hours`, fetches (saving the answer), publishes the first
/// `publish_first` transactions of it and consumes until idle.
async fn load(
    name: &str,
    transactions: usize,
    hours: usize,
    publish_first: usize,
) -> (SimHandle, Settings, Vec<SimTransaction>) {
    let cfg = sim_config(transactions, hours);
    let data = wmtop_sim::dataset(&cfg);
    let sim = start_sim(cfg).await;
    let s = settings(name, Some(&sim.url()));
    let answer = fetch(&s).await;
    assert_eq!(answer.transactions.len(), transactions);
    let subset = Answer {
        transactions: answer.transactions[..publish_first].to_vec(),
        bytes: answer.bytes,
    };
    let report = publish(&s, &subset).await;
    assert_eq!(report.messages_delivered, publish_first);
    consume_until_idle(&s, Duration::from_secs(2)).await;
    (sim, s, data)
}

/// Runs `wmtop check` with the test's settings.
fn wmtop_check(s: &Settings, json: bool) -> Output {
    let mut c = Command::new(wmtop_bin());
    c.arg("check")
        .envs(env_for(s))
        .env_remove("WMTOP_CONFIG")
        .current_dir(std::env::temp_dir());
    if json {
        c.arg("--json");
    }
    c.output().expect("wmtop check runs")
}

/// `wmtop check --json`: its exit code and its one JSON line.
fn check_json(s: &Settings) -> (Option<i32>, serde_json::Value) {
    let out = wmtop_check(s, true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one JSON line on stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), serde_json::from_str(lines[0]).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_load_reconciles_on_all_three_sides() {
    let (sim, s, data) = load("check_clean", 10, 48, 10).await;
    let records: u64 = data.iter().map(|t| t.records.len() as u64).sum();

    let r = check::reconcile(&s).await.expect("reconcile");
    assert!(r.ok());
    assert_eq!(r.gaps, vec![]);
    assert_eq!(r.copies, vec![]);
    assert_eq!(r.extras, vec![]);
    assert!(r.merge_pending, "wmtop's table merges copies away");
    assert_eq!(r.transactions.len(), 10);
    for tx in &data {
        let got = r
            .transactions
            .iter()
            .find(|t| t.name == tx.name)
            .unwrap_or_else(|| panic!("{} is in the report", tx.name));
        let n = tx.records.len() as u64;
        assert_eq!(
            (
                got.counts.api_records,
                got.counts.set_aside,
                got.counts.topic_messages,
                got.counts.topic_records,
                got.counts.stored_rows,
                got.counts.distinct_records,
                got.counts.gaps,
                got.counts.copies,
                got.counts.extras
            ),
            (n, 0, 1, n, n, n, 0, 0, 0),
            "{}",
            tx.name
        );
    }
    let t = &r.totals.counts;
    assert_eq!(
        (
            r.totals.transactions,
            t.api_records,
            t.topic_messages,
            t.topic_records,
            t.stored_rows
        ),
        (10, records, 10, records, records)
    );

    let (code, json) = check_json(&s);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["totals"]["gaps"], 0);
    assert_eq!(json["totals"]["copies"], 0);
    assert_eq!(json["totals"]["stored_rows"], records);
    assert_eq!(json["transactions"].as_array().unwrap().len(), 10);

    let out = wmtop_check(&s, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text.lines().last(), Some("ok"), "{text}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_deleted_from_clickhouse_is_a_gap_there() {
    let (sim, s, data) = load("check_gap", 4, 24, 4).await;
    let tx = &data[1];
    let hour_ms = tx.records[5].timestamp;
    assert_eq!((hour_ms - T0) % HOUR, 0);
    let hour = jiff::Timestamp::from_millisecond(hour_ms)
        .unwrap()
        .to_string();
    let sink = ch(&s).await;
    let row = format!(
        "transaction_name = {} AND timestamp = toDateTime({}, 'UTC')",
        quote(&tx.name),
        hour_ms / 1000
    );
    sink.execute(&format!(
        "ALTER TABLE {} DELETE WHERE {row}",
        sink.qualified()
    ))
    .await
    .unwrap();
    // Mutations are asynchronous: wait until the row is gone.
    let started = Instant::now();
    loop {
        let left = sink
            .query_text(
                &format!("SELECT count() FROM {} WHERE {row}", sink.qualified()),
                "TabSeparated",
            )
            .await
            .unwrap();
        if left.trim() == "0" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the row is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let r = check::reconcile(&s).await.expect("reconcile");
    assert!(!r.ok());
    assert_eq!(
        r.gaps,
        vec![Gap {
            transaction: tx.name.clone(),
            hour: hour.clone(),
            hour_ms,
            missing_from: MissingFrom::Clickhouse,
        }]
    );
    assert_eq!(r.copies, vec![]);
    assert_eq!(r.extras, vec![]);
    let got = r.transactions.iter().find(|t| t.name == tx.name).unwrap();
    let n = tx.records.len() as u64;
    assert_eq!(
        (
            got.counts.api_records,
            got.counts.topic_records,
            got.counts.stored_rows,
            got.counts.gaps
        ),
        (n, n, n - 1, 1)
    );
    assert_eq!(r.totals.counts.gaps, 1);

    let (code, json) = check_json(&s);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["ok"], false);
    assert_eq!(json["totals"]["gaps"], 1);
    assert_eq!(json["gaps"][0]["transaction"], tx.name.as_str());
    assert_eq!(json["gaps"][0]["hour_ms"], hour_ms);
    assert_eq!(json["gaps"][0]["missing_from"], "clickhouse");

    let out = wmtop_check(&s, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "gap: {} at {hour} missing from clickhouse",
            tx.name
        )),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("NOT OK"), "{text}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_never_published_are_missing_from_topic_and_clickhouse() {
    let (sim, s, data) = load("check_topic", 6, 24, 2).await;
    let r = check::reconcile(&s).await.expect("reconcile");
    assert!(!r.ok());
    let unpublished: Vec<(String, i64)> = data[2..]
        .iter()
        .flat_map(|t| t.records.iter().map(|rec| (t.name.clone(), rec.timestamp)))
        .collect();
    let mut expected: Vec<Gap> = unpublished
        .iter()
        .map(|(name, ms)| Gap {
            transaction: name.clone(),
            hour: jiff::Timestamp::from_millisecond(*ms).unwrap().to_string(),
            hour_ms: *ms,
            missing_from: MissingFrom::TopicAndClickhouse,
        })
        .collect();
    expected.sort_by(|a, b| (&a.transaction, a.hour_ms).cmp(&(&b.transaction, b.hour_ms)));
    assert_eq!(r.gaps, expected);
    assert_eq!(r.totals.counts.gaps, unpublished.len() as u64);
    assert_eq!(r.copies, vec![]);
    for tx in &data {
        let got = r.transactions.iter().find(|t| t.name == tx.name).unwrap();
        let n = tx.records.len() as u64;
        let published = data[..2].iter().any(|p| p.name == tx.name);
        let want = if published {
            (n, 1, n, n, 0)
        } else {
            (n, 0, 0, 0, n)
        };
        assert_eq!(
            (
                got.counts.api_records,
                got.counts.topic_messages,
                got.counts.topic_records,
                got.counts.stored_rows,
                got.counts.gaps
            ),
            want,
            "{}",
            tx.name
        );
    }

    // The binary lists at most 50 of each, with the exact count in the totals.
    let (code, json) = check_json(&s);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["ok"], false);
    assert!(unpublished.len() > check::LISTED);
    assert_eq!(json["totals"]["gaps"], unpublished.len());
    assert_eq!(json["gaps"].as_array().unwrap().len(), check::LISTED);
    assert_eq!(json["gaps"][0]["missing_from"], "topic and clickhouse");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_api_did_not_serve_are_extras_and_do_not_fail() {
    let (sim, s, data) = load("check_extra", 3, 12, 3).await;
    let loader = Loader::prepare(ch(&s).await, &s).await.unwrap();
    // Inside the window of the fetch: a transaction the API did not serve, and an hour
    // it did not serve. Outside it (before the window; another application): never read.
    let unserved = T0 + 2 * HOUR;
    let after = T0 + 100 * HOUR;
    let tiny = format!(
        r#"{{"transactionName":"GET /extra","applicationId":31854,"transactionSeries":[{{"timestamp":{unserved},"totalCount":5}}]}}"#
    );
    let outside = format!(
        r#"{{"transactionName":{},"applicationId":31854,"transactionSeries":[{{"timestamp":{after},"totalCount":7}}]}}"#,
        serde_json::to_string(&data[0].name).unwrap()
    );
    let before = T0 - 10 * HOUR;
    let earlier = format!(
        r#"{{"transactionName":"GET /earlier","applicationId":31854,"transactionSeries":[{{"timestamp":{before},"totalCount":5}}]}}"#
    );
    let other_app = format!(
        r#"{{"transactionName":"GET /other","applicationId":777,"transactionSeries":[{{"timestamp":{unserved},"totalCount":5}}]}}"#
    );
    let mut rows = Rows::default();
    for msg in [&tiny, &outside, &earlier, &other_app] {
        let f = flatten_message(msg.as_bytes()).unwrap();
        assert!(f.bad_records.is_empty());
        for row in &f.rows {
            rows.push(&loader.plan, row, 1);
        }
    }
    assert_eq!(loader.insert(&rows).await.unwrap().rows, 4);

    let r = check::reconcile(&s).await.expect("reconcile");
    assert!(r.ok(), "extras alone do not fail: {r}");
    assert_eq!(r.gaps, vec![]);
    assert_eq!(r.copies, vec![]);
    let mut expected = vec![
        Extra {
            transaction: "GET /extra".into(),
            hour: "2025-12-31T20:30:00Z".into(),
            hour_ms: unserved,
            rows: 1,
        },
        Extra {
            transaction: data[0].name.clone(),
            hour: "2026-01-04T22:30:00Z".into(),
            hour_ms: after,
            rows: 1,
        },
    ];
    expected.sort_by(|a, b| a.transaction.cmp(&b.transaction));
    assert_eq!(
        r.extras, expected,
        "only the window's rows of the application are read"
    );
    assert_eq!(r.totals.counts.extras, 2);
    let extra = r
        .transactions
        .iter()
        .find(|t| t.name == "GET /extra")
        .unwrap()
        .counts;
    assert_eq!(
        (
            extra.api_records,
            extra.topic_records,
            extra.stored_rows,
            extra.extras
        ),
        (0, 0, 1, 1)
    );
    let first = r
        .transactions
        .iter()
        .find(|t| t.name == data[0].name)
        .unwrap();
    let n = data[0].records.len() as u64;
    assert_eq!(
        (
            first.counts.api_records,
            first.counts.stored_rows,
            first.counts.extras
        ),
        (n, n + 1, 1)
    );

    let (code, json) = check_json(&s);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["totals"]["extras"], 2);
    assert_eq!(json["extras"].as_array().unwrap().len(), 2);

    let out = wmtop_check(&s, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("note: GET /extra at 2025-12-31T20:30:00Z is in ClickHouse"),
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_saved_fetch_it_says_to_produce_first() {
    let s = settings("check_nofetch", None);
    let err = check::reconcile(&s).await.unwrap_err().to_string();
    assert!(
        err.contains(&s.last_fetch_path().display().to_string()),
        "{err}"
    );
    assert!(err.contains("run `wmtop produce` first"), "{err}");
    let out = wmtop_check(&s, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wmtop produce"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_inserted_by_hand_is_named_by_transaction_and_hour_and_fails_the_check() {
    let (sim, s, data) = load("check_copy", 3, 12, 3).await;
    let tx = &data[2];
    let hour_ms = tx.records[3].timestamp;
    let sink = ch(&s).await;
    hold_merges(&s, true).await;
    // The same row once more, as a second insert of the hour would leave it.
    sink.execute(&format!(
        "INSERT INTO {t} SELECT * FROM {t} WHERE transaction_name = {} AND timestamp = toDateTime({}, 'UTC')",
        quote(&tx.name),
        hour_ms / 1000,
        t = sink.qualified()
    ))
    .await
    .unwrap();
    let stored = sink.stored_per_transaction().await.unwrap();
    let n = tx.records.len() as u64;
    assert_eq!(
        (stored[&tx.name].rows, stored[&tx.name].distinct),
        (n + 1, n)
    );

    let r = check::reconcile(&s).await.expect("reconcile");
    assert!(!r.ok());
    let hour = jiff::Timestamp::from_millisecond(hour_ms)
        .unwrap()
        .to_string();
    assert_eq!(
        r.copies,
        vec![Copies {
            transaction: tx.name.clone(),
            hour: hour.clone(),
            hour_ms,
            rows: 2
        }]
    );
    assert_eq!(
        (
            r.totals.counts.copies,
            r.totals.counts.hours_with_copies,
            r.totals.counts.gaps
        ),
        (1, 1, 0)
    );
    let got = r.transactions.iter().find(|t| t.name == tx.name).unwrap();
    assert_eq!(
        (
            got.counts.stored_rows,
            got.counts.distinct_records,
            got.counts.copies
        ),
        (n + 1, n, 1)
    );
    assert_eq!(got.verdict(), "1 copy");

    let (code, json) = check_json(&s);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["copies"][0]["transaction"], tx.name.as_str());
    assert_eq!(json["copies"][0]["hour"], hour.as_str());
    assert_eq!(json["merge_pending"], true);
    let out = wmtop_check(&s, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "copies: {} at {hour} is stored 2 times (merge pending)",
            tx.name
        )),
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_aside_record_is_ok_and_counted_the_same_in_every_summary() {
    let mut cfg = sim_config(3, 12);
    cfg.faults.unusable_records = 1;
    let data = wmtop_sim::dataset(&cfg);
    let sim = start_sim(cfg).await;
    let s = settings("check_aside", Some(&sim.url()));
    let answer = fetch(&s).await;
    let accounting = answer.accounting();
    let first = &data[0];
    let n = first.records.len() as u64;
    assert_eq!(
        (
            accounting[&first.name].served,
            accounting[&first.name].set_aside
        ),
        (n + 1, 1)
    );
    let report = publish(&s, &answer).await;
    assert_eq!(report.set_aside, 1);
    let summary = consume_until_idle(&s, Duration::from_secs(2)).await;
    assert_eq!(summary.bad_records, 1);
    assert_eq!(summary.records, answer.records() as u64);
    assert_eq!(
        summary.rows_inserted + summary.bad_records,
        answer.records() as u64
    );
    assert_exact(&s, &expected_rows(&answer)).await;

    let r = check::reconcile(&s).await.expect("reconcile");
    assert!(r.ok(), "{r}");
    let got = r
        .transactions
        .iter()
        .find(|t| t.name == first.name)
        .unwrap();
    assert_eq!(
        (
            got.counts.api_records,
            got.counts.set_aside,
            got.counts.stored_rows,
            got.counts.gaps
        ),
        (n + 1, 1, n, 0)
    );
    assert_eq!(got.verdict(), "ok, 1 set aside");
    assert_eq!(r.totals.counts.set_aside, 1);
    let (code, json) = check_json(&s);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["totals"]["set_aside"], 1);
    sim.shutdown().await;
}
