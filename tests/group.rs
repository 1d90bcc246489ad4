//! A consumer group on Apache Kafka, as a pipeline scaled out runs it: several `wmtop
//! consume` processes in one group on a topic made beforehand (by confluent-kafka, not by
//! wmtop), each holding a share; one SIGKILLed mid-load and its partitions handed on by
//! the broker; the monitor's lag pane naming every holder as an independent client
//! (confluent-kafka's AdminClient) describes the group; replays and skips refused, by
//! name, while another member is live; and a member knowing where each partition ends
//! from its own fetches (what lets a load land its last batch without waiting for the
//! broker's next answer), as confluent-kafka reads the watermarks.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::{Duration, Instant};

use common::procs::*;
use common::tmux::{monitor_command, Tmux};
use common::*;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::Message;
use wmtop_core::config::Settings;
use wmtop_core::kafka::{lag, Kafka};

type Members = Vec<(String, String, Vec<i32>)>;

/// Describes the group (confluent-kafka) until `done` holds for (state, members).
fn wait_group(
    s: &Settings,
    what: &str,
    secs: u64,
    done: impl Fn(&str, &Members) -> bool,
) -> Members {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (state, members) = describe_group(s);
        if done(&state, &members) {
            return members;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: the group is {state} with {members:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The client id a `wmtop consume` child gives the brokers.
fn client_id_of(child: &Child) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("wmtop@{}/{}", host.trim(), child.id())
}

/// Every member holds a share and together they hold all `n` partitions.
fn shared(state: &str, members: &Members, count: usize, n: i32) -> bool {
    let held: BTreeSet<i32> = members.iter().flat_map(|m| m.2.iter().copied()).collect();
    state == "STABLE"
        && members.len() == count
        && members.iter().all(|m| !m.2.is_empty())
        && held == (0..n).collect()
}

#[test]
fn two_consumers_share_a_topic_made_beforehand_and_the_survivor_takes_over_a_killed_ones_share() {
    let s = settings("pair", None);
    create_topic(&s, 12, 1, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let batch = [("WMTOP_BATCH_ROWS", "200".to_string())];
    let mut first = consume_bin(&s, &["--until-idle", "20"], &batch);
    let second = consume_bin(&s, &["--until-idle", "20"], &batch);
    let members = wait_group(&s, "two members with a share each", 60, |st, m| {
        shared(st, m, 2, 12)
    });
    let ids: BTreeSet<String> = members.iter().map(|m| m.0.clone()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([client_id_of(&first), client_id_of(&second)]),
        "each member names its host and process"
    );
    // Published once both hold their share: each loads its own partitions.
    let (expected, total) = load_topic(&rt, &s, 122, 288);
    wait_rows_between(&rt, &s, total);
    first.kill().unwrap();
    first.wait().unwrap();
    let killed = Instant::now();
    let survivor = client_id_of(&second);
    wait_group(&s, "the survivor to hold all 12 partitions", 60, |st, m| {
        shared(st, m, 1, 12) && m[0].0 == survivor
    });
    println!("GROUP handed_over_ms={}", killed.elapsed().as_millis());
    let (status, out) = finish(second, 180);
    assert!(status.success(), "{}", stderr_of(&s));
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["verdict"], "done", "{summary}");
    exact(
        &rt,
        &s,
        "consumer_killed_in_pair",
        &expected,
        killed.elapsed(),
    );
}

/// The lag pane's rows: partition -> the "held by" text (what stands between the age
/// column and the "in sync" column's `n/m`).
fn holders_on_screen(screen: &str) -> BTreeMap<i32, String> {
    let mut out = BTreeMap::new();
    for line in screen.lines() {
        for segment in line.split(['│', '┃']) {
            let words: Vec<&str> = segment.split_whitespace().collect();
            let Some(p) = words.first().and_then(|w| w.parse::<i32>().ok()) else {
                continue;
            };
            let in_sync =
                |w: &&str| w.contains('/') && w.split('/').all(|n| n.parse::<u32>().is_ok());
            if let Some(at) = words.iter().position(in_sync).filter(|at| *at > 5) {
                out.insert(p, words[5..at].join(" "));
            }
        }
    }
    out
}

#[test]
fn the_lag_pane_names_every_holder_as_the_broker_describes_the_group() {
    let s = settings("holders", None);
    create_topic(&s, 12, 1, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_, _) = load_topic(&rt, &s, 12, 24);
    let a = consume_bin(&s, &["--until-idle", "90"], &[]);
    let b = consume_bin(&s, &["--until-idle", "90"], &[]);
    wait_group(&s, "two members", 60, |st, m| shared(st, m, 2, 12));
    let tmux = Tmux::start(
        &unique("wmtop_holders"),
        &monitor_command(&s, "", |c| c),
        200,
        50,
    );
    // The monitor's own consumer joins too: three members, each with a share.
    let members = wait_group(&s, "three members", 60, |st, m| shared(st, m, 3, 12));
    let others = [client_id_of(&a), client_id_of(&b)];
    let expected: BTreeMap<i32, String> = members
        .iter()
        .flat_map(|(id, host, parts)| {
            let text = if others.contains(id) {
                format!("{id} at {host}")
            } else {
                "this wmtop".to_string()
            };
            parts.iter().map(move |p| (*p, text.clone()))
        })
        .collect();
    // The lag pane focused (1), read from the top (g) a row at a time (j), until every
    // partition's holder is the one the broker describes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut shown = BTreeMap::new();
    while shown != expected {
        assert!(
            Instant::now() < deadline,
            "the lag pane shows {shown:?}, the broker describes {expected:?}"
        );
        tmux.keys(&["1", "g"]);
        shown = holders_on_screen(&tmux.screen());
        for _ in 0..12 {
            tmux.keys(&["j"]);
            shown.extend(holders_on_screen(&tmux.screen()));
        }
    }
    let names: BTreeSet<&String> = shown.values().collect();
    for id in &others {
        assert!(
            names.contains(&format!("{id} at 127.0.0.1")),
            "{id} named: {names:?}"
        );
    }
    drop(tmux);
    for mut c in [a, b] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Runs the binary to the end; (exit code, stdout and stderr).
fn run(s: &Settings, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(wmtop_bin())
        .args(args)
        .envs(env_for(s))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_replay_and_a_skip_are_refused_naming_the_live_member_and_go_ahead_once_it_left() {
    let s = settings("liveref", None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_, total) = load_topic(&rt, &s, 6, 24);
    let consumer = consume_bin(&s, &["--until-idle", "60"], &[]);
    let id = client_id_of(&consumer);
    wait_group(&s, "the consumer to join", 60, |st, m| shared(st, m, 1, 3));
    for args in [
        &["consume", "--replay", "beginning", "--until-idle", "1"][..],
        &["dead-letters", "--skip", "0:0"][..],
    ] {
        let (code, text) = run(&s, args);
        assert_eq!(code, Some(1), "{args:?}: {text}");
        assert!(text.contains("refused: consumer group"), "{args:?}: {text}");
        assert!(
            text.contains(&format!("{id} at 127.0.0.1")),
            "{args:?} names {id}: {text}"
        );
    }
    // Stopped the way a user stops it (SIGTERM: it flushes, commits and leaves the group).
    let pid = consumer.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (status, _) = finish(consumer, 60);
    assert!(status.code().is_some(), "{}", stderr_of(&s));
    wait_group(&s, "the group to be empty", 30, |_, m| m.is_empty());
    let (code, text) = run(
        &s,
        &["consume", "--replay", "beginning", "--until-idle", "1"],
    );
    assert_eq!(code, Some(0), "{text}");
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(
        summary["messages"], 6,
        "the replay read every message again: {summary}"
    );
    assert_eq!(
        rt.block_on(async { ch(&s).await.stored_rows().await.unwrap() }),
        total
    );
}

/// Sends `count` messages to `partition` of the settings' topic.
async fn send_to(kafka: &Kafka, partition: i32, count: usize) {
    let producer = kafka.producer().unwrap();
    for i in 0..count {
        let payload = format!("{{\"n\":{i}}}");
        producer
            .send(
                FutureRecord::to(&kafka.settings().topic)
                    .key("k")
                    .payload(&payload)
                    .partition(partition),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
    }
}

/// Reads `n` messages with the group consumer (each within 30 s): their (partition,
/// offset).
async fn read_n(consumer: &wmtop_core::kafka::GroupConsumer, n: usize) -> Vec<(i32, i64)> {
    let mut got = Vec::new();
    while got.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await;
        match next.expect("a message within 30 s") {
            Ok(m) => got.push((m.partition(), m.offset())),
            // Read to the end of a partition: not a message.
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => {}
            Err(e) => panic!("consumer error: {e}"),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_knows_where_each_partition_ends_from_its_own_fetches() {
    let s = settings("ends", None);
    create_topic(&s, 3, 1, &[]);
    let kafka = Kafka::new(&s);
    send_to(&kafka, 0, 2).await;
    send_to(&kafka, 1, 5).await;
    let consumer = kafka.group_consumer().unwrap();
    // Nothing fetched yet: nothing known.
    assert_eq!(lag::fetched_high(&consumer, &s.topic, 1), None);
    consumer.subscribe(&[s.topic.as_str()]).unwrap();
    let got = read_n(&consumer, 7).await;
    let last = |p: i32| got.iter().filter(|m| m.0 == p).map(|m| m.1).max();
    assert_eq!((last(0), last(1), last(2)), (Some(1), Some(4), None));
    let independent = independent_offsets(&s);
    for p in [0, 1] {
        assert_eq!(
            lag::fetched_high(&consumer, &s.topic, p),
            Some(independent[&p].1),
            "partition {p}: the high watermark as confluent-kafka reads it"
        );
        assert_eq!(independent[&p].1, last(p).unwrap() + 1);
    }
    // More on partition 0: the next fetch tells the member where it ends now.
    send_to(&kafka, 0, 3).await;
    let more = read_n(&consumer, 3).await;
    assert_eq!(more, vec![(0, 2), (0, 3), (0, 4)]);
    assert_eq!(lag::fetched_high(&consumer, &s.topic, 0), Some(5));
    assert_eq!(independent_offsets(&s)[&0].1, 5);
    assert_eq!(lag::fetched_high(&consumer, &s.topic, 1), Some(5));
}
