//! ClickHouse: finding the server's version and choosing column types from it, creating
//! the database, the metrics table and the dead-letter table, inserting rows, and running
//! queries as text.
//!
//! Why re-loading cannot double rows: the metrics table is a `ReplacingMergeTree` whose
//! sorting key is the record's natural identity, `(application_id, transaction_name,
//! timestamp)`, with `ingestion_time` as the version. A record loaded twice (after a crash
//! between insert and offset commit, a replay of the topic, or a reload that publishes the
//! same hours again) is the same key, and ClickHouse keeps only the newest copy. Queries
//! that must be exact read with `FINAL`, and after the consumer goes idle it merges the
//! partitions it touched (`OPTIMIZE … PARTITION … FINAL`) so that plain queries see one
//! row per record too. Offsets are still committed only after an insert is acknowledged,
//! so nothing is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use clickhouse::Client;
use serde::Serialize;

use crate::config::Settings;
use crate::fields::{Kind, COLUMNS, INGESTION_TIME};
use crate::flatten::TimeMode;

/// Why a ClickHouse operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("ClickHouse at {url}: {action}: {source}")]
    Ch {
        url: String,
        action: String,
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse at {url} answered an unexpected {what}: {text:?}")]
    Unexpected {
        url: String,
        what: &'static str,
        text: String,
    },
}

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

    /// How the table stores a record's time.
    pub fn time_mode(self) -> TimeMode {
        if self.has_datetime64() {
            TimeMode::Millis
        } else {
            TimeMode::Seconds
        }
    }
}

/// The ClickHouse type of a column on a server of this version.
fn column_type(kind: Kind, v: ServerVersion) -> &'static str {
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

/// The metrics table's DDL for a server of this version.
pub fn metrics_ddl(database: &str, table: &str, v: ServerVersion) -> String {
    let mut sql = format!("CREATE TABLE IF NOT EXISTS {database}.{table}\n(\n");
    for c in COLUMNS {
        let _ = writeln!(sql, "    {} {},", c.name, column_type(c.kind, v));
    }
    let _ = writeln!(sql, "    {INGESTION_TIME} DateTime DEFAULT now()");
    sql.push_str(
        ")\nENGINE = ReplacingMergeTree(ingestion_time)\n\
         PARTITION BY toYYYYMM(timestamp)\n\
         ORDER BY (application_id, transaction_name, timestamp)",
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

/// Raw bytes sent as a ClickHouse `String`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// Whether a whole message or one record was set aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Scope {
    Message = 1,
    Record = 2,
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

/// A message or record kept aside. The first field is an Enum8 (byte 1 or 2), so the
/// RowBinary body never starts with a whitespace byte (see [`MetricRow`]).
#[derive(Clone, Debug, PartialEq, Serialize, clickhouse::Row)]
pub struct DeadLetter {
    pub scope: Scope,
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub message_key: String,
    /// -1 for a whole message.
    pub record_index: i32,
    pub reason: String,
    pub payload: Blob,
}

/// A connection to ClickHouse with the pipeline's database and tables in place.
#[derive(Clone)]
pub struct Sink {
    client: Client,
    url: String,
    pub database: String,
    pub table: String,
    pub version: ServerVersion,
    pub version_text: String,
}

fn client(settings: &Settings) -> Client {
    Client::default()
        .with_url(&settings.clickhouse_url)
        .with_user(&settings.clickhouse_user)
        .with_password(settings.clickhouse_password.expose())
        // Validation asks for RowBinaryWithNamesAndTypes, which old servers lack.
        .with_validation(false)
}

impl Sink {
    /// Connects, reads the version, creates what is missing.
    pub async fn connect(settings: &Settings) -> Result<Sink, SinkError> {
        let admin = client(settings);
        let url = settings.clickhouse_url.clone();
        let version_text = text_query(&admin, &url, "SELECT version()", "TabSeparated").await?;
        let version = ServerVersion::parse(&version_text).ok_or_else(|| SinkError::Unexpected {
            url: url.clone(),
            what: "version",
            text: version_text.clone(),
        })?;
        admin
            .query(&format!(
                "CREATE DATABASE IF NOT EXISTS {}",
                settings.database
            ))
            .execute()
            .await
            .map_err(|source| SinkError::Ch {
                url: url.clone(),
                action: "create database".into(),
                source,
            })?;
        let sink = Sink {
            // Inserts name the table alone; the client supplies the database.
            client: client(settings).with_database(&settings.database),
            url,
            database: settings.database.clone(),
            table: settings.table.clone(),
            version,
            version_text: version_text.trim().to_string(),
        };
        sink.execute(&metrics_ddl(&sink.database, &sink.table, version))
            .await?;
        sink.execute(&dead_letter_ddl(&sink.database, &sink.table))
            .await?;
        Ok(sink)
    }

    fn err(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(clickhouse::error::Error) -> SinkError + '_ {
        let action = action.into();
        move |source| SinkError::Ch {
            url: self.url.clone(),
            action,
            source,
        }
    }

    /// Runs a statement that returns nothing.
    pub async fn execute(&self, sql: &str) -> Result<(), SinkError> {
        self.client
            .query(&escape_binds(sql))
            .execute()
            .await
            .map_err(self.err(first_line(sql)))
    }

    /// How records' times are stored on this server.
    pub fn time_mode(&self) -> TimeMode {
        self.version.time_mode()
    }

    /// `database.table`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    /// Inserts rows already RowBinary-encoded ([`crate::fields::MetricRow::encode`]) in one INSERT; all
    /// or nothing.
    pub async fn insert_encoded(&self, rows: bytes::Bytes) -> Result<(), SinkError> {
        let sql = format!(
            "INSERT INTO {} {} FORMAT RowBinary",
            self.table,
            crate::fields::insert_columns()
        );
        let action = || format!("insert into {}", self.table);
        let mut insert = self.client.insert_formatted_with(sql);
        insert.send(rows).await.map_err(self.err(action()))?;
        insert.end().await.map_err(self.err(action()))
    }

    /// Inserts dead letters.
    pub async fn insert_dead_letters(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        self.insert_all(&format!("{}_dead_letters", self.table), letters)
            .await
    }

    /// One INSERT of every row into `table` (of this sink's database).
    async fn insert_all<T>(&self, table: &str, rows: &[T]) -> Result<(), SinkError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        let action = || format!("insert into {table}");
        let mut insert = self
            .client
            .insert::<T>(table)
            .await
            .map_err(self.err(action()))?;
        for row in rows {
            insert.write(row).await.map_err(self.err(action()))?;
        }
        insert.end().await.map_err(self.err(action()))
    }

    /// Runs a query and returns its output in a ClickHouse format (TabSeparated, CSV,
    /// JSONEachRow, PrettyCompact …). `readonly` runs it with `readonly=2`: reads and
    /// settings only, no writes and no DDL.
    pub async fn query_text(
        &self,
        sql: &str,
        format: &str,
        readonly: bool,
    ) -> Result<String, SinkError> {
        let mut q = self
            .client
            .query(&escape_binds(sql.trim().trim_end_matches(';')));
        if readonly {
            q = q.with_setting("readonly", "2");
        }
        let mut cursor = q.fetch_bytes(format).map_err(self.err(first_line(sql)))?;
        let bytes = cursor.collect().await.map_err(self.err(first_line(sql)))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Runs a query and returns its result as a table of text cells. `query_id` lets
    /// [`Sink::kill_query`] stop it.
    pub async fn query_table(
        &self,
        sql: &str,
        readonly: bool,
        query_id: &str,
    ) -> Result<QueryResult, SinkError> {
        let mut q = self
            .client
            .query(&escape_binds(sql.trim().trim_end_matches(';')));
        if readonly {
            q = q.with_setting("readonly", "2");
        }
        q = q.with_setting("query_id", query_id);
        let mut cursor = q
            .fetch_bytes("JSONCompact")
            .map_err(self.err(first_line(sql)))?;
        let bytes = cursor.collect().await.map_err(self.err(first_line(sql)))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // A statement with no result set.
            return Ok(QueryResult::default());
        }
        QueryResult::from_json_compact(&bytes).map_err(|e| SinkError::Unexpected {
            url: self.url.clone(),
            what: "result",
            text: e,
        })
    }

    /// Asks the server to stop a running query.
    pub async fn kill_query(&self, query_id: &str) -> Result<(), SinkError> {
        self.execute(&format!(
            "KILL QUERY WHERE query_id = {} ASYNC",
            crate::queries::quote(query_id)
        ))
        .await
    }

    /// Rows per transaction, exact (read with FINAL).
    pub async fn rows_per_transaction(&self) -> Result<BTreeMap<String, u64>, SinkError> {
        let sql = format!(
            "SELECT transaction_name AS name, count() AS rows FROM {} FINAL GROUP BY transaction_name",
            self.qualified()
        );
        let text = self.query_text(&sql, "JSONEachRow", true).await?;
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            #[derive(serde::Deserialize)]
            struct R {
                name: String,
                rows: serde_json::Value,
            }
            let r: R = serde_json::from_str(line).map_err(|e| SinkError::Unexpected {
                url: self.url.clone(),
                what: "row count",
                text: format!("{line}: {e}"),
            })?;
            let n = match &r.rows {
                serde_json::Value::String(s) => s.parse().ok(),
                v => v.as_u64(),
            };
            out.insert(r.name, n.unwrap_or(0));
        }
        Ok(out)
    }

    /// Total rows as stored (without FINAL): equals the exact count once merged.
    pub async fn stored_rows(&self) -> Result<u64, SinkError> {
        let text = self
            .query_text(
                &format!("SELECT count() FROM {}", self.qualified()),
                "TabSeparated",
                true,
            )
            .await?;
        text.trim().parse().map_err(|_| SinkError::Unexpected {
            url: self.url.clone(),
            what: "count",
            text,
        })
    }

    /// Merges the given partitions (`toYYYYMM` values) so that replaced rows disappear.
    pub async fn optimize(&self, partitions: &BTreeSet<u32>) -> Result<(), SinkError> {
        for p in partitions {
            self.execute(&format!(
                "OPTIMIZE TABLE {} PARTITION {p} FINAL",
                self.qualified()
            ))
            .await?;
        }
        Ok(())
    }

    /// Dead letters as JSON lines, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<String, SinkError> {
        let sql = format!(
            "SELECT recorded_at, scope, topic, kafka_partition, kafka_offset, message_key, record_index, reason, \
             length(payload) AS payload_bytes FROM {}_dead_letters FINAL \
             ORDER BY recorded_at DESC, kafka_partition, kafka_offset, record_index LIMIT {limit}",
            self.qualified()
        );
        self.query_text(&sql, "JSONEachRow", true).await
    }
}

/// A query's result as text cells, for display and export.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl QueryResult {
    /// Parses ClickHouse's JSONCompact output.
    pub fn from_json_compact(bytes: &[u8]) -> Result<QueryResult, String> {
        #[derive(serde::Deserialize)]
        struct Meta {
            name: String,
        }
        #[derive(serde::Deserialize)]
        struct Out {
            meta: Vec<Meta>,
            data: Vec<Vec<serde_json::Value>>,
        }
        let out: Out = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let cell = |v: serde_json::Value| match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => "NULL".to_string(),
            other => other.to_string(),
        };
        Ok(QueryResult {
            columns: out.meta.into_iter().map(|m| m.name).collect(),
            rows: out
                .data
                .into_iter()
                .map(|r| r.into_iter().map(cell).collect())
                .collect(),
        })
    }

    /// The result as CSV (RFC 4180 quoting), header first.
    pub fn to_csv(&self) -> String {
        fn field(s: &str) -> String {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.columns).chain(self.rows.iter()) {
            let cells: Vec<String> = line.iter().map(|c| field(c)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// The result as a JSON array of objects keyed by column.
    pub fn to_json(&self) -> String {
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = self
            .rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(r.iter().map(|c| serde_json::Value::String(c.clone())))
                    .collect()
            })
            .collect();
        serde_json::to_string_pretty(&rows).unwrap_or_default()
    }
}

async fn text_query(
    client: &Client,
    url: &str,
    sql: &str,
    format: &str,
) -> Result<String, SinkError> {
    let err = |source| SinkError::Ch {
        url: url.to_string(),
        action: sql.to_string(),
        source,
    };
    let mut cursor = client.query(sql).fetch_bytes(format).map_err(err)?;
    let bytes = cursor.collect().await.map_err(|source| SinkError::Ch {
        url: url.to_string(),
        action: sql.to_string(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The client binds values to `?`; user SQL must keep its question marks.
fn escape_binds(sql: &str) -> String {
    sql.replace('?', "??")
}

fn first_line(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or_default();
    if line.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|i| line.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &line[..cut])
    } else {
        line.to_string()
    }
}

/// The `toYYYYMM` partition of a time in epoch milliseconds (UTC).
pub fn partition_of(ms: i64) -> Option<u32> {
    let ts = jiff::Timestamp::from_millisecond(ms).ok()?;
    let d = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    u32::try_from(i32::from(d.year()) * 100 + i32::from(d.month())).ok()
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
        assert_eq!(column_lines, COLUMNS.len() + 1);
        assert!(ddl_new.contains("ReplacingMergeTree(ingestion_time)"));
    }

    #[test]
    fn partitions_are_utc_months() {
        assert_eq!(partition_of(1_767_205_800_000), Some(202512));
        assert_eq!(partition_of(1_767_225_600_000), Some(202601));
    }

    #[test]
    fn results_parse_and_export() {
        let r = QueryResult::from_json_compact(
            br#"{"meta":[{"name":"name","type":"String"},{"name":"n","type":"UInt64"}],"data":[["GET /a, \"x\"","3"],["b",null]],"rows":2}"#,
        )
        .unwrap();
        assert_eq!(r.columns, vec!["name", "n"]);
        assert_eq!(r.rows[1], vec!["b", "NULL"]);
        assert_eq!(r.to_csv(), "name,n\n\"GET /a, \"\"x\"\"\",3\nb,NULL\n");
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json[0]["name"], "GET /a, \"x\"");
        assert_eq!(json[1]["n"], "NULL");
    }

    #[test]
    fn question_marks_survive() {
        assert_eq!(escape_binds("SELECT '?' "), "SELECT '??' ");
    }
}
