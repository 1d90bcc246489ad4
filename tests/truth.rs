//! One stored row per record, as a plain query sees it, as soon as wmtop says the load is
//! done: after a first load, two reloads (the same hours published again) and two
//! replays (the topic read again from the beginning), `SELECT count()` per transaction
//! without FINAL equals what the API served, every record once. Each run prints
//! `TRUTH <step> plain=… final=… ms=…` (visible with --no-capture).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use wmtop_core::config::Settings;

fn wmtop_json(s: &Settings, args: &[&str]) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let out = Command::new(wmtop_bin())
        .args(args)
        .envs(env_for(s))
        .env("WMTOP_OPS_ADDR", "off")
        .env_remove("WMTOP_CONFIG")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "wmtop {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), took)
}

/// Plain and FINAL counts of the whole table.
async fn counts(s: &Settings) -> (u64, u64) {
    let sink = ch(s).await;
    let plain = sink.stored_rows().await.unwrap();
    let fin: Vec<serde_json::Value> = sink
        .json_rows(&format!(
            "SELECT count() AS n FROM {} FINAL",
            sink.qualified()
        ))
        .await
        .unwrap();
    let fin = fin[0]["n"]
        .as_u64()
        .or_else(|| fin[0]["n"].as_str()?.parse().ok())
        .unwrap();
    (plain, fin)
}

#[test]
fn reloads_and_replays_leave_one_row_per_record_the_moment_the_run_is_done() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(sim_config(122, 288)));
    let s = settings("truth", Some(&sim.url()));
    let mut expected = None;
    let steps: [(&str, &[&str]); 5] = [
        ("load", &[]),
        ("reload 1", &[]),
        ("reload 2", &[]),
        ("replay 1", &["--replay", "beginning"]),
        ("replay 2", &["--replay", "beginning"]),
    ];
    for (step, replay) in steps {
        let mut produce_ms = 0;
        if replay.is_empty() {
            let (produced, took) = wmtop_json(&s, &["produce"]);
            assert_eq!(produced["messages_delivered"], 122, "{step}");
            produce_ms = took.as_millis();
        }
        let mut args = vec!["consume", "--until-idle", "1"];
        args.extend_from_slice(replay);
        let (consumed, took) = wmtop_json(&s, &args);
        assert_eq!(consumed["verdict"], "done", "{step}");
        let answer = wmtop_core::source::api::read_answer(&s.last_fetch_path()).unwrap();
        let want = expected
            .get_or_insert_with(|| expected_rows(&answer))
            .clone();
        // Right after the run says done: no copy, for any query.
        rt.block_on(assert_exact(&s, &want));
        let (plain, fin) = rt.block_on(counts(&s));
        println!(
            "TRUTH {step} plain={plain} final={fin} written={} unchanged={} ms={}",
            consumed["rows_inserted"],
            consumed["rows_unchanged"],
            produce_ms + took.as_millis()
        );
        assert_eq!(plain, want.values().sum::<u64>(), "{step}");
        assert_eq!(plain, fin, "{step}");
        if step != "load" {
            assert_eq!(
                consumed["rows_inserted"], 0,
                "{step}: the same hours are not written again"
            );
            assert_eq!(consumed["rows_unchanged"], consumed["records"], "{step}");
        }
    }
    rt.block_on(sim.shutdown());
}
