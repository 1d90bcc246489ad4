//! Secured servers, as users run them: Kafka over SASL_SSL (SCRAM-SHA-512 and
//! SCRAM-SHA-256, the broker behind a TLS terminator) and ClickHouse over HTTPS, both with
//! a private CA, from `scripts/stack up --secure`. The simulator's dataset loads exactly
//! through them with the binary and the settings a user gives (`WMTOP_…`); a wrong SASL
//! password, an unknown CA, a certificate for another name and a wrong ClickHouse password
//! are each a clear error within 30 s with a non-zero exit and no secret in any output;
//! a read-only ClickHouse user can query and check, and loading names the missing grant.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use wmtop_core::config::{SaslMechanism, Settings};

/// The binary with a user's settings for the secured stack, as environment variables.
fn wmtop(s: &Settings, args: &[&str]) -> Command {
    let mut c = Command::new(wmtop_bin());
    c.args(args)
        .envs(env_for(s))
        .env("WMTOP_OPS_ADDR", "off")
        .env(
            "WMTOP_KAFKA_SECURITY_PROTOCOL",
            s.kafka_security_protocol.as_str(),
        )
        .env_remove("WMTOP_CONFIG")
        .current_dir(std::env::temp_dir());
    let opt = |c: &mut Command, k: &str, v: Option<String>| {
        if let Some(v) = v {
            c.env(k, v);
        }
    };
    opt(
        &mut c,
        "WMTOP_KAFKA_SASL_MECHANISM",
        s.kafka_sasl_mechanism.map(|m| m.as_str().to_string()),
    );
    opt(
        &mut c,
        "WMTOP_KAFKA_SASL_USERNAME",
        s.kafka_sasl_username.clone(),
    );
    opt(
        &mut c,
        "WMTOP_KAFKA_SASL_PASSWORD",
        s.kafka_sasl_password
            .as_ref()
            .map(|p| p.expose().to_string()),
    );
    opt(
        &mut c,
        "WMTOP_KAFKA_CA_FILE",
        s.kafka_ca_file.as_ref().map(|p| p.display().to_string()),
    );
    opt(
        &mut c,
        "WMTOP_CLICKHOUSE_CA_FILE",
        s.clickhouse_ca_file
            .as_ref()
            .map(|p| p.display().to_string()),
    );
    c.env("WMTOP_CLICKHOUSE_USER", &s.clickhouse_user)
        .env("WMTOP_CLICKHOUSE_PASSWORD", s.clickhouse_password.expose());
    c
}

/// Runs to the end, timed.
fn run(mut c: Command) -> (Output, Duration) {
    let started = Instant::now();
    let out = c.output().unwrap();
    (out, started.elapsed())
}

fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "one JSON line ({e}): {text} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// No secret of the secured stack, nor `extra`, in the output.
fn assert_no_secret(out: &Output, extra: &[&str]) {
    let env = secure_env();
    let mut secrets: Vec<String> = env
        .iter()
        .filter(|(k, _)| k.ends_with("_PASSWORD"))
        .map(|(_, v)| v.clone())
        .collect();
    secrets.extend(extra.iter().map(|s| s.to_string()));
    secrets.push(PASSWORD.to_string());
    for text in [&out.stdout, &out.stderr] {
        let t = String::from_utf8_lossy(text);
        for secret in &secrets {
            assert!(!t.contains(secret.as_str()), "a secret is shown: {t}");
        }
    }
}

fn load_through_the_secured_stack(mechanism: SaslMechanism, name: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(sim_config(122, 288)));
    let s = secure_settings(name, Some(&sim.url()), mechanism);
    // The loader users may not create topics: the topic exists, as on a managed cluster.
    create_topic(&s, 3, 1, &[]);
    let (out, _) = run(wmtop(&s, &["produce"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let produced = json(&out);
    assert_eq!(produced["messages_delivered"], 122);
    assert_no_secret(&out, &[]);
    let (out, _) = run(wmtop(&s, &["consume", "--until-idle", "3"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let consumed = json(&out);
    assert_eq!(consumed["verdict"], "done");
    assert_eq!(consumed["rows_inserted"], produced["records"]);
    assert_no_secret(&out, &[]);
    let (out, _) = run(wmtop(&s, &["check", "--json"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json(&out)["ok"], true);
    // Rows per transaction exactly the API's, read back over HTTPS with the test CA.
    let answer = wmtop_core::source::api::read_answer(&s.last_fetch_path()).unwrap();
    rt.block_on(assert_exact(&s, &expected_rows(&answer)));
    rt.block_on(sim.shutdown());
}

#[test]
fn the_dataset_loads_exactly_over_sasl_ssl_scram_sha_512_into_https_clickhouse() {
    load_through_the_secured_stack(SaslMechanism::ScramSha512, "sec512");
}

#[test]
fn the_dataset_loads_exactly_over_sasl_ssl_scram_sha_256_into_https_clickhouse() {
    load_through_the_secured_stack(SaslMechanism::ScramSha256, "sec256");
}

/// A run that must fail fast, clearly, without a secret.
fn fails_clearly(s: &Settings, args: &[&str], expect: &[&str], extra_secrets: &[&str]) -> String {
    let (out, took) = run(wmtop(s, args));
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
    assert_no_secret(&out, extra_secrets);
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for e in expect {
        assert!(all.contains(e), "{args:?}: expected {e:?} in:\n{all}");
    }
    all
}

#[test]
fn wrong_credentials_and_untrusted_certificates_are_clear_errors_within_30_s() {
    let env = secure_env();
    let base = secure_settings("secfail", None, SaslMechanism::ScramSha512);

    let mut s = base.clone();
    s.kafka_sasl_password = Some(wmtop_core::config::secret::Secret::new(
        "wrong-sasl-pw-4471",
    ));
    fails_clearly(
        &s,
        &["consume", "--until-idle", "2"],
        &["refused the SASL login", "\"verdict\":\"failed\""],
        &["wrong-sasl-pw-4471"],
    );
    fails_clearly(
        &s,
        &["produce", "--from-file", "/dev/null"],
        &[],
        &["wrong-sasl-pw-4471"],
    );

    let mut s = base.clone();
    s.kafka_ca_file = Some(env["WMTOP_SECURE_OTHER_CA"].clone().into());
    fails_clearly(
        &s,
        &["consume", "--until-idle", "2"],
        &[
            "TLS with the brokers failed",
            "unknown certificate authority",
        ],
        &[],
    );

    let mut s = base.clone();
    s.clickhouse_password = wmtop_core::config::secret::Secret::new("wrong-ch-pw-9012");
    fails_clearly(
        &s,
        &["consume", "--until-idle", "2"],
        &["ClickHouse at https://127.0.0.1", "Wrong password"],
        &["wrong-ch-pw-9012"],
    );
    fails_clearly(
        &s,
        &["query", "SELECT 1"],
        &["Wrong password"],
        &["wrong-ch-pw-9012"],
    );

    let mut s = base.clone();
    s.clickhouse_ca_file = Some(env["WMTOP_SECURE_OTHER_CA"].clone().into());
    fails_clearly(
        &s,
        &["query", "SELECT 1"],
        &["unknown certificate authority", "clickhouse_ca_file"],
        &[],
    );

    let mut s = base.clone();
    s.clickhouse_url = s.clickhouse_url.replace("127.0.0.1", "localhost");
    fails_clearly(&s, &["query", "SELECT 1"], &["name mismatch"], &[]);

    // Credentials in a URL are masked wherever the URL is named.
    let mut s = base.clone();
    s.clickhouse_url = format!("https://someone:url-pw-5521@127.0.0.1:{}", free_port());
    // Nothing listens there: that may pass, so it is retried until max_wait.
    s.max_wait = wmtop_core::config::Span(Duration::from_secs(2));
    fails_clearly(
        &s,
        &["query", "SELECT 1"],
        &["someone:***@127.0.0.1"],
        &["url-pw-5521"],
    );
}

#[test]
fn a_read_only_user_queries_and_checks_and_loading_names_the_missing_grant() {
    let env = secure_env();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(sim_config(6, 24)));
    // Load as the loader first.
    let loader = secure_settings("secro", Some(&sim.url()), SaslMechanism::ScramSha512);
    create_topic(&loader, 3, 1, &[]);
    let (out, _) = run(wmtop(&loader, &["produce"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = run(wmtop(&loader, &["consume", "--until-idle", "2"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = json(&out)["rows_inserted"].as_u64().unwrap();

    let mut reader = loader.clone();
    reader.clickhouse_user = env["WMTOP_SECURE_CH_READER"].clone();
    reader.clickhouse_password =
        wmtop_core::config::secret::Secret::new(env["WMTOP_SECURE_CH_READER_PASSWORD"].clone());
    let (out, _) = run(wmtop(&reader, &["query", "rows", "--format", "json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["rows"]
                .as_u64()
                .or_else(|| v["rows"].as_str()?.parse().ok())
                .unwrap()
        })
        .sum();
    assert_eq!(total, records);
    let (out, _) = run(wmtop(&reader, &["check", "--json"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["ok"], true);
    let (out, _) = run(wmtop(&reader, &["dead-letters"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = fails_clearly(
        &reader,
        &["consume", "--until-idle", "2"],
        &["read-only", "GRANT INSERT ON"],
        &[],
    );
    assert!(
        all.contains(&format!(
            "GRANT CREATE TABLE ON {}.* TO {}",
            reader.database, reader.clickhouse_user
        )),
        "{all}"
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn the_acls_hold_a_missing_topic_names_create_and_a_user_without_read_on_the_group_is_told() {
    let env = secure_env();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(sim_config(4, 24)));
    let loader = secure_settings("secacl", Some(&sim.url()), SaslMechanism::ScramSha256);
    // The loader may not create topics: the missing permission is named, at once.
    fails_clearly(
        &loader,
        &["produce"],
        &[
            &format!("creating topic {} was refused", loader.topic),
            "Topic authorization failed",
            "it needs the CREATE permission",
        ],
        &[],
    );
    create_topic(&loader, 3, 1, &[]);
    let (out, _) = run(wmtop(&loader, &["produce"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["messages_delivered"], 4);
    // A user that may only describe: consuming is refused on the group, by name.
    let mut describer = loader.clone();
    describer.kafka_sasl_mechanism = Some(SaslMechanism::ScramSha512);
    describer.kafka_sasl_username = Some(env["WMTOP_SECURE_DESCRIBER_USER"].clone());
    describer.kafka_sasl_password = Some(wmtop_core::config::secret::Secret::new(
        env["WMTOP_SECURE_DESCRIBER_PASSWORD"].clone(),
    ));
    fails_clearly(
        &describer,
        &["consume", "--until-idle", "2"],
        &[
            &format!(
                "user wmtop_describer may not use consumer group {}",
                describer.group
            ),
            &format!("it needs the READ permission on group {}", describer.group),
            "\"verdict\":\"failed\"",
        ],
        &[],
    );
    // The loader reads it all.
    let (out, _) = run(wmtop(&loader, &["consume", "--until-idle", "2"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = wmtop_core::source::api::read_answer(&loader.last_fetch_path()).unwrap();
    rt.block_on(assert_exact(&loader, &expected_rows(&answer)));
    rt.block_on(sim.shutdown());
}
