//! ClickHouse clusters, as users run them: two 18.16 replicas of one shard with ZooKeeper
//! (`scripts/stack up --clickhouse-cluster`), Replicated tables behind a Distributed one.
//!
//! - With `clickhouse_cluster`: wmtop makes the tables ON CLUSTER; a load, a reload whose
//!   API answer revised hours, a replay and a consumer SIGKILLed mid-load each leave a
//!   plain count through the Distributed table, and on each replica's own table, equal to
//!   the API's records, every record once, the revised numbers stored; dead letters are
//!   replicated too.
//! - Tables made by hand from `wmtop schema`'s DDL, turned Replicated behind a Distributed
//!   table, no setting: found as such (`wmtop config` says so), and the same exact counts
//!   after a reload with revised hours.
//! - One replica SIGKILLed mid-load (a private cluster): the load completes, the replica
//!   view shows it down, and once it is back the replicas hold the same rows.
//! - One replica down from the start (a private cluster): wmtop makes its tables on the
//!   replica that is up, says which host is behind, loads, and once the replica is back
//!   it holds every row.
//! - ZooKeeper stopped mid-load (a private cluster): the run ends with the reason (the
//!   tables are read-only), offsets not committed, and nothing is lost once it is back.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::procs::*;
use common::tmux::{monitor_command, Tmux};
use common::*;
use wmtop_core::config::Settings;

/// Added to a revised hour's total: more than any the simulator serves.
const REVISED: i64 = 1_000_000;

/// Settings on a cluster: ClickHouse at its first replica, and the cluster's name.
fn on_cluster(name: &str, sim: Option<&str>, first_replica: &str) -> Settings {
    let mut s = settings(name, sim);
    s.clickhouse_url = first_replica.to_string();
    s.clickhouse_cluster = Some("wmtop_cluster".into());
    s
}

/// A private cluster (`up --clickhouse-cluster`), its replicas' URLs in the cluster's
/// order, and settings on it: ClickHouse at the first replica, the stack's own Kafka.
fn private_cluster(name: &str, sim: Option<&str>) -> (PrivateStack, Vec<String>, Settings) {
    let stack = PrivateStack::start_with(&["--clickhouse-cluster"]);
    let urls = stack.replica_urls();
    let mut s = on_cluster(name, sim, &urls[0]);
    s.kafka_brokers = format!("127.0.0.1:{}", stack.kafka_port);
    (stack, urls, s)
}

/// The saved answer with the last `hours` records of the first `txs` transactions
/// revised (total_count + 1,000,000, as an API revises recent hours); written beside it.
/// Returns the file and the revised totals per (transaction, epoch ms).
fn revised(s: &Settings, txs: usize, hours: usize) -> (PathBuf, BTreeMap<(String, i64), i64>) {
    let text = std::fs::read_to_string(s.last_fetch_path()).unwrap();
    let mut answer: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut changed = BTreeMap::new();
    for tx in answer.iter_mut().take(txs) {
        let name = tx["transactionName"].as_str().unwrap().to_string();
        let series = tx["transactionSeries"].as_array_mut().unwrap();
        let n = series.len();
        for r in series.iter_mut().skip(n.saturating_sub(hours)) {
            let total = r["totalCount"].as_i64().unwrap_or(0) + REVISED;
            r["totalCount"] = total.into();
            changed.insert((name.clone(), r["timestamp"].as_i64().unwrap()), total);
        }
    }
    let path = s.data_dir.join(format!("revised-{}.json", unique("r")));
    std::fs::write(&path, serde_json::to_vec(&answer).unwrap()).unwrap();
    (path, changed)
}

/// A run that must end done; its summary.
fn done(s: &Settings, args: &[&str]) -> serde_json::Value {
    let (code, json, stderr) = run_json(s, args, &[]);
    assert_eq!(code, Some(0), "wmtop {args:?}: {json}\n{stderr}");
    json
}

/// Every replica, and the Distributed table, hold exactly `records` rows, each once.
async fn exact_everywhere(s: &Settings, local: &str, replicas: &[String], records: u64) {
    let through = counts_at(s, &s.clickhouse_url, &format!("{}.{}", s.database, s.table)).await;
    assert_eq!(
        through,
        (records, records),
        "plain count through the Distributed table"
    );
    for url in replicas {
        let there = counts_at(s, url, &format!("{}.{local}", s.database)).await;
        assert_eq!(
            there,
            (records, records),
            "plain count on the replica at {url}"
        );
    }
}

/// The newest numbers are the ones stored: each revised hour's total.
async fn revised_stored(s: &Settings, changed: &BTreeMap<(String, i64), i64>) {
    let rows = query_json(
        s,
        &format!(
            "SELECT transaction_name AS n, toInt64(toUnixTimestamp(timestamp)) * 1000 AS ts, total_count AS t FROM {}.{} WHERE total_count >= {REVISED}",
            s.database, s.table
        ),
    )
    .await;
    let num = |v: &serde_json::Value| v.as_i64().or_else(|| v.as_str()?.parse().ok()).unwrap();
    let got: BTreeMap<(String, i64), i64> = rows
        .iter()
        .map(|r| {
            (
                (r["n"].as_str().unwrap().to_string(), num(&r["ts"])),
                num(&r["t"]),
            )
        })
        .collect();
    assert_eq!(&got, changed, "the revised hours hold the newest numbers");
}

/// The Distributed tables over Replicated ones that the cluster setting makes.
async fn tables_made_on_the_cluster(s: &Settings, local: &str) {
    let sql = format!(
        "SELECT name, engine FROM system.tables WHERE database = '{}' AND name LIKE '{}%' ORDER BY name",
        s.database, s.table
    );
    let engines: Vec<(String, String)> = query_json(s, &sql)
        .await
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["engine"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        engines,
        vec![
            (s.table.clone(), "Distributed".into()),
            (format!("{}_dead_letters", s.table), "Distributed".into()),
            (local.to_string(), "ReplicatedReplacingMergeTree".into()),
            (
                format!("{local}_dead_letters"),
                "ReplicatedReplacingMergeTree".into()
            ),
        ]
    );
}

/// A message that cannot be read is kept as a dead letter on every replica.
fn dead_letters_on_every_replica(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    local: &str,
    reps: &[String],
) {
    rt.block_on(async {
        let producer = wmtop_core::kafka::Kafka::new(s).producer().unwrap();
        producer
            .send(
                rdkafka::producer::FutureRecord::to(&s.topic)
                    .key("bad")
                    .payload("not json"),
                rdkafka::util::Timeout::After(Duration::from_secs(10)),
            )
            .await
            .unwrap();
    });
    let bad = done(s, &["consume", "--until-idle", "2"]);
    assert_eq!(bad["bad_messages"], 1, "{bad}");
    for url in reps {
        let mut at = s.clone();
        at.clickhouse_url = url.clone();
        let n = rt.block_on(async {
            ch(&at)
                .await
                .json_rows::<serde_json::Value>(&format!(
                    "SELECT count() AS n FROM {}.{local}_dead_letters",
                    s.database
                ))
                .await
                .unwrap()
        });
        assert_eq!(
            n[0]["n"].to_string().trim_matches('"'),
            "1",
            "dead letters at {url}"
        );
    }
}

#[test]
fn with_the_cluster_setting_loads_reloads_replays_and_a_killed_consumer_leave_one_row_per_record_on_every_replica(
) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(sim_config(30, 96)));
    let reps = replicas();
    let s = on_cluster("clu", Some(&sim.url()), &reps[0]);
    let local = format!("{}_local", s.table);

    let produced = done(&s, &["produce"]);
    let records = produced["records"].as_u64().unwrap();
    let first = done(&s, &["consume", "--until-idle", "2"]);
    assert_eq!(first["rows_inserted"].as_u64(), Some(records));
    rt.block_on(exact_everywhere(&s, &local, &reps, records));
    rt.block_on(tables_made_on_the_cluster(&s, &local));

    // A reload whose answer revised hours: the newest numbers, no copy, on both replicas.
    let (file, changed) = revised(&s, 10, 5);
    done(&s, &["produce", "--from-file", &file.display().to_string()]);
    let reload = done(&s, &["consume", "--until-idle", "2"]);
    assert_eq!(
        reload["rows_replaced"].as_u64(),
        Some(changed.len() as u64),
        "{reload}"
    );
    assert_eq!(reload["settled"]["copies_left"], 0, "{reload}");
    let merged = reload["settled"]["merged"].as_array().unwrap().len();
    assert!(
        (1..=2).contains(&merged),
        "only the days holding revised hours are merged: {reload}"
    );
    rt.block_on(exact_everywhere(&s, &local, &reps, records));
    rt.block_on(revised_stored(&s, &changed));

    // A replay stores nothing new.
    let replay = done(
        &s,
        &["consume", "--replay", "beginning", "--until-idle", "2"],
    );
    assert_eq!(replay["rows_inserted"], 0, "{replay}");
    rt.block_on(exact_everywhere(&s, &local, &reps, records));

    dead_letters_on_every_replica(&rt, &s, &local, &reps);
    rt.block_on(sim.shutdown());

    // A consumer SIGKILLed mid-load, then started again: nothing lost, nothing twice.
    let sim = rt.block_on(start_sim(sim_config(122, 288)));
    let k = on_cluster("clukill", Some(&sim.url()), &reps[0]);
    let produced = done(&k, &["produce"]);
    let total = produced["records"].as_u64().unwrap();
    let mut child = consume_bin(
        &k,
        &["--until-idle", "3"],
        &[("WMTOP_BATCH_ROWS", "200".into())],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = rt
            .block_on(counts_at(
                &k,
                &reps[0],
                &format!("{}.{}_local", k.database, k.table),
            ))
            .0;
        if n > 0 {
            assert!(n < total, "the load finished before the kill ({n} rows)");
            break;
        }
        assert!(Instant::now() < deadline, "no rows arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let again = done(&k, &["consume", "--until-idle", "3"]);
    assert_eq!(again["verdict"], "done", "{again}");
    rt.block_on(exact_everywhere(
        &k,
        &format!("{}_local", k.table),
        &reps,
        total,
    ));
    rt.block_on(sim.shutdown());
}

/// `wmtop schema`'s DDL turned into Replicated tables on the cluster behind Distributed
/// ones, as a user would make them by hand.
fn by_hand(s: &Settings) -> Vec<String> {
    let out = std::process::Command::new(wmtop_bin())
        .args(["schema", "--server-version", "18.16"])
        .envs(env_for(s))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (db, t) = (&s.database, &s.table);
    let mut sql = vec![format!(
        "CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER wmtop_cluster"
    )];
    for ddl in text.split(";\n").map(str::trim).filter(|d| !d.is_empty()) {
        let table = if ddl.contains(&format!("{db}.{t}_dead_letters")) {
            format!("{t}_dead_letters")
        } else {
            t.clone()
        };
        let local = format!("{table}_shard");
        let replicated = ddl
            .replace(
                &format!("{db}.{table}\n"),
                &format!("{db}.{local} ON CLUSTER wmtop_cluster\n"),
            )
            .replace(
                "ENGINE = ReplacingMergeTree(",
                &format!("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}', "),
            );
        assert!(replicated.contains("Replicated"), "{replicated}");
        sql.push(replicated);
        let key = if table == *t {
            "sipHash64(transaction_name)"
        } else {
            "sipHash64(topic)"
        };
        sql.push(format!(
            "CREATE TABLE {db}.{table} ON CLUSTER wmtop_cluster AS {db}.{local} ENGINE = Distributed(wmtop_cluster, {db}, {local}, {key})"
        ));
    }
    sql
}

#[test]
fn tables_made_by_hand_behind_a_distributed_one_are_found_and_a_revised_reload_leaves_no_copy() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(sim_config(20, 72)));
    let reps = replicas();
    let mut s = on_cluster("cluhand", Some(&sim.url()), &reps[0]);
    s.clickhouse_cluster = None;
    rt.block_on(async {
        let c = ch(&s).await;
        for stmt in by_hand(&s) {
            c.execute(&stmt).await.unwrap();
        }
    });
    let (code, config, _) = run_json(&s, &["config", "--json"], &[]);
    assert_eq!(code, Some(0));
    let found = config["table_found"].as_str().unwrap();
    assert!(
        found.contains(&format!(
            "{}.{} is a Distributed table over {}.{}_shard on cluster wmtop_cluster (1 shard, 2 replicas",
            s.database, s.table, s.database, s.table
        )),
        "{found}"
    );
    assert!(found.contains("ReplicatedReplacingMergeTree"), "{found}");
    let produced = done(&s, &["produce"]);
    let records = produced["records"].as_u64().unwrap();
    done(&s, &["consume", "--until-idle", "2"]);
    let local = format!("{}_shard", s.table);
    rt.block_on(exact_everywhere(&s, &local, &reps, records));
    let (file, changed) = revised(&s, 8, 4);
    done(&s, &["produce", "--from-file", &file.display().to_string()]);
    let reload = done(&s, &["consume", "--until-idle", "2"]);
    assert_eq!(
        reload["rows_replaced"].as_u64(),
        Some(changed.len() as u64),
        "{reload}"
    );
    assert_eq!(reload["settled"]["copies_left"], 0, "{reload}");
    rt.block_on(exact_everywhere(&s, &local, &reps, records));
    rt.block_on(revised_stored(&s, &changed));
    rt.block_on(sim.shutdown());
}

/// Waits until both replicas of a private cluster hold `records` rows of `table_local`.
fn converged(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    urls: &[String],
    local: &str,
    records: u64,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let counts: Vec<(u64, u64)> = urls
            .iter()
            .map(|u| rt.block_on(counts_at(s, u, &format!("{}.{local}", s.database))))
            .collect();
        if counts.iter().all(|c| *c == (records, records)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replicas did not converge: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_replica_killed_mid_load_is_shown_down_the_load_completes_and_the_replicas_converge() {
    let (stack, urls, s) = private_cluster("clurep", None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmux = Tmux::start(
        &unique("wmtop_replicas"),
        &monitor_command(&s, "WMTOP_BATCH_ROWS=300", |c| c),
        200,
        50,
    );
    tmux.wait_for("the monitor", 60, |sc| sc.contains("consumer running"));
    tmux.keys(&["r"]);
    let local = format!("{}_local", s.table);
    let deadline = Instant::now() + Duration::from_secs(120);
    let some_rows = || {
        rt.block_on(async {
            let c = ch(&s).await;
            c.table_exists().await.unwrap_or(false) && c.stored_rows().await.unwrap_or(0) > 0
        })
    };
    while !some_rows() {
        assert!(Instant::now() < deadline, "no rows arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    stack.run(&["kill", "replica-2"]);
    tmux.wait_for("the load done", 180, |sc| sc.contains("load done"));
    tmux.wait_for("one replica of two up in the status bar", 30, |sc| {
        sc.contains("rep 1/2") || sc.contains("replicas 1/2")
    });
    tmux.keys(&["c"]);
    let view = tmux.wait_for("the replicas view", 30, |sc| sc.contains("DOWN"));
    assert!(view.contains("1 of 2 up"), "{view}");
    let answer = wmtop_core::source::api::read_answer(&s.last_fetch_path()).unwrap();
    let records = answer.records() as u64;
    assert_eq!(
        rt.block_on(counts_at(&s, &urls[0], &format!("{}.{local}", s.database))),
        (records, records),
        "every record on the replica that stayed up"
    );
    stack.run(&["up", "--clickhouse-cluster"]);
    converged(&rt, &s, &urls, &local, records, Duration::from_secs(120));
    tmux.wait_for("both replicas up on screen", 60, |sc| {
        sc.contains("2 of 2 up")
    });
}

#[test]
fn a_replica_down_at_the_first_start_holds_nothing_back_and_gets_every_row_once_it_is_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(sim_config(12, 48)));
    let (stack, urls, mut s) = private_cluster("cludown", Some(&sim.url()));
    // Shorter than the server's own wait for the hosts of a statement ON CLUSTER (three
    // minutes): waiting that long for the replica that is down gives up the run.
    s.max_wait = wmtop_core::config::Span(Duration::from_secs(60));
    stack.run(&["stop", "replica-2"]);
    let total = done(&s, &["produce"])["records"].as_u64().unwrap();
    let (code, run, stderr) = run_json(&s, &["consume", "--until-idle", "3"], &[]);
    assert_eq!(code, Some(0), "{run}\n{stderr}");
    assert_eq!(run["verdict"], "done", "{run}");
    assert!(
        stderr.contains("not yet on every host of the cluster")
            && stderr.contains("unfinished hosts"),
        "the replica left behind is said, in the server's words: {stderr}"
    );
    let local = format!("{}_local", s.table);
    assert_eq!(
        rt.block_on(counts_at(&s, &urls[0], &format!("{}.{local}", s.database))),
        (total, total),
        "every record on the replica that is up"
    );
    // Back, it makes the tables from the cluster's queue and fetches the rows.
    stack.run(&["up", "--clickhouse-cluster"]);
    converged(&rt, &s, &urls, &local, total, Duration::from_secs(120));
    let answer = wmtop_core::source::api::read_answer(&s.last_fetch_path()).unwrap();
    rt.block_on(assert_exact(&s, &expected_rows(&answer)));
    rt.block_on(sim.shutdown());
}

#[test]
fn zookeeper_stopped_mid_load_ends_the_run_with_the_reason_and_nothing_is_lost_once_it_is_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(sim_config(122, 288)));
    let (stack, urls, mut s) = private_cluster("cluzk", Some(&sim.url()));
    s.max_wait = wmtop_core::config::Span(Duration::from_secs(15));
    let produced = done(&s, &["produce"]);
    let total = produced["records"].as_u64().unwrap();
    let local = format!("{}_local", s.table);
    let child = consume_bin(
        &s,
        &["--until-idle", "3"],
        &[("WMTOP_BATCH_ROWS", "200".into())],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = rt
            .block_on(counts_at(&s, &urls[0], &format!("{}.{local}", s.database)))
            .0;
        if n > 0 {
            assert!(
                n < total,
                "the load finished before ZooKeeper stopped ({n} rows)"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no rows arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    stack.run(&["stop", "zookeeper"]);
    let (status, out) = finish(child, 180);
    assert!(!status.success(), "{out}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["verdict"], "gave_up", "{summary}");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("read-only"),
        "the reason is named: {summary}"
    );
    assert!(error.contains("ZooKeeper"), "{summary}");
    // Offsets only for what ClickHouse stored: the group stands short of the end.
    let left = independent_lag(&s);
    assert!(
        left > 0,
        "offsets were committed for rows that were not stored"
    );
    stack.run(&["up", "--clickhouse-cluster"]);
    let again = done(&s, &["consume", "--until-idle", "3"]);
    assert_eq!(again["verdict"], "done", "{again}");
    // An insert cut off mid-commit ("unknown status") leaves a part on its replica that
    // ZooKeeper does not list; its rows were inserted again, and ClickHouse drops the
    // part after its check (five minutes after it was written): the replicas converge
    // once it has.
    let unconfirmed = again["settled"]["unconfirmed_parts"]
        .as_array()
        .map_or(0, Vec::len);
    let within = if unconfirmed > 0 { 480 } else { 120 };
    converged(&rt, &s, &urls, &local, total, Duration::from_secs(within));
    let answer = wmtop_core::source::api::read_answer(&s.last_fetch_path()).unwrap();
    rt.block_on(assert_exact(&s, &expected_rows(&answer)));
    rt.block_on(sim.shutdown());
}
