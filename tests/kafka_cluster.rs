//! A three-node Apache Kafka cluster (a private stack: replication 3, min.insync.replicas
//! 2): the leader of a partition SIGKILLed mid-load, and the load still finishes with every
//! record stored once; while that node is down the monitor's lag pane marks the
//! partitions whose replicas are not all in sync, and the marks clear once it is back.

mod common;

use std::time::Instant;

use common::procs::*;
use common::tmux::{monitor_command, Tmux};
use common::*;

#[test]
fn a_leader_killed_mid_load_loses_and_doubles_nothing_and_the_lag_pane_marks_its_partitions() {
    let stack = PrivateStack::start_with(&["--kafka-cluster"]);
    let mut s = settings("cluster", None);
    stack.apply(&mut s);
    s.kafka_brokers = stack.cluster_brokers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // wmtop creates the topic with the cluster's defaults: three replicas.
    let (expected, total) = load_topic(&rt, &s, 122, 288);
    let leaders = kafka_admin(
        &s.kafka_brokers,
        &serde_json::json!({}),
        &["leaders", &s.topic],
    );
    let victim = leaders["0"].as_i64().unwrap();
    assert!((1..=3).contains(&victim), "{leaders}");
    let child = consume_bin(
        &s,
        &["--until-idle", "8"],
        &[("WMTOP_BATCH_ROWS", "200".into())],
    );
    wait_rows_between(&rt, &s, total);
    stack.run(&["kill", &format!("cluster-kafka-{victim}")]);
    let killed = Instant::now();
    let (status, out) = finish(child, 240);
    assert!(status.success(), "{}", stderr_of(&s));
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["verdict"], "done", "{summary}");
    exact(
        &rt,
        &s,
        "cluster_leader_killed",
        &expected,
        killed.elapsed(),
    );
    let moved = kafka_admin(
        &s.kafka_brokers,
        &serde_json::json!({}),
        &["leaders", &s.topic],
    );
    assert_ne!(
        moved["0"].as_i64(),
        Some(victim),
        "partition 0 has a new leader: {moved}"
    );

    // While the node is down, the lag pane says which partitions are short of replicas.
    let tmux = Tmux::start(
        &unique("wmtop_cluster"),
        &monitor_command(&s, "", |c| c),
        200,
        50,
    );
    let screen = tmux.wait_for("partitions marked under-replicated", 60, |sc| {
        sc.matches("2/3 under").count() == 3
    });
    assert!(!screen.contains("3/3"), "{screen}");
    stack.run(&["up", "--kafka-cluster"]);
    tmux.wait_for("the marks cleared", 120, |sc| {
        !sc.contains("under") && sc.matches("3/3").count() == 3
    });
}
