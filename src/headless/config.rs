//! `wmtop config`: the settings in force, a secret shown only as set or not, and what
//! the metrics table is on the server.

use std::process::ExitCode;

use serde_json::json;
use wmtop_core::config::redact::mask_url;
use wmtop_core::config::{Moment, Settings, Source};

use super::print_line;
use crate::cli::ConfigArgs;

/// Prints the settings in force, a secret only as set or not, and what the metrics table
/// is on the server (a Distributed table and what is behind it, or its engine).
pub async fn config(settings: &Settings, a: ConfigArgs) -> anyhow::Result<ExitCode> {
    if a.profiles {
        return Ok(profiles(settings, a.json));
    }
    let set = |v: bool| if v { "(set)" } else { "(not set)" };
    let source = match settings.source() {
        Source::Api { .. } => "api".to_string(),
        Source::Simulator { asked: true } => "simulator (asked for)".into(),
        Source::Simulator { asked: false } => "simulator (no API or Keycloak URL set)".into(),
    };
    let options: serde_json::Map<String, serde_json::Value> = settings
        .kafka_options
        .iter()
        .map(|(k, v)| {
            let shown = if wmtop_core::config::is_secret_key(k) {
                "***"
            } else {
                v
            };
            (k.to_string(), json!(shown))
        })
        .collect();
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let mut value = json!({
        "config_file": path(&settings.config_file),
        "source": source,
        "api_url": settings.api_url.as_deref().map(mask_url),
        "keycloak_url": settings.keycloak_url.as_deref().map(mask_url),
        "realm": settings.realm,
        "client_id": settings.client_id,
        "username": settings.username,
        "password": set(!settings.password.is_empty()),
        "client_secret": set(settings.client_secret.is_some()),
        "ca_file": path(&settings.ca_file),
        "application_id": settings.application_id,
        "start_time": moment(settings.start_time),
        "end_time": moment(settings.end_time),
        "index": settings.index,
        "kafka_brokers": settings.kafka_brokers,
        "kafka_security_protocol": settings.kafka_security_protocol.as_str(),
        "kafka_sasl_mechanism": settings.kafka_sasl_mechanism.map(|m| m.as_str()),
        "kafka_sasl_username": settings.kafka_sasl_username,
        "kafka_sasl_password": set(settings.kafka_sasl_password.is_some()),
        "kafka_ca_file": path(&settings.kafka_ca_file),
        "kafka_cert_file": path(&settings.kafka_cert_file),
        "kafka_key_file": path(&settings.kafka_key_file),
        "kafka_options": options,
        "topic": settings.topic,
        "create_topic": settings.create_topic,
        "partitions": settings.partitions,
        "replication_factor": settings.replication_factor,
        "group": settings.group,
        "clickhouse_url": mask_url(&settings.clickhouse_url),
        "clickhouse_user": settings.clickhouse_user,
        "clickhouse_password": set(!settings.clickhouse_password.is_empty()),
        "clickhouse_ca_file": path(&settings.clickhouse_ca_file),
        "database": settings.database,
        "table": settings.table,
        "batch_rows": settings.batch_rows,
        "batch_interval_ms": settings.batch_interval.0.as_millis() as u64,
        "request_timeout_ms": settings.request_timeout.0.as_millis() as u64,
        "max_wait_ms": settings.max_wait.0.as_millis() as u64,
        "ops_addr": settings.ops_addr,
        "data_dir": settings.data_dir.display().to_string(),
        "insecure": settings.insecure,
    });
    let found = wmtop_core::clickhouse::cluster::table_found(settings).await;
    for (k, v) in [
        ("profile", json!(settings.profile)),
        ("range", json!(settings.range.map(|r| r.to_string()))),
        ("window", settings.window().json()),
        ("window_rolls", json!(settings.window_rolls())),
        (
            "reload_every_ms",
            json!(settings.reload_every.map(|s| s.0.as_millis() as u64)),
        ),
        ("revise_ms", json!(settings.revise.0.as_millis() as u64)),
        ("batch_mb", json!(settings.batch_mb)),
        ("clickhouse_cluster", json!(settings.clickhouse_cluster)),
        (
            "clickhouse_local_table",
            json!(settings.clickhouse_local_table),
        ),
        (
            "clickhouse_zookeeper_path",
            json!(settings.clickhouse_zookeeper_path),
        ),
        ("table_found", json!(found)),
    ] {
        value[k] = v;
    }
    print_settings(value, a.json);
    Ok(ExitCode::SUCCESS)
}

/// The settings as one JSON line, or one `key value` line each.
fn print_settings(value: serde_json::Value, as_json: bool) {
    if as_json {
        print_line(value);
    } else if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let shown = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            println!("{k:<24} {shown}");
        }
    }
}

/// The config file's profiles: name, the keys each sets, and whether it is in force.
fn profiles(settings: &Settings, as_json: bool) -> ExitCode {
    let list: Vec<serde_json::Value> = settings
        .profiles
        .iter()
        .map(|(name, keys)| {
            json!({
                "name": name,
                "keys": keys,
                "in_force": settings.profile.as_deref() == Some(name.as_str()),
            })
        })
        .collect();
    if as_json {
        print_line(json!({
            "config_file": settings.config_file.as_ref().map(|p| p.display().to_string()),
            "profiles": list,
        }));
    } else if settings.profiles.is_empty() {
        println!("no profiles (a config file's [profiles.NAME] tables)");
    } else {
        for (name, keys) in &settings.profiles {
            let mark = if settings.profile.as_deref() == Some(name.as_str()) {
                "*"
            } else {
                " "
            };
            println!("{mark} {name:<16} {}", keys.join(", "));
        }
    }
    ExitCode::SUCCESS
}

/// A window time as given: a number for a fixed time, the relative form as text.
fn moment(m: Moment) -> serde_json::Value {
    match m {
        Moment::At(ms) => json!(ms),
        m => json!(m.to_string()),
    }
}
