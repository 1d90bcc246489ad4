//! Every statement wmtop's loading and reading rely on, as text built in one place, so
//! that the same SQL runs against the server and is proven on a modern engine by the
//! tests (tests/modern_engine.rs). Each runs on ClickHouse 18.16 and on modern servers.

use crate::clickhouse::queries::quote;

/// The table's engine and partition key.
pub fn table_info(database: &str, table: &str) -> String {
    format!(
        "SELECT engine, partition_key FROM system.tables WHERE database = {} AND name = {}",
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

/// Per hour of these transactions between `lo` and `hi` (epoch seconds): the newest
/// stored version and its content hash (`a`, `n`, `ts`, `v`, `h`).
pub fn stored_versions(qualified: &str, names: &[&str], lo: i64, hi: i64) -> String {
    let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
    format!(
        "SELECT application_id AS a, transaction_name AS n, toUnixTimestamp(timestamp) AS ts, \
         max(record_version) AS v, argMax(record_hash, record_version) AS h \
         FROM {qualified} WHERE transaction_name IN ({}) AND toUnixTimestamp(timestamp) BETWEEN {lo} AND {hi} \
         GROUP BY a, n, ts",
        list.join(", ")
    )
}

/// Per month (`m`): rows stored and distinct records.
pub fn copies_per_month(qualified: &str, months: &[u32]) -> String {
    let list: Vec<String> = months.iter().map(u32::to_string).collect();
    format!(
        "SELECT toYYYYMM(timestamp) AS m, count() AS stored, \
         uniqExact(application_id, transaction_name, timestamp) AS distinct \
         FROM {qualified} WHERE toYYYYMM(timestamp) IN ({}) GROUP BY m",
        list.join(", ")
    )
}

/// Merges one month (`toYYYYMM`) of a table partitioned by month.
pub fn merge_month(qualified: &str, month: u32) -> String {
    format!("OPTIMIZE TABLE {qualified} PARTITION {month} FINAL")
}

/// Merges the whole table (for a table partitioned some other way).
pub fn merge_all(qualified: &str) -> String {
    format!("OPTIMIZE TABLE {qualified} FINAL")
}

/// Per transaction (`name`): rows stored and distinct records.
pub fn stored_per_transaction(qualified: &str) -> String {
    format!(
        "SELECT transaction_name AS name, count() AS rows, uniqExact(application_id, timestamp) AS distinct \
         FROM {qualified} GROUP BY transaction_name"
    )
}

/// Per transaction and second (`n`, `ts`): rows stored.
pub fn stored_per_record(qualified: &str) -> String {
    format!(
        "SELECT transaction_name AS n, toUnixTimestamp(timestamp) AS ts, count() AS rows FROM {qualified} \
         GROUP BY n, ts"
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
