//! The `wmtop` binary as a user runs it: `wmtop sim`, `wmtop produce`, `wmtop consume
//! --until-idle`, `wmtop query`, each printing one JSON summary line; a consumer killed
//! with SIGKILL mid-load and started again loses and doubles nothing; `--help` everywhere.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use wmtop::config::Settings;
use wmtop::sink::Sink;

fn wmtop(s: &Settings, args: &[&str]) -> Command {
    let mut c = Command::new(wmtop_bin());
    c.args(args)
        .envs(env_for(s))
        .env_remove("WMTOP_CONFIG")
        .current_dir(std::env::temp_dir());
    c
}

fn run_json(s: &Settings, args: &[&str]) -> (serde_json::Value, Output) {
    let out = wmtop(s, args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "wmtop {args:?} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line on stdout: {stdout}");
    (serde_json::from_str(lines[0]).unwrap(), out)
}

/// Starts `wmtop sim` on a free port and returns it with its URL, read from its JSON line.
fn spawn_sim(s: &Settings, transactions: &str) -> (Child, String) {
    let mut child = wmtop(
        s,
        &[
            "sim",
            "--addr",
            "127.0.0.1:0",
            "--transactions",
            transactions,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    (child, v["sim"].as_str().unwrap().to_string())
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sim_produce_consume_query_through_the_binary() {
    let mut s = settings("cli", None);
    let (sim, url) = spawn_sim(&s, "122");
    s.api_url = url.clone();
    s.keycloak_url = url;

    let (produced, p_out) = run_json(&s, &["produce"]);
    assert_eq!(produced["transactions"], 122);
    assert_eq!(produced["messages_delivered"], 122);
    assert_eq!(produced["messages_failed"], 0);
    let records = produced["records"].as_u64().unwrap();
    assert!(records > 122 && records <= 122 * 288, "{records}");

    let (consumed, c_out) = run_json(&s, &["consume", "--until-idle", "3"]);
    assert_eq!(consumed["messages"], 122);
    assert_eq!(consumed["rows_inserted"].as_u64(), Some(records));
    assert_eq!(consumed["bad_messages"], 0);
    assert!(consumed["batches"].as_u64().unwrap() >= records / 5000);

    // Rows per transaction equal what the API served (the saved answer).
    let answer = wmtop::api::read_answer(&s.last_fetch_path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(rows_in_clickhouse(&s)), expected_rows(&answer));

    // A preset query, as JSON lines.
    let out = wmtop(&s, &["query", "rows", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 122);
    let total: u64 = lines
        .iter()
        .map(|l| l["rows"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, records);

    // Read-only unless asked: a write is refused, with ClickHouse's reason.
    let table = format!("{}.{}", s.database, s.table);
    let out = wmtop(&s, &["query", &format!("TRUNCATE TABLE {table}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("readonly"), "{err}");

    // The password appears in no output.
    for o in [&p_out, &c_out, &out] {
        assert!(!String::from_utf8_lossy(&o.stdout).contains(PASSWORD));
        assert!(!String::from_utf8_lossy(&o.stderr).contains(PASSWORD));
    }
    stop(sim);
}

#[test]
fn a_consumer_killed_mid_load_and_restarted_loses_and_doubles_nothing() {
    let mut s = settings("kill", None);
    let (sim, url) = spawn_sim(&s, "122");
    s.api_url = url.clone();
    s.keycloak_url = url;
    let (produced, _) = run_json(&s, &["produce"]);
    let records = produced["records"].as_u64().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sink = rt.block_on(Sink::connect(&s)).unwrap();
    let mut first = wmtop(&s, &["consume"])
        .env("WMTOP_BATCH_ROWS", "300")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some but not all rows are in, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while Instant::now() < deadline {
        seen = rt.block_on(sink.stored_rows()).unwrap();
        if seen > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(
        seen > 0 && seen < records,
        "killed mid-load: {seen} of {records} rows in"
    );

    let (second, _) = run_json(&s, &["consume", "--until-idle", "3"]);
    assert!(second["messages"].as_u64().unwrap() > 0);
    let answer = wmtop::api::read_answer(&s.last_fetch_path()).unwrap();
    assert_eq!(rt.block_on(rows_in_clickhouse(&s)), expected_rows(&answer));
    let stored = rt.block_on(sink.stored_rows()).unwrap();
    assert_eq!(stored, records, "after the merge no copy is left");
    stop(sim);
}

#[test]
fn every_command_has_help() {
    let s = settings("help", None);
    for cmd in [
        "sim",
        "produce",
        "consume",
        "query",
        "dead-letters",
        "schema",
        "run",
    ] {
        let out = wmtop(&s, &[cmd, "--help"]).output().unwrap();
        assert!(out.status.success(), "{cmd} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Usage: wmtop {cmd}")),
            "{cmd}: {text}"
        );
        assert!(
            text.contains("--kafka-brokers") && text.contains("WMTOP_KAFKA_BROKERS"),
            "{cmd}"
        );
    }
}

#[test]
fn bad_configuration_is_explained() {
    let s = settings("badcfg", None);
    let out = wmtop(&s, &["schema"])
        .env("WMTOP_BATCH_ROWS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("setting batch_rows: must be at least 1"));
    let out = wmtop(&s, &["produce", "--from-file", "/nonexistent/answer.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/answer.json"));
}
