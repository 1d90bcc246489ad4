//! The `wmtop` binary as a user runs it: `wmtop sim`, `wmtop produce`, `wmtop consume
//! --until-idle`, `wmtop query`, each printing one JSON summary line; a consumer killed
//! with SIGKILL mid-load and started again loses and doubles nothing; `--help` everywhere;
//! settings layered flags over environment over file; config errors that name the line
//! and key and never a secret; the simulator only when asked or when nothing is set.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use wmtop_core::config::Settings;

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
    s.api_url = Some(url.clone());
    s.keycloak_url = Some(url);

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
    assert_eq!(consumed["verdict"], "done");
    assert_eq!(
        produced["simulator"],
        serde_json::Value::Null,
        "an API was set"
    );
    // At most batch_rows rows per batch (a message's rows are never split).
    let most = s.batch_rows as u64 + 288;
    assert!(consumed["batches"].as_u64().unwrap() >= records.div_ceil(most));

    // Rows per transaction equal what the API served (the saved answer).
    let answer = wmtop_core::source::api::read_answer(&s.last_fetch_path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(assert_exact(&s, &expected_rows(&answer)));

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
    s.api_url = Some(url.clone());
    s.keycloak_url = Some(url);
    let (produced, _) = run_json(&s, &["produce"]);
    let records = produced["records"].as_u64().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sink = rt.block_on(ch(&s));
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
    let at_kill = rt.block_on(sink.stored_rows()).unwrap();
    assert!(
        seen > 0 && at_kill < records,
        "killed mid-load: {at_kill} of {records} rows in"
    );
    // What the group had not committed when the first consumer died (an independent read).
    let uncommitted = independent_lag(&s);
    assert!(uncommitted > 0 && uncommitted <= 122, "{uncommitted}");

    let (second, _) = run_json(&s, &["consume", "--until-idle", "3"]);
    // The second run reads from the last commit on: what the first stored but did not
    // commit is read again and not stored again.
    assert_eq!(second["verdict"], "done");
    assert_eq!(
        second["messages"].as_i64(),
        Some(uncommitted),
        "the second run reads exactly what was not committed"
    );
    let written = second["rows_inserted"].as_u64().unwrap();
    let unchanged = second["rows_unchanged"].as_u64().unwrap();
    assert_eq!(written + unchanged, second["records"].as_u64().unwrap());
    assert!(
        written < records,
        "rows the first run stored are not written again"
    );
    let answer = wmtop_core::source::api::read_answer(&s.last_fetch_path()).unwrap();
    rt.block_on(assert_exact(&s, &expected_rows(&answer)));
    let stored = rt.block_on(sink.stored_rows()).unwrap();
    assert_eq!(stored, records, "a plain count sees one row per record");
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
        "check",
        "config",
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

/// A directory with a `wmtop.toml` holding `text`, for runs that read `./wmtop.toml`.
fn dir_with_config(text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("wmtop-cfg"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wmtop.toml");
    std::fs::write(&path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

#[test]
fn flags_win_over_env_which_wins_over_the_file() {
    let s = settings("layers", None);
    let dir =
        dir_with_config("topic = \"from_file\"\ngroup = \"file_group\"\ntable = \"file_table\"\n");
    let config = |extra_env: &[(&str, &str)], args: &[&str]| -> serde_json::Value {
        let mut c = wmtop(&s, &["config", "--json"]);
        c.current_dir(&dir)
            .env_remove("WMTOP_TOPIC")
            .env_remove("WMTOP_GROUP")
            .env_remove("WMTOP_TABLE")
            .args(args);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = config(&[], &[]);
    assert_eq!(
        (v["topic"].as_str(), v["group"].as_str()),
        (Some("from_file"), Some("file_group"))
    );
    assert!(v["config_file"].as_str().unwrap().ends_with("wmtop.toml"));
    let v = config(&[("WMTOP_TOPIC", "from_env")], &[]);
    assert_eq!(v["topic"], "from_env", "env wins over the file");
    assert_eq!(v["group"], "file_group", "the file still gives the rest");
    let v = config(&[("WMTOP_TOPIC", "from_env")], &["--topic", "from_flag"]);
    assert_eq!(v["topic"], "from_flag", "a flag wins over env");
    let v = config(&[("WMTOP_CLICKHOUSE_PASSWORD", "ch-secret-91")], &[]);
    assert_eq!(v["clickhouse_password"], "(set)");
    assert!(!v.to_string().contains("ch-secret-91"));
}

#[test]
fn config_errors_name_the_line_and_key_and_never_a_secret() {
    let s = settings("cfgerr", None);
    for (text, line, key) in [
        (
            "topic = \"t\"\npassword = \"hunter2-zz9\n",
            "line 2",
            "password",
        ),
        ("pasword = \"hunter2-zz9\"\n", "line 1", "pasword"),
        ("password = 12345678\n", "line 1", "password"),
        (
            "clickhouse_password = \"hunter2-zz9\" x\n",
            "line 1",
            "clickhouse_password",
        ),
        (
            "[kafka_options]\n\"sasl.oauthbearer.client.secret\" = [\"hunter2-zz9\"]\n",
            "line 2",
            "sasl.oauthbearer.client.secret",
        ),
    ] {
        let dir = dir_with_config(text);
        let out = wmtop(&s, &["schema"]).current_dir(&dir).output().unwrap();
        assert!(!out.status.success(), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("hunter2") && !err.contains("12345678"),
            "{err}"
        );
        assert!(
            err.contains("wmtop.toml") && err.contains(line) && err.contains(key),
            "{err}"
        );
        assert!(err.trim().lines().count() <= 2, "one or two lines: {err}");
    }
    // A secret on the command line is refused, saying where it goes.
    let out = wmtop(&s, &["schema", "-X", "ssl.key.password=hunter2-zz9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[kafka_options]") && !err.contains("hunter2"),
        "{err}"
    );
    // A URL's password never shows.
    let out = wmtop(&s, &["schema"])
        .env("WMTOP_CLICKHOUSE_URL", "ftp://bob:hunter2-zz9@ch:1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bob:***@ch:1") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn a_configured_api_that_is_down_fails_and_loads_no_simulated_data() {
    let s = settings("apidown", None);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = dir_with_config(&format!(
        "api_url = \"{dead}\"\nkeycloak_url = \"{dead}\"\n"
    ));
    let started = Instant::now();
    let out = wmtop(&s, &["run"])
        .current_dir(&dir)
        .env("WMTOP_MAX_WAIT", "3s")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a configured API that is down is an error"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("SIMULATOR") && !err.contains("simulator"),
        "{err}"
    );
    assert!(err.contains(&dead), "the error names the API: {err}");
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["simulator"], serde_json::Value::Null);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored = rt.block_on(async { ch(&s).await.stored_rows().await.unwrap() });
    assert_eq!(stored, 0, "nothing written");
}

#[test]
fn with_nothing_configured_the_simulator_runs_and_says_so() {
    let s = settings("simsrc", None);
    let dir = dir_with_config("# nothing\n");
    let out = wmtop(&s, &["produce"]).current_dir(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        line["simulator"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{line}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIMULATOR"));
    assert_eq!(line["messages_delivered"], 122);
}

#[test]
fn health_and_metrics_over_http_agree_with_independent_reads() {
    let mut s = settings("ops", None);
    let (sim, url) = spawn_sim(&s, "20");
    s.api_url = Some(url.clone());
    s.keycloak_url = Some(url);
    let (produced, _) = run_json(&s, &["produce"]);
    let records = produced["records"].as_u64().unwrap();
    let port = free_port();
    let mut consumer = wmtop(&s, &["consume"])
        .env("WMTOP_OPS_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |path: &str| -> Option<String> {
        rt.block_on(async {
            reqwest::get(format!("http://127.0.0.1:{port}{path}"))
                .await
                .ok()?
                .text()
                .await
                .ok()
        })
    };
    // Loaded and committed, as the servers themselves say.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = rt.block_on(async { ch(&s).await.stored_rows().await.unwrap_or(0) });
        if stored == records && independent_lag(&s) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not loaded: {stored} of {records}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The lag sampler runs every 5 s: wait for a sample that has seen the commits.
    let offsets = independent_offsets(&s);
    let metric = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = get("/metrics").unwrap_or_default();
        let lags: Vec<Option<f64>> = offsets
            .keys()
            .map(|p| {
                metric(
                    &text,
                    &format!(
                        "wmtop_consumer_lag{{topic=\"{}\",partition=\"{p}\"}}",
                        s.topic
                    ),
                )
            })
            .collect();
        if lags.iter().all(|l| *l == Some(0.0)) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "lag in /metrics: {lags:?}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        metric(&text, "wmtop_rows_inserted_total"),
        Some(records as f64)
    );
    assert_eq!(
        metric(&text, "wmtop_records_total{outcome=\"loaded\"}"),
        Some(records as f64)
    );
    assert_eq!(
        metric(&text, "wmtop_records_total{outcome=\"set_aside\"}"),
        Some(0.0)
    );
    assert_eq!(metric(&text, "wmtop_messages_consumed_total"), Some(20.0));
    assert_eq!(metric(&text, "wmtop_up{stage=\"clickhouse\"}"), Some(1.0));
    assert!(text.contains("# TYPE wmtop_flush_duration_seconds histogram"));
    let health: serde_json::Value = serde_json::from_str(&get("/health").unwrap()).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["events_inserted"], records);
    assert_eq!(health["events_consumed"], 20);
    // Stopped by SIGTERM: the summary says so, exit 143.
    assert!(Command::new("kill")
        .args(["-TERM", &consumer.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = consumer.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut consumer.stdout.take().unwrap(), &mut out).unwrap();
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["interrupted"], true);
    assert_eq!(line["rows_inserted"], records);
    stop(sim);
}

#[test]
fn a_rolling_range_fetches_the_last_hours_and_every_summary_says_which() {
    const H: i64 = 3_600_000;
    let hour_now = || jiff::Timestamp::now().as_millisecond().div_euclid(H) * H;
    let s = settings("rolling", None);
    let before = hour_now();
    let (line, _) = run_json(&s, &["produce", "--simulator", "--range", "6h"]);
    let after = hour_now();
    let w = &line["window"];
    let (start, end) = (
        w["start_ms"].as_i64().unwrap(),
        w["end_ms"].as_i64().unwrap(),
    );
    assert!(end == before || end == after, "{line}");
    assert_eq!(start, end - 6 * H, "{line}");
    let rfc = |ms: i64| jiff::Timestamp::from_millisecond(ms).unwrap().to_string();
    assert_eq!(
        (w["start"].as_str().unwrap(), w["end"].as_str().unwrap()),
        (rfc(start).as_str(), rfc(end).as_str())
    );
    // The saved answer, read on its own: only records of those hours, as many as said.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(line["saved_to"].as_str().unwrap()).unwrap())
            .unwrap();
    let times: Vec<i64> = saved
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|tx| tx["transactionSeries"].as_array().unwrap().iter())
        .map(|r| r["timestamp"].as_i64().unwrap())
        .collect();
    assert!(!times.is_empty());
    assert!(times.iter().all(|t| (start..=end).contains(t)), "{times:?}");
    assert_eq!(line["records"].as_u64().unwrap(), times.len() as u64);
    // `config` says the window moves, and refuses a range given with a start time.
    let (config, _) = run_json(&s, &["config", "--json", "--range", "6h"]);
    assert_eq!(config["range"], "6h");
    assert_eq!(config["window_rolls"], true);
    let out = wmtop(
        &s,
        &[
            "config",
            "--json",
            "--range",
            "6h",
            "--start-time",
            "now-1d",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("range = 6h") && err.contains("start_time = now-6h"),
        "{err}"
    );
}

#[test]
fn profiles_are_listed_with_their_keys_never_their_values() {
    let s = settings("profiles", None);
    let dir = dir_with_config(
        "database = \"shared\"\n[profiles.staging]\ndatabase = \"staging_db\"\n\
         [profiles.production]\nclickhouse_password = \"pr0d-s3cret\"\n",
    );
    let out = wmtop(
        &s,
        &["config", "--profiles", "--json", "--profile", "staging"],
    )
    .current_dir(&dir)
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("pr0d-s3cret"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let by_name = |n: &str| {
        v["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("staging")["in_force"], true);
    assert_eq!(
        by_name("production")["keys"],
        serde_json::json!(["clickhouse_password"])
    );
    let out = wmtop(&s, &["config", "--json", "--profile", "prod"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("production") && err.contains("staging"),
        "{err}"
    );
}

#[test]
fn a_profile_picks_the_database_a_load_uses_and_flags_still_win() {
    let s = settings("profile_db", None);
    let (staging, other) = (unique("stg"), unique("oth"));
    let dir = dir_with_config(&format!(
        "database = \"shared\"\n[profiles.staging]\ndatabase = \"{staging}\"\n\
         [profiles.other]\ndatabase = \"{other}\"\n"
    ));
    let run = |args: &[&str]| {
        let out = wmtop(&s, args)
            .env_remove("WMTOP_DATABASE")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wmtop {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // The staging profile's database is where a consumer creates its table.
    run(&["--profile", "staging", "consume", "--until-idle", "1"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tables = |db: &str| {
        rt.block_on(query_json(
            &s,
            &format!(
                "SELECT count() AS n FROM system.tables WHERE database = '{db}' AND name = '{}'",
                s.table
            ),
        ))[0]["n"]
            .to_string()
            .trim_matches('"')
            .to_string()
    };
    assert_eq!(
        tables(&staging),
        "1",
        "the table is in the staging profile's database"
    );
    assert_eq!(tables(&other), "0", "and not in the other profile's");
    assert_eq!(tables("shared"), "0", "nor in the shared setting's");
    // A flag wins over the profile.
    let v: serde_json::Value = serde_json::from_str(
        run(&[
            "--profile",
            "other",
            "--database",
            "flag_db",
            "--reload-every",
            "15m",
            "config",
            "--json",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(v["database"], "flag_db", "{v}");
    assert_eq!(v["profile"], "other", "{v}");
    assert_eq!(v["reload_every_ms"], 900_000, "{v}");
    assert_eq!(
        v["revise_ms"],
        3 * 3_600_000,
        "the default revision window: {v}"
    );
}
