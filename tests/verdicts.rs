//! Every run ends with a verdict: with ClickHouse unreachable, the broker on a wrong port,
//! or a message the broker never serves, `wmtop consume --until-idle` ends non-zero within
//! its deadline (`--max-wait`) and its JSON names what it waited for; `dead-letters
//! --skip` records the unserved message and frees its partition; SIGTERM and SIGINT
//! flush, commit, print the summary with `interrupted` and exit 143 / 130, and a restart
//! loads the rest exactly.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use wmtop_core::config::Settings;
use wmtop_core::kafka::{reader, Kafka};
use wmtop_core::record::flatten::flatten_message;

fn wmtop(s: &Settings, args: &[&str]) -> Command {
    let mut c = Command::new(wmtop_bin());
    c.args(args)
        .envs(env_for(s))
        .env("WMTOP_OPS_ADDR", "off")
        .env_remove("WMTOP_CONFIG")
        .current_dir(std::env::temp_dir());
    c
}

/// Runs a command to its end (it must end within `limit`); returns the exit code, the
/// JSON summary line and how long it took.
fn ended(mut c: Command, limit: Duration) -> (Option<i32>, serde_json::Value, Duration, String) {
    let started = Instant::now();
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the run did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "one JSON line ({e}): {stdout:?} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code(),
        line,
        took,
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn clickhouse_unreachable_ends_within_the_deadline_naming_it() {
    let mut s = settings("v_ch", None);
    let url = format!("http://127.0.0.1:{}", free_port());
    s.clickhouse_url = url.clone();
    let mut c = wmtop(&s, &["consume", "--until-idle", "2"]);
    c.env("WMTOP_MAX_WAIT", "4s");
    let (code, line, took, _) = ended(c, Duration::from_secs(40));
    assert_eq!(code, Some(1), "{line}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(line["verdict"], "gave_up");
    assert_eq!(line["waited_for"]["what"], "clickhouse");
    assert_eq!(line["waited_for"]["server"], url.as_str());
    assert!(
        line["waited_for"]["waited_s"].as_u64().unwrap() >= 4,
        "{line}"
    );
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{line}"
    );
}

#[test]
fn a_broker_on_a_wrong_port_ends_within_the_deadline_naming_it() {
    let mut s = settings("v_kafka", None);
    let brokers = format!("127.0.0.1:{}", free_port());
    s.kafka_brokers = brokers.clone();
    let mut c = wmtop(&s, &["consume", "--until-idle", "2"]);
    c.env("WMTOP_MAX_WAIT", "5s");
    let (code, line, took, _) = ended(c, Duration::from_secs(60));
    assert_eq!(code, Some(1), "{line}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(line["verdict"], "gave_up");
    assert_eq!(line["waited_for"]["what"], "kafka");
    assert_eq!(line["waited_for"]["server"], brokers.as_str());
}

/// A good message, one of 12 MB and a good one behind it, all on partition 0.
async fn publish_with_a_12_mb_message(s: &Settings) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &s.kafka_brokers)
        .set("message.max.bytes", "16777216")
        .create()
        .unwrap();
    let big = vec![b' '; 12_000_000];
    for (key, payload) in [
        ("GET /a", tx_message("GET /a", 0, 1)),
        ("big", big),
        ("GET /c", tx_message("GET /c", 1, 3)),
    ] {
        producer
            .send(
                FutureRecord::to(&s.topic)
                    .key(key)
                    .payload(&payload)
                    .partition(0),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .unwrap();
    }
}

#[test]
fn a_message_the_broker_never_serves_is_named_then_skipped_and_kept_as_a_dead_letter() {
    let s = settings("v_stuck", None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A good message, one of 12 MB (the topic takes it; it is more than wmtop's consumer
    // can receive in one fetch, so the broker never serves it to wmtop), and a good one
    // behind it, all on partition 0.
    create_topic(&s, 1, 1, &["max.message.bytes=16777216"]);
    rt.block_on(publish_with_a_12_mb_message(&s));
    let mut c = wmtop(&s, &["consume", "--until-idle", "1"]);
    c.env("WMTOP_MAX_WAIT", "6s");
    let (code, line, took, stderr) = ended(c, Duration::from_secs(90));
    assert_eq!(code, Some(1), "{line}");
    assert!(took < Duration::from_secs(45), "{took:?}");
    assert_eq!(line["verdict"], "gave_up");
    let w = &line["waited_for"];
    assert_eq!(
        (
            w["what"].as_str(),
            w["partition"].as_i64(),
            w["offset"].as_i64(),
            w["high"].as_i64()
        ),
        (Some("message"), Some(0), Some(1), Some(3)),
        "{line}"
    );
    assert_eq!(line["stuck"][0]["offset"], 1);
    // Why: the broker's answer is more than the consumer receives, by its size.
    let size = w["size"].as_u64().unwrap_or(0);
    assert!(size > 12_000_000, "{line}");
    assert!(
        w["reason"]
            .as_str()
            .unwrap()
            .contains("receive.message.max.bytes"),
        "{line}"
    );
    assert!(stderr.contains("dead-letters --skip 0:1"), "{stderr}");
    assert_eq!(rt.block_on(rows_in_clickhouse(&s)).get("GET /a"), Some(&1));

    // Skip it: kept as a dead letter with its reason, and the group moved past it.
    let (code, skipped, _, _) = ended(
        wmtop(&s, &["dead-letters", "--skip", "0:1"]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{skipped}");
    assert_eq!(
        (
            skipped["partition"].as_i64(),
            skipped["offset"].as_i64(),
            skipped["committed"].as_i64()
        ),
        (Some(0), Some(1), Some(2))
    );
    let out = wmtop(&s, &["dead-letters"]).output().unwrap();
    let letters: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["reason"], "not served by the broker");
    let int = |v: &serde_json::Value| v.as_i64().or_else(|| v.as_str()?.parse().ok());
    assert_eq!(
        (
            int(&letters[0]["kafka_partition"]),
            int(&letters[0]["kafka_offset"])
        ),
        (Some(0), Some(1))
    );
    // A skip from anywhere but where the group stands is refused.
    let (code, refused, _, stderr) = ended(
        wmtop(&s, &["dead-letters", "--skip", "0:0"]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{refused}");
    assert!(stderr.contains("stands at offset 2"), "{stderr}");

    // The partition is free: the good message behind it loads.
    let (code, line, _, _) = ended(
        wmtop(&s, &["consume", "--until-idle", "1"]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(line["messages"], 1);
    let rows = rt.block_on(rows_in_clickhouse(&s));
    assert_eq!(
        (rows.get("GET /a"), rows.get("GET /c")),
        (Some(&1), Some(&1))
    );
}

/// Records of the messages below the group's committed offsets, per transaction.
fn committed_records(s: &Settings) -> BTreeMap<String, u64> {
    let kafka = Kafka::new(s);
    let ranges: Vec<(i32, i64, i64)> = independent_offsets(s)
        .into_iter()
        .map(|(p, (low, _, committed))| (p, low, committed.unwrap_or(low)))
        .collect();
    let mut out = BTreeMap::new();
    reader::read_ranges(
        &kafka,
        &kafka.reader().unwrap(),
        &ranges,
        Duration::from_secs(30),
        |m| {
            let f = flatten_message(m.payload().unwrap()).unwrap();
            *out.entry(f.transaction_name.unwrap()).or_default() += f.good as u64;
        },
    )
    .unwrap();
    out
}

fn signal_mid_load(name: &str, signal: &str, code: i32) {
    let sim_rt = tokio::runtime::Runtime::new().unwrap();
    let sim = sim_rt.block_on(start_sim(sim_config(122, 288)));
    let s = settings(name, Some(&sim.url()));
    let answer = sim_rt.block_on(async {
        let a = fetch(&s).await;
        publish(&s, &a).await;
        a
    });
    let records = answer.records() as u64;
    let mut child: Child = wmtop(&s, &["consume"])
        .env("WMTOP_BATCH_ROWS", "300")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = sim_rt.block_on(async { ch(&s).await.stored_rows().await.unwrap_or(0) });
        if n > 0 {
            assert!(n < records, "the load finished before the signal");
            break;
        }
        assert!(Instant::now() < deadline, "no rows arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the consumer did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{signal}");
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["interrupted"], true);
    assert_eq!(line["verdict"], "interrupted");
    // Flushed and committed: every message below the committed offsets is stored whole.
    let committed = committed_records(&s);
    let stored = sim_rt.block_on(rows_in_clickhouse(&s));
    assert!(!committed.is_empty(), "something was committed");
    for (tx, n) in &committed {
        assert_eq!(stored.get(tx), Some(n), "{tx}: committed but not stored");
    }
    assert_eq!(
        line["rows_inserted"].as_u64(),
        Some(stored.values().sum::<u64>()),
        "{line}"
    );
    // A restart loads the rest, exactly.
    let summary = sim_rt.block_on(consume_until_idle(&s, Duration::from_secs(2)));
    assert_eq!(summary.verdict, wmtop_core::load::Verdict::Done);
    sim_rt.block_on(assert_exact(&s, &expected_rows(&answer)));
    sim_rt.block_on(sim.shutdown());
}

#[test]
fn sigterm_mid_load_flushes_commits_says_interrupted_and_exits_143() {
    signal_mid_load("v_term", "-TERM", 143);
}

#[test]
fn sigint_mid_load_flushes_commits_says_interrupted_and_exits_130() {
    signal_mid_load("v_int", "-INT", 130);
}
