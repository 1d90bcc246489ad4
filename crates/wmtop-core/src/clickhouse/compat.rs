//! Server differences, kept in one place: which column types a ClickHouse version has
//! (`DateTime64` from 20.1, `Bool` from 21.12, `LowCardinality` from 19.9), the DDL wmtop
//! creates for that version (on one server, or on a cluster as Replicated tables behind a
//! Distributed one), the name of the setting that makes a Distributed insert synchronous
//! (`insert_distributed_sync`, `distributed_foreground_insert` from 23.12), and the old
//! servers' habit (before 22.6) of skipping whitespace bytes at the start of a RowBinary
//! body (ClickHouse issue 37420).

use std::fmt::Write as _;

use serde::Serialize;

use crate::record::columns::{Kind, COLUMNS, INGESTION_TIME, RECORD_HASH, RECORD_VERSION};

/// A server version, as `SELECT version()` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(ServerVersion { major, minor })
    }

    fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// `DateTime64` arrived in 20.1.
    pub fn has_datetime64(self) -> bool {
        self.at_least(20, 1)
    }

    /// `Bool` arrived in 21.12.
    pub fn has_bool(self) -> bool {
        self.at_least(21, 12)
    }

    /// `LowCardinality` is no longer experimental from 19.9.
    pub fn has_low_cardinality(self) -> bool {
        self.at_least(19, 9)
    }

    /// Before 22.6 the server skips whitespace bytes between `FORMAT RowBinary` and the
    /// data, so a body must not start with one.
    pub fn skips_leading_whitespace(self) -> bool {
        !self.at_least(22, 6)
    }

    /// The setting that makes an insert into a Distributed table return only once every
    /// shard stored its rows (renamed in 23.12; the old name stays as an alias there).
    pub fn sync_distributed_insert(self) -> &'static str {
        if self.at_least(23, 12) {
            "distributed_foreground_insert"
        } else {
            "insert_distributed_sync"
        }
    }
}

/// Where a table wmtop creates goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On the server wmtop talks to.
    Here,
    /// On every replica of `cluster` (`ON CLUSTER`), Replicated at `zk_path` (its
    /// `{shard}` left to the servers' macros) with `{replica}` as the replica's name.
    Cluster { cluster: String, zk_path: String },
}

impl Placement {
    fn on_cluster(&self) -> String {
        match self {
            Placement::Here => String::new(),
            Placement::Cluster { cluster, .. } => format!(" ON CLUSTER {cluster}"),
        }
    }

    /// `ReplacingMergeTree(version)`, Replicated on a cluster.
    fn replacing(&self, version: &str) -> String {
        match self {
            Placement::Here => format!("ReplacingMergeTree({version})"),
            Placement::Cluster { zk_path, .. } => {
                format!("ReplicatedReplacingMergeTree('{zk_path}', '{{replica}}', {version})")
            }
        }
    }
}

/// A ZooKeeper path template with `{database}` and `{table}` filled in (18.16 has no
/// such macros); `{shard}` and other server macros stay.
pub fn zk_path(template: &str, database: &str, table: &str) -> String {
    template
        .replace("{database}", database)
        .replace("{table}", table)
}

/// The ClickHouse type wmtop gives a column of this kind on a server of this version.
pub fn column_type(kind: Kind, v: ServerVersion) -> &'static str {
    match kind {
        Kind::Id if v.has_low_cardinality() => "LowCardinality(String)",
        Kind::Id => "String",
        Kind::Int => "Nullable(Int64)",
        Kind::Float => "Nullable(Float64)",
        Kind::Text if v.has_low_cardinality() => "LowCardinality(Nullable(String))",
        Kind::Text => "Nullable(String)",
        Kind::Flag if v.has_bool() => "Nullable(Bool)",
        Kind::Flag => "Nullable(UInt8)",
        Kind::Time if v.has_datetime64() => "DateTime64(3, 'UTC')",
        Kind::Time => "DateTime('UTC')",
    }
}

/// The metrics table's DDL for a server of this version, on the server wmtop talks to.
pub fn metrics_ddl(database: &str, table: &str, v: ServerVersion) -> String {
    metrics_table_ddl(database, table, v, &Placement::Here)
}

/// The metrics table's DDL, placed. `record_version` (the Kafka time of the message a row
/// came from) decides which copy a merge keeps: the newest fetch wins, whatever order
/// messages are read in. `record_hash` lets a re-load skip hours already stored with the
/// same content. Partitioned by day, so removing a revised hour's old row rewrites that
/// day's part of the table, not a month of it.
pub fn metrics_table_ddl(
    database: &str,
    table: &str,
    v: ServerVersion,
    placement: &Placement,
) -> String {
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {database}.{table}{}\n(\n",
        placement.on_cluster()
    );
    for c in COLUMNS {
        let _ = writeln!(sql, "    {} {},", c.name, column_type(c.kind, v));
    }
    let _ = writeln!(sql, "    {RECORD_VERSION} UInt64,");
    let _ = writeln!(sql, "    {RECORD_HASH} UInt64,");
    let _ = writeln!(sql, "    {INGESTION_TIME} DateTime DEFAULT now()");
    let _ = write!(
        sql,
        ")\nENGINE = {}\n\
         PARTITION BY {METRICS_PARTITION_KEY}\n\
         ORDER BY (application_id, transaction_name, timestamp)",
        placement.replacing(RECORD_VERSION)
    );
    sql
}

/// The partition key of the metrics table wmtop creates.
pub const METRICS_PARTITION_KEY: &str = "toYYYYMMDD(timestamp)";

/// The dead-letter table's DDL, on the server wmtop talks to.
pub fn dead_letter_ddl(database: &str, table: &str) -> String {
    dead_letter_table_ddl(database, &format!("{table}_dead_letters"), &Placement::Here)
}

/// The DDL of a dead-letter table named `name`: messages and records set aside, with
/// their reason; placed.
pub fn dead_letter_table_ddl(database: &str, name: &str, placement: &Placement) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.{name}{}\n(\n\
         scope Enum8('message' = 1, 'record' = 2),\n\
         topic String,\n\
         kafka_partition Int32,\n\
         kafka_offset Int64,\n\
         message_key String,\n\
         record_index Int32,\n\
         reason String,\n\
         payload String,\n\
         recorded_at DateTime DEFAULT now()\n\
         )\nENGINE = {}\n\
         ORDER BY (topic, kafka_partition, kafka_offset, record_index)",
        placement.on_cluster(),
        placement.replacing("recorded_at")
    )
}

/// A Distributed table `name` over `local` on every replica of `cluster`, sharded by
/// `key`.
pub fn distributed_ddl(
    database: &str,
    name: &str,
    cluster: &str,
    local: &str,
    key: &str,
) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} AS {database}.{local}\n\
         ENGINE = Distributed({cluster}, {database}, {local}, {key})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_server_version() {
        let old = ServerVersion::parse("18.16.1").unwrap();
        let new = ServerVersion::parse("25.8.2.29").unwrap();
        let ddl_old = metrics_ddl("db", "t", old);
        let ddl_new = metrics_ddl("db", "t", new);
        assert!(ddl_old.contains("timestamp DateTime('UTC')"));
        assert!(ddl_old.contains("eb_breached Nullable(UInt8)"));
        assert!(!ddl_old.contains("LowCardinality"));
        assert!(ddl_new.contains("timestamp DateTime64(3, 'UTC')"));
        assert!(ddl_new.contains("eb_breached Nullable(Bool)"));
        assert!(ddl_new.contains("transaction_name LowCardinality(String)"));
        let column_lines = ddl_new.lines().filter(|l| l.starts_with("    ")).count();
        assert_eq!(column_lines, COLUMNS.len() + 3);
        assert!(ddl_new.contains("ReplacingMergeTree(record_version)"));
        assert!(ddl_new.contains("PARTITION BY toYYYYMMDD(timestamp)"));
        assert!(old.skips_leading_whitespace() && !new.skips_leading_whitespace());
        assert_eq!(old.sync_distributed_insert(), "insert_distributed_sync");
        assert_eq!(
            new.sync_distributed_insert(),
            "distributed_foreground_insert"
        );
    }

    #[test]
    fn on_a_cluster_tables_are_replicated_behind_a_distributed_one() {
        let v = ServerVersion::parse("18.16.1").unwrap();
        let place = Placement::Cluster {
            cluster: "c1".into(),
            zk_path: zk_path(
                "/clickhouse/tables/{shard}/{database}/{table}",
                "db",
                "t_local",
            ),
        };
        let local = metrics_table_ddl("db", "t_local", v, &place);
        assert!(
            local.starts_with("CREATE TABLE IF NOT EXISTS db.t_local ON CLUSTER c1\n"),
            "{local}"
        );
        assert!(local.contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}', record_version)"
        ), "{local}");
        let dead = dead_letter_table_ddl("db", "t_dead_letters_local", &place);
        assert!(
            dead.contains("ON CLUSTER c1") && dead.contains("ReplicatedReplacingMergeTree("),
            "{dead}"
        );
        assert_eq!(
            distributed_ddl(
                "db",
                "t",
                "c1",
                "t_local",
                "cityHash64(application_id, transaction_name)"
            ),
            "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c1 AS db.t_local\n\
             ENGINE = Distributed(c1, db, t_local, cityHash64(application_id, transaction_name))"
        );
        assert!(!metrics_ddl("db", "t", v).contains("ON CLUSTER"));
    }
}
