//! `wmtop follow` as a service, against the real stack and a live simulator whose hours
//! last two seconds:
//!
//! - a rolling six-hour window reloaded every three seconds: after each cycle a plain
//!   count equals the API's distinct records for the window, every hour holds the
//!   numbers the API served last (revised hours included), and each cycle after the
//!   first asked only for the new hours and the revision window (read from the
//!   simulator's own request log); SIGTERM stops it with everything committed;
//! - a cycle whose fetch fails: /health turns degraded while it is overdue, the next
//!   cycle succeeds, /health is ok again, and nothing is lost.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use wmtop_core::config::Settings;
use wmtop_sim::{Faults, Live, SimHandle};

const HOUR_MS: i64 = 3_600_000;

/// `wmtop follow` with the test's settings and `extra` environment; its stdout lines
/// arrive on the receiver, its log goes to `follow.log` in the test's data dir.
fn follow(s: &Settings, extra: &[(&str, &str)]) -> (Child, mpsc::Receiver<serde_json::Value>) {
    std::fs::create_dir_all(&s.data_dir).unwrap();
    let log = std::fs::File::create(s.data_dir.join("follow.log")).unwrap();
    println!("follow's log: {}", s.data_dir.join("follow.log").display());
    let mut child = Command::new(wmtop_bin())
        .arg("follow")
        .envs(env_for(s))
        .envs(extra.iter().copied())
        .env_remove("WMTOP_CONFIG")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not one JSON object per line: {line}: {e}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The next cycle line, within `limit`.
fn next_cycle(rx: &mpsc::Receiver<serde_json::Value>, limit: Duration) -> serde_json::Value {
    rx.recv_timeout(limit)
        .unwrap_or_else(|e| panic!("no cycle line within {limit:?}: {e}"))
}

/// (transaction, hour) -> the record as the API served it last, over the first `n`
/// answers the simulator gave.
fn served(sim: &SimHandle, n: usize) -> BTreeMap<(String, i64), serde_json::Value> {
    let mut latest = BTreeMap::new();
    let answers: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.outcome == "ok")
        .take(n)
        .collect();
    assert_eq!(answers.len(), n, "the simulator answered {n} fetches");
    for r in answers {
        let body: serde_json::Value =
            serde_json::from_slice(&r.body.expect("bodies kept")).unwrap();
        for tx in body.as_array().unwrap() {
            let name = tx["transactionName"].as_str().unwrap().to_string();
            for rec in tx["transactionSeries"].as_array().unwrap() {
                latest.insert(
                    (name.clone(), rec["timestamp"].as_i64().unwrap()),
                    rec.clone(),
                );
            }
        }
    }
    latest
}

/// What a plain query sees in `[start, end]`: (transaction, hour) -> (rows, total_count).
async fn stored(s: &Settings, start: i64, end: i64) -> BTreeMap<(String, i64), (u64, i64)> {
    let sql = format!(
        "SELECT transaction_name AS n, toUnixTimestamp(timestamp) AS t, count() AS c, \
         any(total_count) AS tc FROM {}.{} \
         WHERE timestamp >= toDateTime({}) AND timestamp <= toDateTime({}) GROUP BY n, t",
        s.database,
        s.table,
        start / 1000,
        end / 1000
    );
    query_json(s, &sql)
        .await
        .into_iter()
        .map(|r| {
            let num = |v: &serde_json::Value| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
                    .unwrap()
            };
            (
                (r["n"].as_str().unwrap().to_string(), num(&r["t"]) * 1000),
                (num(&r["c"]) as u64, num(&r["tc"])),
            )
        })
        .collect()
}

/// Every record the API served last for the window is stored once, with those numbers,
/// and nothing else is stored in the window.
async fn assert_window_fresh(
    s: &Settings,
    sim: &SimHandle,
    answers: usize,
    window: &serde_json::Value,
) {
    let (start, end) = (
        window["start_ms"].as_i64().unwrap(),
        window["end_ms"].as_i64().unwrap(),
    );
    let api: BTreeMap<_, _> = served(sim, answers)
        .into_iter()
        .filter(|((_, t), _)| *t >= start && *t <= end)
        .collect();
    let ch = stored(s, start, end).await;
    let plain: u64 = ch.values().map(|(c, _)| c).sum();
    assert_eq!(
        plain,
        api.len() as u64,
        "a plain count equals the API's distinct records for the window"
    );
    assert_eq!(ch.len(), api.len(), "the same hours, no copies");
    for (key, rec) in &api {
        let (rows, total) = ch.get(key).unwrap_or_else(|| panic!("{key:?} not stored"));
        assert_eq!(*rows, 1, "{key:?} stored once");
        assert_eq!(
            *total,
            rec["totalCount"].as_i64().unwrap(),
            "{key:?} holds the API's newest numbers"
        );
    }
}

fn stop(mut child: Child, signal: &str) -> i32 {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "follow did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn follow_keeps_a_rolling_window_fresh_asking_only_for_new_and_revised_hours() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = sim_config(12, 48);
    cfg.live = Some(Live {
        hour_length: Duration::from_secs(2),
        behind_hours: 4,
        revise_hours: 3,
    });
    cfg.log_bodies = true;
    cfg.keep_answers = false;
    let sim = rt.block_on(start_sim(cfg));
    let s = settings("follow", Some(&sim.url()));
    let (child, rx) = follow(&s, &[("WMTOP_RANGE", "6h"), ("WMTOP_RELOAD_EVERY", "3s")]);
    let mut newest_before: Option<i64> = None;
    let mut incremental = 0;
    for n in 1..=4usize {
        let line = next_cycle(&rx, Duration::from_secs(60));
        assert_eq!(line["cycle"], n as u64, "{line}");
        assert_eq!(line["verdict"], "done", "{line}");
        let window = &line["window"];
        let (start, end) = (
            window["start_ms"].as_i64().unwrap(),
            window["end_ms"].as_i64().unwrap(),
        );
        assert_eq!(end - start, 6 * HOUR_MS, "{line}");
        let requests: Vec<_> = sim
            .requests()
            .into_iter()
            .filter(|r| r.outcome == "ok")
            .collect();
        let asked = &requests[n - 1];
        assert_eq!(
            line["asked"]["start_ms"].as_i64(),
            Some(asked.start_time),
            "{line}"
        );
        assert_eq!(asked.end_time, end, "{line}");
        // After the first: the newest hour served and the two before it (revise 3h),
        // and the hours since; the whole window when that reaches back past its start.
        let expected_start = match newest_before {
            None => start,
            Some(newest) => (newest - 2 * HOUR_MS).max(start),
        };
        assert_eq!(asked.start_time, expected_start, "cycle {n}: {line}");
        assert_eq!(line["incremental"], expected_start > start, "{line}");
        if expected_start > start {
            incremental += 1;
        }
        // Every row the fetch brought is counted once: new, revised or unchanged.
        let landed = ["new_rows", "revised_rows", "unchanged_rows"]
            .iter()
            .map(|k| line[*k].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(landed, line["records"].as_u64().unwrap(), "{line}");
        assert_eq!(
            asked.records,
            Some(line["records"].as_u64().unwrap() as usize)
        );
        if n > 1 {
            assert!(
                line["revised_rows"].as_u64().unwrap() > 0,
                "the API revised its last hours: {line}"
            );
        }
        rt.block_on(assert_window_fresh(&s, &sim, n, window));
        newest_before = asked.newest_ms;
    }
    assert!(incremental >= 1, "a cycle fetched only the window's tail");
    assert_eq!(stop(child, "-TERM"), 143, "SIGTERM: 128 + 15");
    let copies = rt.block_on(query_json(
        &s,
        &format!(
            "SELECT count() - uniqExact(transaction_name, timestamp) AS copies FROM {}.{}",
            s.database, s.table
        ),
    ));
    assert_eq!(copies[0]["copies"].to_string().trim_matches('"'), "0");
    rt.block_on(sim.shutdown());
}

/// /health's body.
fn health(port: u16) -> serde_json::Value {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}/health"),
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn wait_health(
    port: u16,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let h = health(port);
        if ok(&h) {
            return h;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "/health never {what}: {h}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_failed_cycle_degrades_health_until_the_next_one_lands_and_nothing_is_lost() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = sim_config(10, 24);
    cfg.live = Some(Live {
        hour_length: Duration::from_secs(3600),
        behind_hours: 0,
        revise_hours: 3,
    });
    cfg.log_bodies = true;
    cfg.keep_answers = false;
    let sim = rt.block_on(start_sim(cfg));
    let s = settings("follow_fault", Some(&sim.url()));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let (child, rx) = follow(
        &s,
        &[
            ("WMTOP_RANGE", "12h"),
            ("WMTOP_RELOAD_EVERY", "4s"),
            ("WMTOP_MAX_WAIT", "8s"),
            ("WMTOP_OPS_ADDR", &addr),
        ],
    );
    let first = next_cycle(&rx, Duration::from_secs(60));
    assert_eq!(first["verdict"], "done", "{first}");
    let mut done = 1;
    let h = wait_health(port, "ok after a cycle", |h| h["status"] == "ok");
    assert!(h["reloads"]["cycles_ok"].as_u64() >= Some(1), "{h}");

    // The API fails every request: the next cycle gives up, /health turns degraded.
    sim.set_faults(Faults {
        fail_5xx: 10_000,
        ..Faults::default()
    });
    let failed = loop {
        let line = next_cycle(&rx, Duration::from_secs(60));
        if line["verdict"] != "done" {
            break line;
        }
        done += 1;
    };
    assert_eq!(failed["verdict"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("503"),
        "the API's answer named: {failed}"
    );
    let h = wait_health(port, "degraded", |h| h["status"] == "degraded");
    assert_eq!(h["reloads"]["cycle_overdue"], true, "{h}");
    assert!(h["reloads"]["cycles_failed"].as_u64().unwrap() >= 1, "{h}");

    // The API answers again: the next cycle lands, /health is ok, nothing was lost.
    sim.set_faults(Faults::default());
    let back = loop {
        let line = next_cycle(&rx, Duration::from_secs(60));
        if line["verdict"] == "done" {
            break line;
        }
    };
    done += 1;
    // What the cycles that landed were served (the failed ones were served nothing) is
    // stored, once each, with the newest numbers.
    rt.block_on(assert_window_fresh(&s, &sim, done, &back["window"]));
    wait_health(port, "ok again", |h| h["status"] == "ok");
    assert_eq!(stop(child, "-INT"), 130, "SIGINT: 128 + 2");
    rt.block_on(sim.shutdown());
}
