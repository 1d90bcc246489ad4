//! The columns of `transaction_metrics`: one table, written once, that drives the row
//! type sent to ClickHouse, the table's DDL, and the JSON name each column is read from.

pub use compact_str::CompactString;
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

/// A record's time: epoch milliseconds, UTC. The encoder writes it in the unit of the
/// table's column (`DateTime` seconds, `DateTime64(p)` ticks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Epoch milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl crate::record::value::Convert for Timestamp {
    fn convert(value: crate::record::value::Value<'_>, slot: &mut Self) -> Result<(), String> {
        let mut ms = None;
        crate::record::value::Convert::convert(value, &mut ms)?;
        *slot = Timestamp(ms.ok_or("no time given")?);
        Ok(())
    }
}

/// One column's value in a row, borrowed: what the encoder writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldRef<'a> {
    Id(&'a str),
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<&'a str>),
    Flag(Option<bool>),
    /// Epoch milliseconds.
    Time(i64),
}

/// A row as borrowed values, one per column of [`COLUMNS`] in order: what the fast path
/// of flattening makes (borrowing the message) and what the encoder writes.
pub type Fields<'a> = [FieldRef<'a>; COLUMN_COUNT];

/// A field's borrowed view, per Rust type of [`MetricRow`].
trait AsField {
    fn as_field(&self) -> FieldRef<'_>;
}

/// A field's owned value from its borrowed view (a view of another kind leaves it as is:
/// fields are made per column, so the kinds always match).
trait SetField {
    fn set_field(&mut self, field: FieldRef<'_>);
}

impl SetField for CompactString {
    fn set_field(&mut self, field: FieldRef<'_>) {
        if let FieldRef::Id(s) = field {
            *self = CompactString::from(s);
        }
    }
}

impl SetField for Option<i64> {
    fn set_field(&mut self, field: FieldRef<'_>) {
        if let FieldRef::Int(v) = field {
            *self = v;
        }
    }
}

impl SetField for Option<f64> {
    fn set_field(&mut self, field: FieldRef<'_>) {
        if let FieldRef::Float(v) = field {
            *self = v;
        }
    }
}

impl SetField for Option<CompactString> {
    fn set_field(&mut self, field: FieldRef<'_>) {
        if let FieldRef::Text(v) = field {
            *self = v.map(CompactString::from);
        }
    }
}

impl SetField for Option<bool> {
    fn set_field(&mut self, field: FieldRef<'_>) {
        if let FieldRef::Flag(v) = field {
            *self = v;
        }
    }
}

impl SetField for Timestamp {
    fn set_field(&mut self, field: FieldRef<'_>) {
        if let FieldRef::Time(ms) = field {
            *self = Timestamp(ms);
        }
    }
}

impl AsField for CompactString {
    fn as_field(&self) -> FieldRef<'_> {
        FieldRef::Id(self)
    }
}

impl AsField for Option<i64> {
    fn as_field(&self) -> FieldRef<'_> {
        FieldRef::Int(*self)
    }
}

impl AsField for Option<f64> {
    fn as_field(&self) -> FieldRef<'_> {
        FieldRef::Float(*self)
    }
}

impl AsField for Option<CompactString> {
    fn as_field(&self) -> FieldRef<'_> {
        FieldRef::Text(self.as_deref())
    }
}

impl AsField for Option<bool> {
    fn as_field(&self) -> FieldRef<'_> {
        FieldRef::Flag(*self)
    }
}

impl AsField for Timestamp {
    fn as_field(&self) -> FieldRef<'_> {
        FieldRef::Time(self.0)
    }
}

/// A column's value in a row that has none: empty for an identifier, null otherwise.
const fn empty_field(kind: Kind) -> FieldRef<'static> {
    match kind {
        Kind::Id => FieldRef::Id(""),
        Kind::Int => FieldRef::Int(None),
        Kind::Float => FieldRef::Float(None),
        Kind::Text => FieldRef::Text(None),
        Kind::Flag => FieldRef::Flag(None),
        Kind::Time => FieldRef::Time(0),
    }
}

macro_rules! rust_type {
    (Id) => { CompactString };
    (Int) => { Option<i64> };
    (Float) => { Option<f64> };
    (Text) => { Option<CompactString> };
    (Flag) => { Option<bool> };
    (Time) => { Timestamp };
}

macro_rules! columns {
    ($( $name:ident : $kind:ident = $json:literal ),* $(,)?) => {
        /// One flattened hourly record: a row of `transaction_metrics`, one field per
        /// column of [`COLUMNS`].
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

        /// A row with no values ([`MetricRow::default`] as fields).
        pub const EMPTY_FIELDS: Fields<'static> = [
            $( empty_field(Kind::$kind), )*
        ];

        impl MetricRow {
            /// The row's values, borrowed, in the order of [`COLUMNS`].
            pub fn fields(&self) -> Fields<'_> {
                [ $( AsField::as_field(&self.$name), )* ]
            }

            /// The row these values make.
            pub fn from_fields(fields: &Fields<'_>) -> MetricRow {
                let mut row = MetricRow::default();
                let mut values = fields.iter();
                $( if let Some(v) = values.next() { SetField::set_field(&mut row.$name, *v); } )*
                row
            }
        }

        /// Sets column `idx` of a row from a JSON value; used by the flattener.
        pub(crate) type Setter = for<'a> fn(&mut MetricRow, crate::record::value::Value<'a>) -> Result<(), String>;

        /// One [`Setter`] per column, in the order of [`COLUMNS`].
        pub(crate) static SETTERS: &[Setter] = &[
            $( |row, value| crate::record::value::Convert::convert(value, &mut row.$name), )*
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

/// Number of record columns.
pub const COLUMN_COUNT: usize = COLUMNS.len();

/// Index of `timestamp` in [`COLUMNS`], found when compiling.
pub const TIMESTAMP_COLUMN: usize = const_index("timestamp");
/// Index of `transaction_name` in [`COLUMNS`].
pub const TRANSACTION_NAME_COLUMN: usize = const_index("transaction_name");
/// Index of `application_id` in [`COLUMNS`].
pub const APPLICATION_ID_COLUMN: usize = const_index("application_id");
/// Indexes of `timestamp_str`, `key` and `timezone`, which a record's time falls back on.
pub const TIMESTAMP_STR_COLUMN: usize = const_index("timestamp_str");
pub const KEY_COLUMN: usize = const_index("key");
pub const TIMEZONE_COLUMN: usize = const_index("timezone");

const fn const_index(name: &str) -> usize {
    let mut i = 0;
    while i < COLUMNS.len() {
        let (a, b) = (COLUMNS[i].name.as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("no such column")
}

/// The column the table fills on insert (informational).
pub const INGESTION_TIME: &str = "ingestion_time";
/// The column holding the Kafka time (ms) of the message a row came from: the version a
/// merge keeps the newest of.
pub const RECORD_VERSION: &str = "record_version";
/// The column holding a hash of the row's content, so that a re-load can skip hours
/// stored with the same content.
pub const RECORD_HASH: &str = "record_hash";

/// A column's index in [`COLUMNS`] by name.
pub fn column_index(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|c| c.name == name)
}

/// Indexes of the identifier columns in [`COLUMNS`], in order, found when compiling
/// (any number of identifier columns but five fails the build here).
pub const ID_COLUMNS: [usize; 5] = id_indexes();

const fn id_indexes() -> [usize; 5] {
    let mut out = [0; 5];
    let (mut n, mut i) = (0, 0);
    while i < COLUMNS.len() {
        if matches!(COLUMNS[i].kind, Kind::Id) {
            out[n] = i;
            n += 1;
        }
        i += 1;
    }
    assert!(n == 5, "five identifier columns");
    out
}

/// Indexes of the identifier columns, which may come from the transaction object.
pub fn id_columns() -> impl Iterator<Item = usize> {
    ID_COLUMNS.into_iter()
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
        let ids: Vec<usize> = (0..COLUMN_COUNT)
            .filter(|&i| COLUMNS[i].kind == Kind::Id)
            .collect();
        assert_eq!(ids, ID_COLUMNS, "the identifier columns, in order");
        assert_eq!(
            ID_COLUMNS.map(|i| COLUMNS[i].name),
            [
                "transaction_name",
                "transaction_id",
                "application_id",
                "application_name",
                "alias"
            ],
            "the order finish_record fills them in"
        );
    }

    #[test]
    fn json_lookup_finds_every_column_and_nothing_else() {
        for (i, c) in COLUMNS.iter().enumerate() {
            assert_eq!(column_for_json(c.json), Some(i));
        }
        assert_eq!(column_for_json("transaction_name"), None);
        assert_eq!(column_for_json("transactionSeries"), None);
    }
}
