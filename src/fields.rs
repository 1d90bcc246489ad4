//! The columns of `transaction_metrics`: one table, written once, that drives the row
//! type sent to ClickHouse, the table's DDL, and the JSON name each column is read from.

use serde::Serialize;

/// How a column is typed, in JSON and in ClickHouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Identifier: `String`, never null (empty when unknown); may sit on the transaction.
    Id,
    /// Integer count: `Nullable(Int64)`.
    Int,
    /// Rate, percent, time or percentile: `Nullable(Float64)`.
    Float,
    /// Short string (health, severity, metadata): `Nullable(String)`.
    Text,
    /// Boolean flag: `Nullable(Bool)` (`Nullable(UInt8)` before ClickHouse 21.12).
    Flag,
    /// The record's hour: `DateTime64(3, 'UTC')` (`DateTime('UTC')` before 20.1).
    Time,
}

/// One column: its ClickHouse name, the camelCase JSON name it comes from, and its kind.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub json: &'static str,
    pub kind: Kind,
}

/// A record's time as it is sent: epoch milliseconds for `DateTime64(3)`, or epoch
/// seconds for old servers' `DateTime`. Both serialize as the bare RowBinary integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamp {
    Millis(i64),
    Seconds(u32),
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::Millis(0)
    }
}

impl Timestamp {
    /// Epoch milliseconds, whichever form it holds.
    pub fn millis(self) -> i64 {
        match self {
            Timestamp::Millis(ms) => ms,
            Timestamp::Seconds(s) => i64::from(s) * 1000,
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Timestamp::Millis(ms) => s.serialize_i64(ms),
            Timestamp::Seconds(sec) => s.serialize_u32(sec),
        }
    }
}

/// A column value's RowBinary encoding.
pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

/// RowBinary's length prefix: unsigned LEB128.
fn encode_len(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

impl Encode for String {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        out.extend_from_slice(self.as_bytes());
    }
}

impl Encode for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Encode for f64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// `Bool`, and `UInt8` on servers before 21.12: one byte, 0 or 1.
impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

/// `Nullable(T)`: a 0 byte and the value, or a 1 byte for NULL.
impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => {
                out.push(0);
                v.encode(out);
            }
            None => out.push(1),
        }
    }
}

impl Encode for Timestamp {
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Timestamp::Millis(ms) => out.extend_from_slice(&ms.to_le_bytes()),
            Timestamp::Seconds(s) => out.extend_from_slice(&s.to_le_bytes()),
        }
    }
}

macro_rules! rust_type {
    (Id) => { String };
    (Int) => { Option<i64> };
    (Float) => { Option<f64> };
    (Text) => { Option<String> };
    (Flag) => { Option<bool> };
    (Time) => { Timestamp };
}

macro_rules! columns {
    ($( $name:ident : $kind:ident = $json:literal ),* $(,)?) => {
        /// One flattened hourly record: a row of `transaction_metrics`, in the column
        /// order of the insert. `ingestion_time` is left to the table's DEFAULT.
        ///
        /// The first field is a Nullable one on purpose: its first RowBinary byte is 0 or
        /// 1, never a whitespace byte, which old servers (before 22.6) would skip as the
        /// gap between `FORMAT RowBinary` and the data (ClickHouse issue 37420).
        #[derive(Clone, Debug, Default, PartialEq, Serialize)]
        pub struct MetricRow {
            $( pub $name: rust_type!($kind), )*
        }

        /// Every column the pipeline writes, in insert order.
        pub const COLUMNS: &[Column] = &[
            $( Column { name: stringify!($name), json: $json, kind: Kind::$kind }, )*
        ];

        /// Which column a JSON key names, as an index into [`COLUMNS`].
        pub fn column_for_json(key: &str) -> Option<usize> {
            let mut i = 0usize;
            $(
                if key == $json {
                    return Some(i);
                }
                i += 1;
            )*
            let _ = i;
            None
        }

        impl MetricRow {
            /// Appends this row to `out` in ClickHouse's RowBinary format, in column order
            /// (the insert's format: no names, no types, Nullable as a 0/1 byte first).
            pub fn encode(&self, out: &mut Vec<u8>) {
                $( Encode::encode(&self.$name, out); )*
            }
        }

        /// Sets column `idx` of a row from a JSON value; used by the flattener.
        pub(crate) type Setter = for<'a> fn(&mut MetricRow, crate::flatten::Value<'a>) -> Result<(), String>;

        /// One [`Setter`] per column, in the order of [`COLUMNS`].
        pub(crate) static SETTERS: &[Setter] = &[
            $( |row, value| crate::flatten::Convert::convert(value, &mut row.$name), )*
        ];
    };
}

columns! {
    no_data_found: Flag = "noDataFound",
    transaction_name: Id = "transactionName",
    transaction_id: Id = "transactionId",
    application_id: Id = "applicationId",
    application_name: Id = "applicationName",
    alias: Id = "alias",
    timestamp: Time = "timestamp",
    timestamp_str: Text = "timestampStr",
    key: Int = "key",
    timezone: Text = "timezone",
    index_type: Text = "indexType",
    sre_product: Text = "sreProduct",
    sum_response_time: Float = "sumResponseTime",
    avg_response_time: Float = "avgResponseTime",
    total_count: Int = "totalCount",
    success_count: Int = "successCount",
    error_count: Int = "errorCount",
    success_rate: Float = "successRate",
    error_rate: Float = "errorRate",
    total_data_points: Int = "totalDataPoints",
    short_target_slo: Float = "shortTargetSlo",
    eb_allocated_percent: Float = "ebAllocatedPercent",
    eb_allocated_count: Int = "ebAllocatedCount",
    eb_consumed_percent: Float = "ebConsumedPercent",
    eb_consumed_count: Int = "ebConsumedCount",
    eb_actual_consumed_percent: Float = "ebActualConsumedPercent",
    eb_left_percent: Float = "ebLeftPercent",
    eb_left_count: Int = "ebLeftCount",
    aspirational_slo: Float = "aspirationalSlo",
    aspirational_eb_allocated_percent: Float = "aspirationalEbAllocatedPercent",
    aspirational_eb_allocated_count: Int = "aspirationalEbAllocatedCount",
    aspirational_eb_consumed_percent: Float = "aspirationalEbConsumedPercent",
    aspirational_eb_consumed_count: Int = "aspirationalEbConsumedCount",
    aspirational_eb_actual_consumed_percent: Float = "aspirationalEbActualConsumedPercent",
    aspirational_eb_left_percent: Float = "aspirationalEbLeftPercent",
    aspirational_eb_left_count: Int = "aspirationalEbLeftCount",
    response_breach_count: Int = "responseBreachCount",
    response_error_rate: Float = "responseErrorRate",
    response_success_rate: Float = "responseSuccessRate",
    response_slo: Float = "responseSlo",
    response_target_percent: Float = "responseTargetPercent",
    response_allocated_percent: Float = "responseAllocatedPercent",
    response_allocated_count: Int = "responseAllocatedCount",
    response_consumed_percent: Float = "responseConsumedPercent",
    response_consumed_count: Int = "responseConsumedCount",
    response_actual_consumed_percent: Float = "responseActualConsumedPercent",
    response_left_percent: Float = "responseLeftPercent",
    response_left_count: Int = "responseLeftCount",
    aspirational_response_slo: Float = "aspirationalResponseSlo",
    aspirational_response_target_percent: Float = "aspirationalResponseTargetPercent",
    aspirational_response_allocated_percent: Float = "aspirationalResponseAllocatedPercent",
    aspirational_response_allocated_count: Int = "aspirationalResponseAllocatedCount",
    aspirational_response_consumed_percent: Float = "aspirationalResponseConsumedPercent",
    aspirational_response_consumed_count: Int = "aspirationalResponseConsumedCount",
    aspirational_response_actual_consumed_percent: Float = "aspirationalResponseActualConsumedPercent",
    aspirational_response_left_percent: Float = "aspirationalResponseLeftPercent",
    aspirational_response_left_count: Int = "aspirationalResponseLeftCount",
    timeliness_consumed_percent: Float = "timelinessConsumedPercent",
    aspirational_timeliness_consumed_percent: Float = "aspirationalTimelinessConsumedPercent",
    timeliness_health: Text = "timelinessHealth",
    response_health: Text = "responseHealth",
    eb_health: Text = "ebHealth",
    aspirational_response_health: Text = "aspirationalResponseHealth",
    aspirational_eb_health: Text = "aspirationalEbHealth",
    timeliness_severity: Text = "timelinessSeverity",
    response_severity: Text = "responseSeverity",
    eb_severity: Text = "ebSeverity",
    aspirational_response_severity: Text = "aspirationalResponseSeverity",
    aspirational_eb_severity: Text = "aspirationalEbSeverity",
    eb_breached: Flag = "ebBreached",
    response_breached: Flag = "responseBreached",
    eb_or_response_breached: Flag = "ebOrResponseBreached",
    percentile_25: Float = "percentile25",
    percentile_50: Float = "percentile50",
    percentile_75: Float = "percentile75",
    percentile_80: Float = "percentile80",
    percentile_85: Float = "percentile85",
    percentile_90: Float = "percentile90",
    percentile_95: Float = "percentile95",
    percentile_99: Float = "percentile99",
}

/// The column list of an insert, in row order: `(no_data_found, transaction_name, …)`.
pub fn insert_columns() -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
    format!("({})", names.join(", "))
}

/// The column added by the table on insert.
pub const INGESTION_TIME: &str = "ingestion_time";

/// Indexes of the identifier columns, which may come from the transaction object.
pub fn id_columns() -> impl Iterator<Item = usize> {
    COLUMNS
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == Kind::Id)
        .map(|(i, _)| i)
}

/// The camelCase of a snake_case column name, as the contract defines JSON names.
pub fn camel_case(column: &str) -> String {
    let mut out = String::with_capacity(column.len());
    let mut upper = false;
    for ch in column.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_the_camel_case_of_columns() {
        for c in COLUMNS {
            assert_eq!(c.json, camel_case(c.name), "column {}", c.name);
        }
        assert_eq!(camel_case("percentile_95"), "percentile95");
        assert_eq!(
            camel_case("eb_or_response_breached"),
            "ebOrResponseBreached"
        );
    }

    #[test]
    fn the_contract_has_80_record_columns_plus_ingestion_time() {
        assert_eq!(COLUMNS.len(), 80);
        let mut names: Vec<_> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 80, "a column is listed twice");
        assert_eq!(id_columns().count(), 5);
    }

    #[test]
    fn json_lookup_finds_every_column_and_nothing_else() {
        for (i, c) in COLUMNS.iter().enumerate() {
            assert_eq!(column_for_json(c.json), Some(i));
        }
        assert_eq!(column_for_json("transaction_name"), None);
        assert_eq!(column_for_json("transactionSeries"), None);
    }

    #[test]
    fn rows_encode_as_clickhouse_rowbinary() {
        let row = MetricRow {
            no_data_found: Some(false),
            transaction_name: "GET /a".into(),
            timestamp: Timestamp::Millis(1_767_205_800_000),
            total_count: Some(-12),
            success_rate: Some(99.5),
            timeliness_health: Some("OK".into()),
            eb_breached: Some(true),
            ..MetricRow::default()
        };
        let mut out = Vec::new();
        row.encode(&mut out);
        // Column by column, as the format defines it: Nullable is a 0 (value follows) or
        // 1 (NULL) byte; String is a LEB128 length and the bytes; numbers little-endian.
        let mut want: Vec<u8> = vec![0, 0]; // no_data_found: Some(false)
        want.extend([6]);
        want.extend(b"GET /a");
        want.extend([0, 0, 0, 0]); // transaction_id, application_id, application_name, alias: ""
        want.extend(1_767_205_800_000i64.to_le_bytes());
        for c in &COLUMNS[7..] {
            match c.name {
                "total_count" => {
                    want.push(0);
                    want.extend((-12i64).to_le_bytes());
                }
                "success_rate" => {
                    want.push(0);
                    want.extend(99.5f64.to_le_bytes());
                }
                "timeliness_health" => want.extend([0, 2, b'O', b'K']),
                "eb_breached" => want.extend([0, 1]),
                _ => want.push(1),
            }
        }
        assert_eq!(out, want);

        let mut long = Vec::new();
        "x".repeat(300).encode(&mut long);
        assert_eq!(&long[..2], &[0xAC, 0x02], "300 as LEB128");
        let mut secs = Vec::new();
        Timestamp::Seconds(1_767_205_800).encode(&mut secs);
        assert_eq!(secs, 1_767_205_800u32.to_le_bytes());
    }
}
