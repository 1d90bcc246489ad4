//! Layering, validation and the file's errors.
use super::*;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

fn temp_file(text: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wmtop-config-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wmtop.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path
}

#[test]
fn flags_win_over_env_over_file_over_defaults() {
    let path = temp_file("topic = \"from_file\"\ngroup = \"file_group\"\ntable = \"file_table\"\npassword = \"pw-file\"\n");
    let args = CommonArgs {
        config: Some(path),
        topic: Some("from_flag".into()),
        ..CommonArgs::default()
    };
    let env = |k: &str| (k == "WMTOP_PASSWORD").then(|| "pw-env".to_string());
    let s = Settings::resolve_with(&args, &env).unwrap();
    assert_eq!(s.topic, "from_flag");
    assert_eq!(s.group, "file_group");
    assert_eq!(s.table, "file_table");
    assert_eq!(s.database, "watermelon");
    assert_eq!(s.password.expose(), "pw-env");
    let s = Settings::resolve_with(&args, &|_| None).unwrap();
    assert_eq!(s.password.expose(), "pw-file");
}

#[test]
fn unknown_file_keys_and_bad_values_are_explained() {
    let path = temp_file("topik = \"x\"\n");
    let args = CommonArgs {
        config: Some(path),
        ..CommonArgs::default()
    };
    let err = Settings::resolve_with(&args, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("topik") && err.contains("wmtop.toml"), "{err}");

    let args = CommonArgs {
        batch_rows: Some(0),
        ..CommonArgs::default()
    };
    assert_eq!(error_of(&args), "setting batch_rows: must be at least 1");
    let args = CommonArgs {
        batch_mb: Some(0),
        ..CommonArgs::default()
    };
    assert_eq!(error_of(&args), "setting batch_mb: must be at least 1");
    let args = CommonArgs {
        table: Some("x; DROP".into()),
        ..CommonArgs::default()
    };
    assert!(Settings::resolve_with(&args, &|_| None)
        .unwrap_err()
        .to_string()
        .contains("setting table"));
}

#[test]
fn a_readable_file_with_a_secret_earns_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_file("password = \"s3cret-value\"\n# readable\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = CommonArgs {
        config: Some(path.clone()),
        ..CommonArgs::default()
    };
    let s = Settings::resolve_with(&args, &|_| None).unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert!(s.warnings[0].contains("chmod 600"));
    assert!(!s.warnings[0].contains("s3cret-value"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Settings::resolve_with(&args, &|_| None)
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn spans_and_times_parse() {
    assert_eq!(
        "250ms".parse::<Span>().unwrap().0,
        Duration::from_millis(250)
    );
    assert_eq!("5".parse::<Span>().unwrap().0, Duration::from_secs(5));
    assert_eq!("2m".parse::<Span>().unwrap().0, Duration::from_secs(120));
    assert!("5 parsecs".parse::<Span>().is_err());
    assert_eq!(
        "1767205800000".parse::<EpochMs>().unwrap(),
        EpochMs(1_767_205_800_000)
    );
    assert!("yesterday".parse::<EpochMs>().is_err());
}

fn file_args(text: &str) -> CommonArgs {
    CommonArgs {
        config: Some(temp_file(text)),
        ..CommonArgs::default()
    }
}

fn error_of(args: &CommonArgs) -> String {
    Settings::resolve_with(args, &|_| None)
        .unwrap_err()
        .to_string()
}

#[test]
fn every_flag_reads_its_own_env_var() {
    use clap::CommandFactory;
    #[derive(clap::Parser)]
    struct T {
        #[command(flatten)]
        common: CommonArgs,
    }
    let cmd = T::command();
    let mut checked = 0;
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "kafka_option" | "help") {
            continue;
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert_eq!(
            env,
            Some(format!("WMTOP_{}", id.to_ascii_uppercase())),
            "flag --{id}"
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} flags seen");
}

#[test]
fn secrets_in_a_bad_file_are_never_shown() {
    for (text, line, key) in [
        ("topic = \"t\"\npassword = \"hunter2-abc\n", 2, "password"),
        ("password = 12345678\n", 1, "password"),
        (
            "kafka_sasl_password = [\"hunter2-abc\"]\n",
            1,
            "kafka_sasl_password",
        ),
        (
            "[kafka_options]\n\"sasl.oauthbearer.client.secret\" = [\"hunter2-abc\"]\n",
            2,
            "sasl.oauthbearer.client.secret",
        ),
        (
            "client_secret = \"hunter2-abc\" extra\n",
            1,
            "client_secret",
        ),
    ] {
        let err = error_of(&file_args(text));
        assert!(
            !err.contains("hunter2") && !err.contains("12345678"),
            "{err}"
        );
        assert!(err.contains(&format!("line {line}")), "{err}");
        assert!(err.contains(key) || err.contains("not valid TOML"), "{err}");
        assert!(err.contains("wmtop.toml"), "{err}");
        assert!(err.lines().count() <= 2, "{err}");
    }
}

#[test]
fn an_unknown_key_is_named_with_a_suggestion_and_without_its_value() {
    let err = error_of(&file_args("topic = \"a\"\npasword = \"hunter2-abc\"\n"));
    assert!(
        err.contains("line 2") && err.contains("\"pasword\""),
        "{err}"
    );
    assert!(err.contains("did you mean \"password\""), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.lines().count() == 1, "{err}");
    let err = error_of(&file_args("topik = \"x\"\n"));
    assert!(err.contains("did you mean \"topic\""), "{err}");
    // Non-secret values may be shown.
    let err = error_of(&file_args("batch_rows = \"many\"\n"));
    assert!(
        err.contains("key \"batch_rows\"") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn kafka_options_come_from_x_and_the_file_and_refuse_secrets_on_the_command_line() {
    let mut args = file_args(
        "[kafka_options]\n\"ssl.key.password\" = \"k3y-pass\"\n\"fetch.wait.max.ms\" = 100\n",
    );
    args.kafka_option = vec!["fetch.wait.max.ms=250".into(), "client.rack=r1".into()];
    let s = Settings::resolve_with(&args, &|_| None).unwrap();
    assert_eq!(s.kafka_options.get("fetch.wait.max.ms"), Some("250"));
    assert_eq!(s.kafka_options.get("client.rack"), Some("r1"));
    assert_eq!(s.kafka_options.get("ssl.key.password"), Some("k3y-pass"));
    let debug = format!("{s:?}");
    assert!(!debug.contains("k3y-pass"), "{debug}");
    assert!(debug.contains("client.rack"), "{debug}");

    for (x, expect) in [
        ("ssl.key.password=k3y-pass", "config file's [kafka_options]"),
        (
            "sasl.oauthbearer.client.secret=k3y-pass",
            "config file's [kafka_options]",
        ),
        ("group.id=other", "--group"),
        ("enable.auto.commit=true", "commits only after ClickHouse"),
        ("bootstrap.servers=h:1", "--kafka-brokers"),
        ("linger.ms", "expected KEY=VALUE"),
    ] {
        let args = CommonArgs {
            kafka_option: vec![x.into()],
            ..CommonArgs::default()
        };
        let err = error_of(&args);
        assert!(err.contains(expect), "{x}: {err}");
        assert!(!err.contains("k3y-pass"), "{err}");
    }
}

#[test]
fn the_simulator_runs_only_when_asked_or_when_nothing_is_configured() {
    let d = Settings::defaults();
    assert_eq!(d.source(), Source::Simulator { asked: false });
    let args = CommonArgs {
        api_url: Some("http://api:1".into()),
        keycloak_url: Some("http://kc:1".into()),
        ..CommonArgs::default()
    };
    let s = Settings::resolve_with(&args, &|_| None).unwrap();
    assert_eq!(
        s.source(),
        Source::Api {
            api_url: "http://api:1".into(),
            keycloak_url: "http://kc:1".into()
        }
    );
    // From the file alone, too.
    let s = Settings::resolve_with(
        &file_args("api_url = \"http://api:1\"\nkeycloak_url = \"http://kc:1\"\n"),
        &|_| None,
    )
    .unwrap();
    assert!(matches!(s.source(), Source::Api { .. }));
    // One without the other is an error, not a default.
    let err = error_of(&file_args("api_url = \"http://api:1\"\n"));
    assert!(
        err.contains("keycloak_url") && err.contains("set both"),
        "{err}"
    );
    let err = error_of(&file_args(
        "simulator = true\napi_url = \"http://a:1\"\nkeycloak_url = \"http://k:1\"\n",
    ));
    assert!(err.contains("choose one"), "{err}");
    let s = Settings::resolve_with(&file_args("simulator = true\n"), &|_| None).unwrap();
    assert_eq!(s.source(), Source::Simulator { asked: true });
}

#[test]
fn kafka_security_settings_are_checked_together() {
    let ca = temp_file("-----BEGIN CERTIFICATE-----\n");
    let base = || CommonArgs {
        kafka_security_protocol: Some(SecurityProtocol::SaslSsl),
        kafka_sasl_mechanism: Some(SaslMechanism::ScramSha512),
        kafka_sasl_username: Some("u".into()),
        kafka_ca_file: Some(ca.clone()),
        ..CommonArgs::default()
    };
    let env = |k: &str| (k == "WMTOP_KAFKA_SASL_PASSWORD").then(|| "pw-1".to_string());
    let s = Settings::resolve_with(&base(), &env).unwrap();
    assert_eq!(
        s.kafka_sasl_password.as_ref().map(Secret::expose),
        Some("pw-1")
    );
    let err = error_of(&base());
    assert!(
        err.contains("kafka_sasl_password") && err.contains("WMTOP_KAFKA_SASL_PASSWORD"),
        "{err}"
    );
    let mut a = base();
    a.kafka_sasl_mechanism = None;
    assert!(Settings::resolve_with(&a, &env)
        .unwrap_err()
        .to_string()
        .contains("kafka_sasl_mechanism"));
    let mut a = base();
    a.kafka_security_protocol = Some(SecurityProtocol::Plaintext);
    let err = Settings::resolve_with(&a, &env).unwrap_err().to_string();
    assert!(err.contains("use SASL_SSL"), "{err}");
    let mut a = base();
    a.kafka_cert_file = Some(ca.clone());
    let err = Settings::resolve_with(&a, &env).unwrap_err().to_string();
    assert!(err.contains("kafka_key_file"), "{err}");
    let mut a = base();
    a.kafka_ca_file = Some("/nonexistent/ca.pem".into());
    let err = Settings::resolve_with(&a, &env).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    assert!("sasl_ssl".parse::<SecurityProtocol>().is_ok());
    assert!("GSSAPI"
        .parse::<SaslMechanism>()
        .unwrap_err()
        .contains("not built"));
}

#[test]
fn urls_with_credentials_are_masked_in_errors() {
    let args = CommonArgs {
        clickhouse_url: Some("ftp://alice:pa55word@h:1".into()),
        ..CommonArgs::default()
    };
    let err = error_of(&args);
    assert!(
        err.contains("alice:***@h:1") && !err.contains("pa55word"),
        "{err}"
    );
}

/// assets/wmtop.example.toml, as shipped.
const EXAMPLE: &str = include_str!("../../../../assets/wmtop.example.toml");

#[test]
fn the_example_file_loads_gives_the_defaults_and_names_every_setting() {
    let s = Settings::resolve_with(&file_args(EXAMPLE), &|_| None).unwrap();
    let d = Settings::defaults();
    let shown = |s: &Settings| {
        let mut s = s.clone();
        s.config_file = None;
        s.warnings.clear();
        s.data_dir = PathBuf::new();
        s.window_given = false;
        format!("{s:?}")
    };
    assert_eq!(
        shown(&s),
        shown(&d),
        "the example's values are the defaults"
    );
    for key in crate::config::settings::FILE_KEYS {
        let named = EXAMPLE.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key} ="))
                || l.starts_with(&format!("[{key}]"))
                || l.starts_with(&format!("[{key}."))
        });
        assert!(named, "assets/wmtop.example.toml does not name `{key}`");
    }
}

#[test]
fn the_example_files_secured_cluster_loads_once_uncommented() {
    let (top, rest) = EXAMPLE
        .split_once("# --- A secured cluster")
        .expect("the secured cluster block");
    let block: Vec<&str> = rest
        .lines()
        .take_while(|l| !l.starts_with("# --- librdkafka"))
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.contains(" = "))
        .collect();
    let keys: Vec<&str> = block.iter().filter_map(|l| l.split(" = ").next()).collect();
    assert!(keys.len() >= 8, "{keys:?}");
    let mut text: String = top
        .lines()
        .filter(|l| !keys.iter().any(|k| l.starts_with(&format!("{k} ="))))
        .map(|l| format!("{l}\n"))
        .collect();
    for l in &block {
        text.push_str(l);
        text.push('\n');
    }
    let s = Settings::resolve_with(&file_args(&text), &|_| None).unwrap();
    assert_eq!(s.kafka_security_protocol, SecurityProtocol::SaslSsl);
    assert_eq!(s.kafka_sasl_username.as_deref(), Some("wmtop_loader"));
    assert!(!s.create_topic);
    assert_eq!(s.clickhouse_url, "https://clickhouse.example.com:8443");
}

/// 2026-03-29T01:30:00Z: the night Europe moves its clocks, which UTC does not.
const NOW: i64 = 1_774_747_800_000;
const H: i64 = 3_600_000;

#[test]
fn window_times_take_every_form_and_relative_ones_align_to_the_hour() {
    let at = |text: &str| text.parse::<Moment>().unwrap().resolve(NOW);
    let hour = NOW - 30 * 60_000; // 01:00
    let midnight = NOW - 90 * 60_000;
    assert_eq!(at("now"), hour);
    assert_eq!(at("NOW"), hour);
    assert_eq!(at("now-12d"), hour - 12 * 24 * H);
    assert_eq!(at("now - 36h"), hour - 36 * H);
    assert_eq!(at("-36h"), hour - 36 * H);
    assert_eq!(
        at("now-90m"),
        midnight,
        "00:00, not 00:00 minus half an hour"
    );
    assert_eq!(at("now+1h"), hour + H);
    assert_eq!(at("-2w"), hour - 14 * 24 * H);
    assert_eq!(at("today"), midnight);
    assert_eq!(at("today-1d"), midnight - 24 * H);
    assert_eq!(at("today+90m"), midnight + H);
    // Fixed times are used as given, to the millisecond.
    assert_eq!(at("1768242540000"), 1_768_242_540_000);
    assert_eq!(at("2026-03-29T01:30:00.5Z"), NOW + 500);
    assert_eq!(at("2026-03-29T03:30:00+02:00"), NOW);
    // Shown as it can be given again.
    for text in [
        "now",
        "now-12d",
        "now-36h",
        "now+90m",
        "today-1d",
        "1768242540000",
    ] {
        assert_eq!(text.parse::<Moment>().unwrap().to_string(), text);
    }
    assert_eq!("-36h".parse::<Moment>().unwrap().to_string(), "now-36h");
    for bad in [
        "yesterday",
        "now-12",
        "now-12y",
        "12d",
        "now-0h",
        "today-",
        "",
    ] {
        let e = bad.parse::<Moment>().unwrap_err();
        assert!(
            e.contains("now-12d") && e.contains("RFC 3339"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn a_bad_window_time_names_the_setting_and_the_accepted_forms() {
    let e = error_of(&file_args("start_time = \"last week\"\n"));
    assert!(e.contains("start_time") && e.contains("now-12d"), "{e}");
    assert!(e.contains("today"), "{e}");
}

#[test]
fn range_is_shorthand_for_now_minus_it_until_now() {
    let args = CommonArgs {
        range: Some("12d".parse().unwrap()),
        ..CommonArgs::default()
    };
    let s = Settings::resolve_with(&args, &|_| None).unwrap();
    let w = s.window_at(NOW);
    let hour = NOW - 30 * 60_000;
    assert_eq!((w.start_ms, w.end_ms), (hour - 12 * 24 * H, hour));
    assert!(s.window_rolls());
    assert_eq!(
        w.rfc3339(),
        (
            "2026-03-17T01:00:00Z".to_string(),
            "2026-03-29T01:00:00Z".to_string()
        )
    );
    // The defaults are the sample deployment's fixed window.
    let d = Settings::defaults();
    assert!(!d.window_rolls());
    assert_eq!(d.window_at(NOW).start_ms, 1_767_205_800_000);
    assert!("0d".parse::<Range>().is_err() && "12".parse::<Range>().is_err());
}

#[test]
fn range_with_a_start_or_end_time_is_refused_naming_both() {
    for file in ["start_time = \"now-2d\"\n", "end_time = 1768242540000\n"] {
        let mut args = file_args(file);
        args.range = Some("12d".parse().unwrap());
        let e = error_of(&args);
        assert!(
            e.contains("range = 12d") && e.contains("start_time = now-12d"),
            "{e}"
        );
    }
    let e = error_of(&file_args("start_time = \"now\"\nend_time = \"now-1d\"\n"));
    assert!(e.contains("is not before end_time now-1d"), "{e}");
}

const PROFILES: &str = "topic = \"shared_topic\"\ndatabase = \"shared_db\"\n\n\
[profiles.staging]\ndatabase = \"staging_db\"\nkafka_brokers = \"kafka-staging:9092\"\n\n\
[profiles.production]\ndatabase = \"prod_db\"\nclickhouse_password = \"pr0d-s3cret\"\n\
[profiles.production.kafka_options]\n\"socket.timeout.ms\" = 30000\n";

#[test]
fn a_profile_is_chosen_by_name_over_the_shared_settings_and_flags_still_win() {
    let with = |profile: Option<&str>, database: Option<&str>| {
        let mut args = file_args(PROFILES);
        args.profile = profile.map(str::to_string);
        args.database = database.map(str::to_string);
        Settings::resolve_with(&args, &|_| None).unwrap()
    };
    let shared = with(None, None);
    assert_eq!(
        (shared.database.as_str(), shared.topic.as_str()),
        ("shared_db", "shared_topic")
    );
    assert_eq!(shared.kafka_brokers, "127.0.0.1:9092");
    let staging = with(Some("staging"), None);
    assert_eq!(
        (
            staging.database.as_str(),
            staging.topic.as_str(),
            staging.kafka_brokers.as_str()
        ),
        ("staging_db", "shared_topic", "kafka-staging:9092")
    );
    assert_eq!(staging.profile.as_deref(), Some("staging"));
    let prod = with(Some("production"), None);
    assert_eq!(prod.database, "prod_db");
    assert_eq!(prod.clickhouse_password.expose(), "pr0d-s3cret");
    assert_eq!(prod.kafka_options.get("socket.timeout.ms"), Some("30000"));
    assert_eq!(
        prod.kafka_brokers, "127.0.0.1:9092",
        "staging's brokers stay in staging"
    );
    let flagged = with(Some("production"), Some("from_flag"));
    assert_eq!(flagged.database, "from_flag");
    // Listed by name with the keys each sets, never the values.
    let listed = format!("{:?}", prod.profiles);
    assert!(listed.contains("staging") && listed.contains("clickhouse_password"));
    assert!(!listed.contains("pr0d-s3cret"));
}

#[test]
fn an_unknown_profile_is_refused_listing_the_known_ones_and_secrets_stay_hidden() {
    let mut args = file_args(PROFILES);
    args.profile = Some("prod".into());
    let e = error_of(&args);
    assert!(
        e.contains("no profile \"prod\"") && e.contains("production") && e.contains("staging"),
        "{e}"
    );
    // A bad value in a profile that holds a secret: the line of the profile, no value.
    let bad = "[profiles.p]\nclickhouse_password = \"hunter2-secret\"\nbatch_rows = \"many\"\n";
    let mut args = file_args(bad);
    args.profile = Some("p".into());
    let e = error_of(&args);
    assert!(e.contains("line 1") && e.contains("[profiles.p]"), "{e}");
    assert!(!e.contains("hunter2") && !e.contains("many"), "{e}");
    // An unknown key in a profile is named with a suggestion, without its value.
    let mut args = file_args("[profiles.p]\ndatabse = \"x-value\"\n");
    args.profile = Some("p".into());
    let e = error_of(&args);
    assert!(
        e.contains("\"databse\"")
            && e.contains("did you mean \"database\"")
            && !e.contains("x-value"),
        "{e}"
    );
    // No file at all.
    let args = CommonArgs {
        config: None,
        profile: Some("staging".into()),
        ..CommonArgs::default()
    };
    let e = Settings::resolve_with(&args, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("profile") && e.contains("no config file"), "{e}");
}
