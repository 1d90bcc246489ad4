//! What the front ends read from ClickHouse, always as a plain query sees it (no
//! `FINAL`): rows stored and distinct records per transaction, stored rows per record
//! for reconciliation, the dead-letter listing, and ad-hoc queries as typed tables that
//! can be cancelled. A table that does not exist yet reads as empty.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::client::{lenient_i64, lenient_u64, Ch, ChError, ChErrorKind};
use crate::clickhouse::queries::quote;

/// One transaction's rows as stored, and its distinct records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// `count()`: every stored row, copies included.
    pub rows: u64,
    /// Distinct records (application, time).
    pub distinct: u64,
}

impl Stored {
    /// Rows beyond one per record.
    pub fn copies(self) -> u64 {
        self.rows.saturating_sub(self.distinct)
    }
}

/// A query's result: column names and types, and the cells as JSON values in column
/// order (numbers that the server quotes are turned back into numbers).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub types: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// How much of a dead letter's payload a listing shows.
pub const PREVIEW: usize = 400;

/// One dead letter as a listing shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct DeadLetterEntry {
    #[serde(rename = "last_recorded")]
    pub recorded_at: String,
    /// `message` or `record`.
    #[serde(rename = "kind")]
    pub scope: String,
    pub topic: String,
    pub kafka_partition: i32,
    #[serde(deserialize_with = "lenient_i64")]
    pub kafka_offset: i64,
    /// The transaction's name (the message key).
    pub message_key: String,
    /// -1 for a whole message.
    pub record_index: i32,
    #[serde(rename = "why")]
    pub reason: String,
    #[serde(deserialize_with = "lenient_u64")]
    pub payload_bytes: u64,
    /// The payload's first [`PREVIEW`] bytes.
    pub payload_preview: String,
}

impl Ch {
    /// True when the metrics table exists.
    pub async fn table_exists(&self) -> Result<bool, ChError> {
        #[derive(Deserialize)]
        struct N {
            #[allow(dead_code)]
            name: String,
        }
        let rows: Vec<N> = self
            .json_rows(&format!(
                "SELECT name FROM system.tables WHERE database = {} AND name = {}",
                quote(&self.database),
                quote(&self.table)
            ))
            .await?;
        Ok(!rows.is_empty())
    }

    /// Rows stored and distinct records per transaction of the settings' application in
    /// their window (empty when the table does not exist yet).
    pub async fn stored_per_transaction(&self) -> Result<BTreeMap<String, Stored>, ChError> {
        #[derive(Deserialize)]
        struct R {
            name: String,
            #[serde(deserialize_with = "lenient_u64")]
            rows: u64,
            #[serde(deserialize_with = "lenient_u64")]
            distinct: u64,
        }
        let sql = super::sql::stored_per_transaction(&self.qualified(), &self.window);
        Ok(self
            .missing_table_is_empty(self.json_rows::<R>(&sql).await)?
            .into_iter()
            .map(|r| {
                (
                    r.name,
                    Stored {
                        rows: r.rows,
                        distinct: r.distinct,
                    },
                )
            })
            .collect())
    }

    /// Stored rows per (transaction, time in whole seconds), of the settings' application
    /// in their window.
    pub async fn stored_per_record(&self) -> Result<BTreeMap<(String, i64), u64>, ChError> {
        #[derive(Deserialize)]
        struct R {
            n: String,
            #[serde(deserialize_with = "lenient_i64")]
            ts: i64,
            #[serde(deserialize_with = "lenient_u64")]
            rows: u64,
        }
        let sql = super::sql::stored_per_record(&self.qualified(), &self.window);
        let mut out = BTreeMap::new();
        for r in self.missing_table_is_empty(self.json_rows::<R>(&sql).await)? {
            *out.entry((r.n, r.ts.saturating_mul(1000))).or_default() += r.rows;
        }
        Ok(out)
    }

    /// Every row stored (a plain count).
    pub async fn stored_rows(&self) -> Result<u64, ChError> {
        let text = self
            .query_text(
                &format!("SELECT count() FROM {}", self.qualified()),
                "TabSeparated",
            )
            .await;
        match self.missing_table_is_empty(text.map(|t| vec![t]))?.first() {
            None => Ok(0),
            Some(t) => t.trim().parse().map_err(|_| ChError {
                url: self.url.clone(),
                action: "count rows".into(),
                detail: format!("{t:?} is not a count"),
                kind: ChErrorKind::Unexpected,
                code: None,
            }),
        }
    }

    fn missing_table_is_empty<T>(&self, r: Result<Vec<T>, ChError>) -> Result<Vec<T>, ChError> {
        match r {
            Err(e) if e.kind == ChErrorKind::Missing => Ok(Vec::new()),
            other => other,
        }
    }

    /// Dead letters as JSON lines, newest first (each kept once).
    pub async fn dead_letters(&self, limit: usize) -> Result<String, ChError> {
        let sql = format!(
            "SELECT max(recorded_at) AS recorded_at, scope, topic, kafka_partition, kafka_offset, message_key, record_index, \
             any(reason) AS reason, any(length(payload)) AS payload_bytes FROM {} \
             GROUP BY scope, topic, kafka_partition, kafka_offset, message_key, record_index \
             ORDER BY recorded_at DESC, kafka_partition, kafka_offset, record_index LIMIT {limit}",
            self.dead_letters_table()
        );
        match self.query_text(&sql, "JSONEachRow").await {
            Err(e) if e.kind == ChErrorKind::Missing => Ok(String::new()),
            other => other,
        }
    }

    /// Dead letters, newest first, each once: where they came from, why, and the
    /// payload's first bytes; only one transaction's (by message key) when named.
    pub async fn dead_letter_entries(
        &self,
        limit: usize,
        transaction: Option<&str>,
    ) -> Result<Vec<DeadLetterEntry>, ChError> {
        let filter = transaction.map_or(String::new(), |t| {
            format!("WHERE message_key = {}", quote(t))
        });
        let sql = format!(
            "SELECT toString(max(recorded_at)) AS last_recorded, toString(scope) AS kind, topic, kafka_partition, \
             kafka_offset, message_key, record_index, any(reason) AS why, \
             any(length(payload)) AS payload_bytes, any(substring(payload, 1, {PREVIEW})) AS payload_preview \
             FROM {} {filter} \
             GROUP BY scope, topic, kafka_partition, kafka_offset, message_key, record_index \
             ORDER BY last_recorded DESC, kafka_partition, kafka_offset, record_index LIMIT {limit}",
            self.dead_letters_table()
        );
        match self.json_rows::<DeadLetterEntry>(&sql).await {
            Err(e) if e.kind == ChErrorKind::Missing => Ok(Vec::new()),
            other => other,
        }
    }

    /// Runs an ad-hoc query, read-only unless `allow_writes`; `query_id` lets
    /// [`Ch::kill_query`] stop it.
    pub async fn query_table(
        &self,
        sql: &str,
        allow_writes: bool,
        query_id: &str,
    ) -> Result<QueryResult, ChError> {
        let mut settings: Vec<(&str, &str)> = vec![("query_id", query_id)];
        if !allow_writes {
            settings.extend_from_slice(self.read_only_settings());
        }
        let text = self.query_text_with(sql, "JSONCompact", &settings).await?;
        if text.trim().is_empty() {
            // A statement with no result set.
            return Ok(QueryResult::default());
        }
        QueryResult::from_json_compact(text.as_bytes()).map_err(|e| ChError {
            url: self.url.clone(),
            action: super::client::action_of(sql),
            detail: format!("unreadable result: {e}"),
            kind: ChErrorKind::Unexpected,
            code: None,
        })
    }

    /// Asks the server to stop a running query.
    pub async fn kill_query(&self, query_id: &str) -> Result<(), ChError> {
        self.execute(&format!(
            "KILL QUERY WHERE query_id = {} ASYNC",
            quote(query_id)
        ))
        .await
    }
}

/// A type whose JSON the server may quote although it is a number.
fn numeric(type_: &str) -> bool {
    let t = type_
        .trim_start_matches("LowCardinality(")
        .trim_start_matches("Nullable(");
    ["Int", "UInt", "Float", "Decimal"]
        .iter()
        .any(|p| t.starts_with(p))
}

impl QueryResult {
    /// Parses ClickHouse's JSONCompact output.
    pub fn from_json_compact(bytes: &[u8]) -> Result<QueryResult, String> {
        #[derive(Deserialize)]
        struct Meta {
            name: String,
            #[serde(rename = "type")]
            type_: String,
        }
        #[derive(Deserialize)]
        struct Out {
            meta: Vec<Meta>,
            data: Vec<Vec<serde_json::Value>>,
        }
        let out: Out = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let numeric_cols: Vec<bool> = out.meta.iter().map(|m| numeric(&m.type_)).collect();
        let rows = out
            .data
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        serde_json::Value::String(s) if numeric_cols.get(i) == Some(&true) => {
                            serde_json::from_str::<serde_json::Number>(&s)
                                .map(serde_json::Value::Number)
                                .unwrap_or(serde_json::Value::String(s))
                        }
                        other => other,
                    })
                    .collect()
            })
            .collect();
        Ok(QueryResult {
            columns: out.meta.iter().map(|m| m.name.clone()).collect(),
            types: out.meta.into_iter().map(|m| m.type_).collect(),
            rows,
        })
    }

    /// A cell as text for the screen: strings bare, NULL as `NULL`.
    pub fn text(&self, row: usize, col: usize) -> String {
        match self.rows.get(row).and_then(|r| r.get(col)) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) => "NULL".into(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    }

    /// The result as CSV (RFC 4180 quoting), header first; NULL is an empty field, or
    /// `\N` with `null_as_backslash_n`.
    pub fn to_csv(&self, null_as_backslash_n: bool) -> String {
        fn field(s: &str) -> String {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        }
        let mut out = String::new();
        out.push_str(
            &self
                .columns
                .iter()
                .map(|c| field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .map(|v| match v {
                    serde_json::Value::Null if null_as_backslash_n => "\\N".to_string(),
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => field(s),
                    other => field(&other.to_string()),
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// The result as JSON lines: one object per row, keys in the query's column order,
    /// values with their types (numbers, booleans, null); a final newline.
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            let mut obj = String::from("{");
            for (i, (c, v)) in self.columns.iter().zip(r).enumerate() {
                if i > 0 {
                    obj.push(',');
                }
                obj.push_str(&serde_json::Value::String(c.clone()).to_string());
                obj.push(':');
                obj.push_str(&v.to_string());
            }
            obj.push('}');
            out.push_str(&obj);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_types_and_order_and_export_honestly() {
        let r = QueryResult::from_json_compact(
            br#"{"meta":[{"name":"name","type":"String"},{"name":"n","type":"UInt64"},{"name":"ok","type":"Nullable(UInt8)"},{"name":"x","type":"Float64"}],"data":[["GET /a, \"x\"","3",1,0.5],["b",null,null,null]],"rows":2}"#,
        )
        .unwrap();
        assert_eq!(r.columns, vec!["name", "n", "ok", "x"]);
        assert_eq!(r.text(1, 1), "NULL");
        assert_eq!(
            r.rows[0][1],
            serde_json::json!(3),
            "a quoted UInt64 is a number again"
        );
        assert_eq!(
            r.to_csv(false),
            "name,n,ok,x\n\"GET /a, \"\"x\"\"\",3,1,0.5\nb,,,\n"
        );
        assert!(r.to_csv(true).ends_with("b,\\N,\\N,\\N\n"));
        assert_eq!(
            r.to_json_lines(),
            "{\"name\":\"GET /a, \\\"x\\\"\",\"n\":3,\"ok\":1,\"x\":0.5}\n{\"name\":\"b\",\"n\":null,\"ok\":null,\"x\":null}\n"
        );
        assert_eq!(
            Stored {
                rows: 5,
                distinct: 3
            }
            .copies(),
            2
        );
    }
}
