//! wmtop as separate processes: `wmtop consume` children with a test's settings, their
//! output and exit, and the loads and checks the fault and group tests share.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wmtop_core::config::Settings;

use super::*;

pub fn consume_bin(s: &Settings, args: &[&str], extra: &[(&str, String)]) -> Child {
    let log = s.data_dir.join(format!("consume-{}.log", unique("c")));
    std::fs::create_dir_all(&s.data_dir).unwrap();
    let mut cmd = Command::new(wmtop_bin());
    cmd.arg("consume")
        .args(args)
        .envs(env_for(s))
        .env("WMTOP_OPS_ADDR", "off")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

pub fn stderr_of(s: &Settings) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(&s.data_dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("consume-") {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    all
}

/// Waits for a child with a deadline; returns its stdout.
pub fn finish(mut child: Child, secs: u64) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return (status, out);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the consumer did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn stored(rt: &tokio::runtime::Runtime, s: &Settings) -> u64 {
    rt.block_on(async {
        match wmtop_core::clickhouse::Ch::connect(s).await {
            Ok(ch) => ch.stored_rows().await.unwrap_or(0),
            Err(_) => 0,
        }
    })
}

pub fn wait_rows_between(rt: &tokio::runtime::Runtime, s: &Settings, total: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = stored(rt, s);
        if n > 0 {
            assert!(
                n < total,
                "the load finished before the fault could be injected ({n} rows)"
            );
            return n;
        }
        assert!(Instant::now() < deadline, "no rows arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn committed(s: &Settings) -> Vec<Option<i64>> {
    independent_offsets(s)
        .values()
        .map(|(_, _, c)| *c)
        .collect()
}

/// Loads the simulator's data into the topic; returns the expected rows per transaction.
pub fn load_topic(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    transactions: usize,
    hours: usize,
) -> (BTreeMap<String, u64>, u64) {
    rt.block_on(async {
        let sim = start_sim(sim_config(transactions, hours)).await;
        let mut s2 = s.clone();
        s2.api_url = Some(sim.url());
        s2.keycloak_url = Some(sim.url());
        let answer = fetch(&s2).await;
        let report = publish(&s2, &answer).await;
        assert_eq!(report.messages_failed, 0);
        sim.shutdown().await;
        (expected_rows(&answer), answer.records() as u64)
    })
}

/// Rows per transaction (a plain count) equal the API's, with no stored copy.
pub fn exact(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    name: &str,
    expected: &BTreeMap<String, u64>,
    recovery: Duration,
) {
    let got = rt.block_on(rows_in_clickhouse(s));
    println!(
        "FAULT {name} recovery_ms={} expected={} found={}",
        recovery.as_millis(),
        expected.values().sum::<u64>(),
        got.values().sum::<u64>()
    );
    rt.block_on(assert_exact(s, expected));
}

/// Runs the binary to the end with a test's settings (and `extra` environment): its exit
/// code, its last stdout line as JSON (Null when there is none), and its stderr.
pub fn run_json(
    s: &Settings,
    args: &[&str],
    extra: &[(&str, String)],
) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(wmtop_bin())
        .args(args)
        .envs(env_for(s))
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("WMTOP_CONFIG")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
