//! Every statement wmtop's loading and reading rely on, as text built in one place, so
//! that the same SQL runs against the server and is proven on a modern engine by the
//! tests (tests/modern_engine.rs). Each runs on ClickHouse 18.16 and on modern servers.

use crate::clickhouse::queries::quote;
use crate::config::Settings;

/// The table's engine, the engine with its arguments, and its partition key.
pub fn table_info(database: &str, table: &str) -> String {
    format!(
        "SELECT engine, engine_full, partition_key FROM system.tables WHERE database = {} AND name = {}",
        quote(database),
        quote(table)
    )
}

/// The table's columns: name, type, default kind, key membership.
pub fn table_columns(database: &str, table: &str) -> String {
    format!(
        "SELECT name, type, default_kind, is_in_partition_key, is_in_sorting_key \
         FROM system.columns WHERE database = {} AND table = {}",
        quote(database),
        quote(table)
    )
}

/// Per hour of the records `condition` selects ([`written_condition`]): the newest
/// stored version and its content hash (`a`, `n`, `ts`, `v`, `h`).
pub fn stored_versions(qualified: &str, condition: &str) -> String {
    format!(
        "SELECT application_id AS a, transaction_name AS n, toUnixTimestamp(timestamp) AS ts, \
         max(record_version) AS v, argMax(record_hash, record_version) AS h \
         FROM {qualified} WHERE {condition} GROUP BY a, n, ts"
    )
}

/// Whether a database exists (a `name` row when it does).
pub fn database_exists(database: &str) -> String {
    format!(
        "SELECT name FROM system.databases WHERE name = {}",
        quote(database)
    )
}

/// Whether a table exists (a `name` row when it does).
pub fn table_exists(database: &str, table: &str) -> String {
    format!(
        "SELECT name FROM system.tables WHERE database = {} AND name = {}",
        quote(database),
        quote(table)
    )
}

/// The records of these applications and transactions between `lo` and `hi` (epoch
/// seconds), selected through the table's key.
pub fn written_condition(applications: &[&str], names: &[&str], lo: i64, hi: i64) -> String {
    let list = |v: &[&str]| v.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", ");
    format!(
        "application_id IN ({}) AND transaction_name IN ({}) AND timestamp BETWEEN toDateTime({lo}) AND toDateTime({hi})",
        list(applications),
        list(names)
    )
}

/// Per partition (`p`, the partition key's value) of the records selected by
/// `condition`: stored rows beyond one per record (`copies`); partitions without any are
/// left out.
pub fn copies_per_partition(table: &str, partition_key: &str, condition: &str) -> String {
    format!(
        "SELECT p, sum(c - 1) AS copies FROM (\
         SELECT {partition_key} AS p, count() AS c FROM {table} WHERE {condition} \
         GROUP BY p, application_id, transaction_name, timestamp HAVING c > 1) GROUP BY p"
    )
}

/// A partition key's value, as JSON gives it, written as `OPTIMIZE … PARTITION` takes it.
pub fn partition_literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => quote(s),
        serde_json::Value::Array(items) => format!(
            "tuple({})",
            items
                .iter()
                .map(partition_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Merges one partition of a table (`tuple()`: a table without partitions, as a whole),
/// on every host of `cluster` when given.
pub fn merge_partition(table: &str, cluster: Option<&str>, partition: &str) -> String {
    let on = cluster.map_or(String::new(), |c| format!(" ON CLUSTER {c}"));
    match partition {
        "tuple()" => format!("OPTIMIZE TABLE {table}{on} FINAL"),
        p => format!("OPTIMIZE TABLE {table}{on} PARTITION {p} FINAL"),
    }
}

/// The rows the front ends read: the settings' application in the settings' window,
/// selected through the table's key, so no read costs more as the table holds more of
/// other applications and other times.
pub fn window_of(settings: &Settings) -> String {
    let w = settings.window();
    window_condition(
        &settings.application_id,
        w.start_ms.div_euclid(1000),
        w.end_ms.div_euclid(1000),
    )
}

/// One application's rows between `lo` and `hi` (epoch seconds).
pub fn window_condition(application_id: &str, lo: i64, hi: i64) -> String {
    format!(
        "application_id = {} AND timestamp BETWEEN toDateTime({lo}) AND toDateTime({hi})",
        quote(application_id)
    )
}

/// Per transaction (`name`) in `window`: rows stored and distinct records.
pub fn stored_per_transaction(qualified: &str, window: &str) -> String {
    format!(
        "SELECT transaction_name AS name, count() AS rows, uniqExact(application_id, timestamp) AS distinct \
         FROM {qualified} WHERE {window} GROUP BY transaction_name"
    )
}

/// Per transaction and second (`n`, `ts`) in `window`: rows stored.
pub fn stored_per_record(qualified: &str, window: &str) -> String {
    format!(
        "SELECT transaction_name AS n, toUnixTimestamp(timestamp) AS ts, count() AS rows FROM {qualified} \
         WHERE {window} GROUP BY n, ts"
    )
}

/// Dead letters already kept at these (partition, offset) places of these topics.
pub fn kept_dead_letters(dead_letters: &str, topics: &[&str], offsets: &[(i32, i64)]) -> String {
    let topics: Vec<String> = topics.iter().map(|t| quote(t)).collect();
    let offsets: Vec<String> = offsets.iter().map(|(p, o)| format!("({p}, {o})")).collect();
    format!(
        "SELECT topic, kafka_partition, kafka_offset, record_index FROM {dead_letters} \
         WHERE topic IN ({}) AND (kafka_partition, kafka_offset) IN ({})",
        topics.join(", "),
        offsets.join(", ")
    )
}
