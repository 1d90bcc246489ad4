//! Server differences, kept in one place: which column types a ClickHouse version has
//! (`DateTime64` from 20.1, `Bool` from 21.12, `LowCardinality` from 19.9), the DDL wmtop
//! creates for that version, and the old servers' habit (before 22.6) of skipping
//! whitespace bytes at the start of a RowBinary body (ClickHouse issue 37420).

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

/// The metrics table's DDL for a server of this version. `record_version` (the Kafka
/// time of the message a row came from) decides which copy a merge keeps: the newest
/// fetch wins, whatever order messages are read in. `record_hash` lets a re-load skip
/// hours already stored with the same content.
pub fn metrics_ddl(database: &str, table: &str, v: ServerVersion) -> String {
    let mut sql = format!("CREATE TABLE IF NOT EXISTS {database}.{table}\n(\n");
    for c in COLUMNS {
        let _ = writeln!(sql, "    {} {},", c.name, column_type(c.kind, v));
    }
    let _ = writeln!(sql, "    {RECORD_VERSION} UInt64,");
    let _ = writeln!(sql, "    {RECORD_HASH} UInt64,");
    let _ = writeln!(sql, "    {INGESTION_TIME} DateTime DEFAULT now()");
    let _ = write!(
        sql,
        ")\nENGINE = ReplacingMergeTree({RECORD_VERSION})\n\
         PARTITION BY toYYYYMM(timestamp)\n\
         ORDER BY (application_id, transaction_name, timestamp)"
    );
    sql
}

/// The dead-letter table's DDL: messages and records set aside, with their reason.
pub fn dead_letter_ddl(database: &str, table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.{table}_dead_letters\n(\n\
         scope Enum8('message' = 1, 'record' = 2),\n\
         topic String,\n\
         kafka_partition Int32,\n\
         kafka_offset Int64,\n\
         message_key String,\n\
         record_index Int32,\n\
         reason String,\n\
         payload String,\n\
         recorded_at DateTime DEFAULT now()\n\
         )\nENGINE = ReplacingMergeTree(recorded_at)\n\
         ORDER BY (topic, kafka_partition, kafka_offset, record_index)"
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
        assert!(old.skips_leading_whitespace() && !new.skips_leading_whitespace());
    }
}
