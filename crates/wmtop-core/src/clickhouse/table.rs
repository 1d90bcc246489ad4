//! The metrics table as the server has it: its columns, their types and which are in
//! the table's key, read from `system.columns` and `system.tables` (for a Distributed
//! table, the engine and partition key of the table on the replicas that stores the rows:
//! see [`super::cluster`]); and the row plan
//! built from them, which encodes each row for the types the table really has (not the
//! ones wmtop would have chosen). A column wmtop does not know is left to its DEFAULT; a
//! type it cannot write, or a key column it cannot fill, is an error naming the column,
//! before any insert.

use serde::Deserialize;

use super::client::{Ch, ChError, ChErrorKind};
use super::cluster::Distributed;
use super::compat::ServerVersion;
use crate::record::columns::{
    column_index, FieldRef, Fields, Kind, COLUMNS, RECORD_HASH, RECORD_VERSION,
};

/// One column of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableColumn {
    pub name: String,
    pub type_: String,
    /// It has a DEFAULT, MATERIALIZED or ALIAS expression.
    pub has_default: bool,
    /// It is in the sorting or partition key.
    pub in_key: bool,
}

/// The table: columns in order, and the engine and partition key of the table that
/// stores its rows (the table itself, or the local table behind a Distributed one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub columns: Vec<TableColumn>,
    pub engine: String,
    /// The partition key expression, as `system.tables` gives it.
    pub partition_key: String,
    /// Set when the table is a Distributed one.
    pub distributed: Option<Distributed>,
}

impl TableInfo {
    /// The table wmtop creates on a server of this version, as the server would describe
    /// it (for encoding without asking a server: benchmarks, tests).
    pub fn own(version: ServerVersion) -> TableInfo {
        use crate::record::columns::INGESTION_TIME;
        let key = ["application_id", "transaction_name", "timestamp"];
        let mut columns: Vec<TableColumn> = COLUMNS
            .iter()
            .map(|c| TableColumn {
                name: c.name.into(),
                type_: super::compat::column_type(c.kind, version).into(),
                has_default: false,
                in_key: key.contains(&c.name),
            })
            .collect();
        for (name, type_, has_default) in [
            (RECORD_VERSION, "UInt64", false),
            (RECORD_HASH, "UInt64", false),
            (INGESTION_TIME, "DateTime", true),
        ] {
            columns.push(TableColumn {
                name: name.into(),
                type_: type_.into(),
                has_default,
                in_key: false,
            });
        }
        TableInfo {
            columns,
            engine: "ReplacingMergeTree".into(),
            partition_key: super::compat::METRICS_PARTITION_KEY.into(),
            distributed: None,
        }
    }

    /// Copies with the same key disappear on merge (a Replacing engine).
    pub fn replacing(&self) -> bool {
        self.engine.contains("ReplacingMergeTree")
    }

    /// Copies are kept apart by replicas too: merges and part names are per replica.
    pub fn replicated(&self) -> bool {
        self.engine.starts_with("Replicated")
    }

    /// The table that stores the rows: the table, or the local one behind it.
    pub fn storage(&self, qualified: &str) -> String {
        self.distributed
            .as_ref()
            .map_or_else(|| qualified.to_string(), |d| d.local.clone())
    }

    /// Reads the table's columns and engine (for a Distributed table, its cluster and
    /// the engine of the table behind it on this server); None when the table does not
    /// exist.
    pub async fn read(ch: &Ch) -> Result<Option<TableInfo>, ChError> {
        #[derive(Deserialize)]
        struct Col {
            name: String,
            #[serde(rename = "type")]
            type_: String,
            default_kind: String,
            is_in_partition_key: u8,
            is_in_sorting_key: u8,
        }
        let Some(mut t) = read_table(ch, &ch.database, &ch.table).await? else {
            return Ok(None);
        };
        let distributed = match t.engine.as_str() {
            "Distributed" => super::cluster::distributed(ch, &t.engine_full).await?,
            _ => None,
        };
        if let Some(d) = &distributed {
            let (db, table) = d.local.split_once('.').unwrap_or_default();
            t = read_table(ch, db, table).await?.ok_or_else(|| ChError {
                url: ch.url.clone(),
                action: format!("read the table behind {}", ch.qualified()),
                detail: format!(
                    "{} is a Distributed table over {}, which is not on this server: point clickhouse_url at a replica of cluster {}",
                    ch.qualified(),
                    d.local,
                    d.cluster
                ),
                kind: ChErrorKind::Missing,
                code: None,
            })?;
        }
        // The columns as the table that stores them has them (a Distributed table has
        // the same columns, but no key).
        let storage = t.storage;
        let (db, table) = storage.split_once('.').unwrap_or_default();
        let cols: Vec<Col> = ch.json_rows(&super::sql::table_columns(db, table)).await?;
        Ok(Some(TableInfo {
            columns: cols
                .into_iter()
                .map(|c| TableColumn {
                    in_key: c.is_in_partition_key > 0 || c.is_in_sorting_key > 0,
                    has_default: !c.default_kind.is_empty(),
                    name: c.name,
                    type_: c.type_,
                })
                .collect(),
            engine: t.engine,
            partition_key: t.partition_key,
            distributed,
        }))
    }

    fn column(&self, name: &str) -> Option<&TableColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Deserialize)]
struct Tbl {
    engine: String,
    engine_full: String,
    partition_key: String,
    /// `database.table`, filled in after reading.
    #[serde(skip)]
    storage: String,
}

/// A table's engine, its arguments and its partition key; None when it does not exist.
async fn read_table(ch: &Ch, database: &str, table: &str) -> Result<Option<Tbl>, ChError> {
    let tables: Vec<Tbl> = ch
        .json_rows(&super::sql::table_info(database, table))
        .await?;
    Ok(tables.into_iter().next().map(|t| Tbl {
        storage: format!("{database}.{table}"),
        ..t
    }))
}

/// How one value is written in RowBinary for the table's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    String {
        nullable: bool,
    },
    Int64 {
        nullable: bool,
    },
    Float64 {
        nullable: bool,
    },
    Float32 {
        nullable: bool,
    },
    /// `Bool` or `UInt8`: one byte.
    Flag {
        nullable: bool,
    },
    /// `DateTime`: seconds as u32.
    DateTime,
    /// `DateTime64(p)`: ticks of 10^-p s as i64.
    DateTime64 {
        precision: u32,
    },
}

impl Writer {
    fn nullable(self) -> bool {
        match self {
            Writer::String { nullable }
            | Writer::Int64 { nullable }
            | Writer::Float64 { nullable }
            | Writer::Float32 { nullable }
            | Writer::Flag { nullable } => nullable,
            Writer::DateTime | Writer::DateTime64 { .. } => false,
        }
    }

    /// The writer for a table type, for a column of this kind; None if wmtop cannot
    /// write that type from that kind.
    fn for_type(kind: Kind, type_: &str) -> Option<Writer> {
        let mut t = type_.trim();
        if let Some(inner) = strip_wrapper(t, "LowCardinality") {
            t = inner;
        }
        let (nullable, t) = match strip_wrapper(t, "Nullable") {
            Some(inner) => (true, inner),
            None => (false, t),
        };
        let base = t.split('(').next().unwrap_or(t).trim();
        let w = match (kind, base) {
            (Kind::Id | Kind::Text, "String") => Writer::String { nullable },
            (Kind::Int, "Int64") => Writer::Int64 { nullable },
            (Kind::Int | Kind::Float, "Float64") => Writer::Float64 { nullable },
            (Kind::Float, "Float32") => Writer::Float32 { nullable },
            (Kind::Flag, "Bool" | "UInt8") => Writer::Flag { nullable },
            (Kind::Time, "DateTime") if !nullable => Writer::DateTime,
            (Kind::Time, "DateTime64") if !nullable => {
                let args = t.split_once('(')?.1;
                let precision: u32 = args
                    .split([',', ')'])
                    .next()?
                    .trim()
                    .parse()
                    .ok()
                    .filter(|p| *p <= 9)?;
                Writer::DateTime64 { precision }
            }
            _ => return None,
        };
        Some(w)
    }

    /// Whether a value is of the kind this writer writes (a null of it included).
    fn takes(self, value: FieldRef<'_>) -> bool {
        matches!(
            (self, value),
            (Writer::String { .. }, FieldRef::Id(_) | FieldRef::Text(_))
                | (Writer::Int64 { .. }, FieldRef::Int(_))
                | (
                    Writer::Float64 { .. },
                    FieldRef::Float(_) | FieldRef::Int(_)
                )
                | (Writer::Float32 { .. }, FieldRef::Float(_))
                | (Writer::Flag { .. }, FieldRef::Flag(_))
                | (
                    Writer::DateTime | Writer::DateTime64 { .. },
                    FieldRef::Time(_)
                )
        )
    }

    /// The most bytes a value takes in RowBinary besides a string's own: a null marker
    /// and eight bytes, or a null marker and a length of up to ten bytes.
    fn room(self) -> usize {
        match self {
            Writer::String { .. } => 11,
            _ => 9,
        }
    }

    /// Appends the value in RowBinary.
    #[cfg(test)]
    fn write(self, value: FieldRef<'_>, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.room() + text_of(value).map_or(0, str::len), 0);
        let end = self.put(value, &mut out[start..], 0);
        out.truncate(start + end);
    }

    /// Writes the value in RowBinary into `dst` at `at`, where there is [`Writer::room`]
    /// for it (and a string's bytes), and says where it ended. Writing into a slice sized
    /// once per row, rather than pushing each byte onto a vector, keeps the encoder to a
    /// few instructions a value.
    fn put(self, value: FieldRef<'_>, dst: &mut [u8], at: usize) -> usize {
        // Plans are built per kind, so a value always has its writer's kind.
        debug_assert!(self.takes(value), "writer {self:?} given {value:?}");
        match self {
            Writer::String { nullable } => {
                let s = text_of(value);
                let mut at = at;
                if nullable {
                    dst[at] = u8::from(s.is_none());
                    at += 1;
                    if s.is_none() {
                        return at;
                    }
                }
                let s = s.unwrap_or_default();
                at += leb128_into(s.len(), &mut dst[at..]);
                dst[at..at + s.len()].copy_from_slice(s.as_bytes());
                at + s.len()
            }
            Writer::Int64 { nullable } => {
                let v = match value {
                    FieldRef::Int(v) => v,
                    _ => None,
                };
                fixed(dst, at, nullable, v.map(i64::to_le_bytes))
            }
            Writer::Float64 { nullable } => {
                let v = match value {
                    FieldRef::Float(v) => v,
                    FieldRef::Int(v) => v.map(|n| n as f64),
                    _ => None,
                };
                fixed(dst, at, nullable, v.map(f64::to_le_bytes))
            }
            Writer::Float32 { nullable } => {
                let v = match value {
                    FieldRef::Float(v) => v,
                    _ => None,
                };
                fixed(dst, at, nullable, v.map(|v| (v as f32).to_le_bytes()))
            }
            Writer::Flag { nullable } => {
                let v = match value {
                    FieldRef::Flag(v) => v,
                    _ => None,
                };
                fixed(dst, at, nullable, v.map(|b| [u8::from(b)]))
            }
            Writer::DateTime => {
                let ms = match value {
                    FieldRef::Time(ms) => ms,
                    _ => 0,
                };
                // Record times are bounded to 2000..2100, within u32 seconds.
                let secs = u32::try_from(ms.div_euclid(1000)).unwrap_or(0);
                fixed(dst, at, false, Some(secs.to_le_bytes()))
            }
            Writer::DateTime64 { precision } => {
                let ms = match value {
                    FieldRef::Time(ms) => ms,
                    _ => 0,
                };
                let ticks = if precision >= 3 {
                    ms.saturating_mul(10i64.pow(precision - 3))
                } else {
                    ms.div_euclid(10i64.pow(3 - precision))
                };
                fixed(dst, at, false, Some(ticks.to_le_bytes()))
            }
        }
    }
}

/// A value of fixed width into `dst` at `at`: behind a null marker when the column is
/// Nullable, else zeros for a missing value.
#[inline(always)]
fn fixed<const N: usize>(dst: &mut [u8], at: usize, nullable: bool, v: Option<[u8; N]>) -> usize {
    let slot = &mut dst[at..at + usize::from(nullable) + N];
    match (nullable, v) {
        (true, None) => {
            slot[0] = 1;
            at + 1
        }
        (true, Some(bytes)) => {
            slot[0] = 0;
            slot[1..].copy_from_slice(&bytes);
            at + 1 + N
        }
        (false, v) => {
            slot[..N].copy_from_slice(&v.unwrap_or([0; N]));
            at + N
        }
    }
}

/// The text a value holds for a String column (None for a null).
#[inline(always)]
fn text_of(value: FieldRef<'_>) -> Option<&str> {
    match value {
        FieldRef::Id(s) | FieldRef::Text(Some(s)) => Some(s),
        _ => None,
    }
}

fn strip_wrapper<'a>(t: &'a str, name: &str) -> Option<&'a str> {
    t.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
        .map(str::trim)
}

/// RowBinary's length prefix: unsigned LEB128.
pub fn leb128(n: usize, out: &mut Vec<u8>) {
    let mut bytes = [0u8; 10];
    let len = leb128_into(n, &mut bytes);
    out.extend_from_slice(&bytes[..len]);
}

/// Writes `n` as LEB128 at the start of `dst` (room for ten bytes) and says how many
/// bytes it took.
fn leb128_into(mut n: usize, dst: &mut [u8]) -> usize {
    let mut at = 0;
    while n >= 0x80 {
        dst[at] = (n as u8) | 0x80;
        n >>= 7;
        at += 1;
    }
    dst[at] = n as u8;
    at + 1
}

/// Why rows cannot be written to the table as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "table {table}: column {column} has type {type_}, which wmtop cannot write {what} into"
    )]
    Type {
        table: String,
        column: String,
        type_: String,
        what: &'static str,
    },
    #[error("table {table} has no column {column}, which identifies a record; wmtop cannot load into it")]
    MissingIdentity { table: String, column: String },
    #[error("table {table}: column {column} is in the table's key, has no DEFAULT, and wmtop does not write it")]
    UnfilledKey { table: String, column: String },
}

/// How each row is written: which columns, in which order, with which writer, and
/// whether the table keeps `record_version` and `record_hash`.
#[derive(Clone, Debug)]
pub struct RowPlan {
    /// (index into [`COLUMNS`], writer), in insert order.
    pub columns: Vec<(usize, Writer)>,
    /// The table has `record_version UInt64` and `record_hash UInt64`.
    pub versioned: bool,
    /// Columns wmtop knows that the table lacks (their values are not stored).
    pub absent: Vec<&'static str>,
    /// `INSERT INTO db.table (…) FORMAT RowBinary`.
    pub insert_sql: String,
    /// Copies of a record disappear on merge.
    pub replacing: bool,
    /// The most bytes a row takes besides its strings' own, and the columns written as
    /// strings: a row's room is counted from these, not value by value.
    room: usize,
    string_columns: Vec<usize>,
}

impl RowPlan {
    pub fn for_table(
        qualified: &str,
        info: &TableInfo,
        version: ServerVersion,
    ) -> Result<RowPlan, SchemaError> {
        let table = qualified.to_string();
        for must in ["transaction_name", "timestamp", "application_id"] {
            if info.column(must).is_none() {
                return Err(SchemaError::MissingIdentity {
                    table,
                    column: must.into(),
                });
            }
        }
        let mut columns = Vec::new();
        let mut absent = Vec::new();
        for c in COLUMNS {
            let Some(tc) = info.column(c.name) else {
                absent.push(c.name);
                continue;
            };
            let w = Writer::for_type(c.kind, &tc.type_).ok_or_else(|| SchemaError::Type {
                table: table.clone(),
                column: c.name.into(),
                type_: tc.type_.clone(),
                what: kind_words(c.kind),
            })?;
            columns.push((column_index(c.name).unwrap_or_default(), w));
        }
        let versioned = [RECORD_VERSION, RECORD_HASH]
            .iter()
            .all(|n| info.column(n).is_some_and(|c| c.type_.trim() == "UInt64"));
        for tc in &info.columns {
            let ours = column_index(&tc.name).is_some()
                || (versioned && (tc.name == RECORD_VERSION || tc.name == RECORD_HASH));
            if !ours && tc.in_key && !tc.has_default {
                return Err(SchemaError::UnfilledKey {
                    table,
                    column: tc.name.clone(),
                });
            }
        }
        if version.skips_leading_whitespace() {
            // Start the body with a byte that is 0 or 1: a Nullable marker or a flag.
            if let Some(i) = columns
                .iter()
                .position(|(_, w)| w.nullable() || matches!(w, Writer::Flag { .. }))
            {
                let first = columns.remove(i);
                columns.insert(0, first);
            }
        }
        let mut names: Vec<&str> = columns.iter().map(|(i, _)| COLUMNS[*i].name).collect();
        if versioned {
            names.extend([RECORD_VERSION, RECORD_HASH]);
        }
        let string_columns: Vec<usize> = columns
            .iter()
            .filter(|(_, w)| matches!(w, Writer::String { .. }))
            .map(|(i, _)| *i)
            .collect();
        let room = columns.iter().map(|(_, w)| w.room()).sum();
        Ok(RowPlan {
            room,
            string_columns,
            insert_sql: format!(
                "INSERT INTO {qualified} ({}) FORMAT RowBinary",
                names.join(", ")
            ),
            columns,
            versioned,
            absent,
            replacing: info.replacing(),
        })
    }

    /// Appends the row's columns (not version and hash) in the plan's order.
    pub fn encode(&self, fields: &Fields<'_>, out: &mut Vec<u8>) {
        let start = out.len();
        let strings: usize = self
            .string_columns
            .iter()
            .map(|&i| text_of(fields[i]).map_or(0, str::len))
            .sum();
        let most = self.room + strings;
        out.resize(start + most, 0);
        let dst = &mut out[start..];
        let mut at = 0;
        for &(i, w) in &self.columns {
            at = w.put(fields[i], dst, at);
        }
        out.truncate(start + at);
    }
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Id => "an identifier (String)",
        Kind::Int => "a count (Int64)",
        Kind::Float => "a number (Float64)",
        Kind::Text => "a text (String)",
        Kind::Flag => "a flag (Bool or UInt8)",
        Kind::Time => "a time (DateTime or DateTime64)",
    }
}

/// An error for a plan that cannot be made, as a [`ChError`] (permanent).
pub fn schema_error(ch: &Ch, e: SchemaError) -> ChError {
    ChError {
        url: ch.url.clone(),
        action: format!("check the columns of {}", ch.qualified()),
        detail: e.to_string(),
        kind: ChErrorKind::Refused,
        code: None,
    }
}

#[cfg(test)]
mod tests;
