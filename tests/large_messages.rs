//! Transactions up to the producer's 10 MiB on Apache Kafka: a 7 MiB transaction loads
//! exactly into a topic wmtop creates; on an existing topic whose `max.message.bytes` is
//! 1 MiB, publishing names the transaction, its size and the topic's limit, and every
//! other transaction still loads.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::procs::run_json;
use common::*;
use wmtop_core::config::Settings;

/// A saved answer: one transaction of at least 7 MiB ("GET /big") and five small ones.
fn answer_file(dir: &Path) -> (PathBuf, usize) {
    let mut hours = 3000;
    let big = loop {
        let mut tx = serde_json::to_value(&wmtop_sim::dataset(&sim_config(1, hours))[0]).unwrap();
        tx["transactionName"] = "GET /big".into();
        let size = serde_json::to_vec(&tx).unwrap().len();
        if size >= 7 * 1024 * 1024 {
            assert!(size < 9 * 1024 * 1024, "{size}");
            break (tx, size);
        }
        hours += 500;
    };
    let mut all: Vec<serde_json::Value> = wmtop_sim::dataset(&sim_config(5, 24))
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    all.push(big.0);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("answer.json");
    std::fs::write(&path, serde_json::to_vec(&all).unwrap()).unwrap();
    (path, big.1)
}

fn wmtop(s: &Settings, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    run_json(s, args, &[])
}

#[test]
fn a_7_mib_transaction_loads_and_one_too_large_for_the_topic_is_named_while_the_rest_load() {
    let s = settings("big", None);
    let (path, size) = answer_file(&s.data_dir);
    let file = path.display().to_string();
    let answer = wmtop_core::source::api::read_answer(&path).unwrap();
    let expected = expected_rows(&answer);
    let rt = tokio::runtime::Runtime::new().unwrap();

    // A topic wmtop creates takes it.
    let (code, produced, stderr) = wmtop(&s, &["produce", "--from-file", &file]);
    assert_eq!(code, Some(0), "{produced} {stderr}");
    assert_eq!(produced["messages_delivered"], 6);
    assert!(produced["bytes"].as_u64().unwrap() > size as u64);
    let (code, consumed, stderr) = wmtop(&s, &["consume", "--until-idle", "3"]);
    assert_eq!(code, Some(0), "{consumed} {stderr}");
    rt.block_on(assert_exact(&s, &expected));
    assert!(expected["GET /big"] > 3000, "{expected:?}");

    // An existing topic that takes 1 MiB: named, with its size and the limit.
    let small = settings("big1m", None);
    create_topic(&small, 3, 1, &["max.message.bytes=1048576"]);
    let (code, produced, _) = wmtop(&small, &["produce", "--from-file", &file]);
    assert_eq!(code, Some(1), "{produced}");
    assert_eq!(produced["messages_delivered"], 5, "{produced}");
    assert_eq!(produced["messages_failed"], 1, "{produced}");
    let error = produced["error"].as_str().unwrap();
    for part in [
        format!("GET /big ({size} bytes)"),
        format!("larger than topic {} takes", small.topic),
        "its max.message.bytes is 1048576".to_string(),
        "the other transactions were delivered".to_string(),
    ] {
        assert!(error.contains(&part), "{part:?} in {error}");
    }
    let (code, consumed, stderr) = wmtop(&small, &["consume", "--until-idle", "3"]);
    assert_eq!(code, Some(0), "{consumed} {stderr}");
    let rest: BTreeMap<String, u64> = expected
        .into_iter()
        .filter(|(name, _)| name != "GET /big")
        .collect();
    rt.block_on(assert_exact(&small, &rest));
}
