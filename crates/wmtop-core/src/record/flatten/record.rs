//! What flattening makes, and what both of its paths do to each record: the outcome of
//! one message ([`Flattened`], [`BadRecord`], [`MessageError`]), which transaction key is
//! an identifier, and finishing a record (identifiers filled from its transaction, its
//! hour resolved from `timestamp`, `key` or `timestampStr`, within 2000 to 2100).

use std::collections::BTreeSet;

use crate::record::columns::{id_columns, CompactString, MetricRow, Timestamp, COLUMNS};
use crate::record::value::{integral, parse_f64, truncate, Value};

/// A record that could not be used: where it was, why, and its JSON as sent.
#[derive(Clone, Debug, PartialEq)]
pub struct BadRecord {
    pub index: usize,
    pub reason: String,
    pub raw: String,
}

/// What one message flattened to.
#[derive(Debug, Default)]
pub struct Flattened {
    /// The transaction's name from its object, when it has one.
    pub transaction_name: Option<String>,
    /// Records in the message's series.
    pub records: usize,
    /// Rows made (their count whether or not they were collected).
    pub good: usize,
    /// The rows, when collected ([`flatten_message`](super::flatten_message);
    /// [`flatten_each`](super::flatten_each) hands them over one at a time instead and
    /// leaves this empty).
    pub rows: Vec<MetricRow>,
    pub bad_records: Vec<BadRecord>,
    /// Record fields the table has no column for (schema drift).
    pub unknown_fields: BTreeSet<String>,
    /// Bit i set: column i of [`COLUMNS`] was sent in at least one record.
    pub present_columns: u128,
}

/// Why a whole message could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("not a transaction: {0}")]
    NotATransaction(String),
    #[error("no transactionSeries in the transaction object")]
    NoSeries,
    #[error("transactionSeries is empty")]
    EmptySeries,
}

/// Earliest and latest epoch milliseconds accepted as a record's hour (2000 to 2100):
/// outside that a value is in the wrong unit or garbage, not a time.
const MIN_MS: i64 = 946_684_800_000;
const MAX_MS: i64 = 4_102_444_800_000;

/// Which of the five identifiers (in [`id_columns`] order) a transaction key names.
pub(super) fn id_slot(key: &str) -> Option<usize> {
    id_columns().position(|c| COLUMNS[c].json == key)
}

/// A record's `timestamp` value, kept for [`resolve_time`] (None for null); a number is
/// kept as it is, with no text made of it.
pub(super) fn timestamp_given(value: Value<'_>) -> Option<Value<'static>> {
    match value {
        Value::Null => None,
        Value::Str(s) => Some(Value::Str(std::borrow::Cow::Owned(s.into_owned()))),
        Value::Bool(b) => Some(Value::Bool(b)),
        Value::I64(n) => Some(Value::I64(n)),
        Value::U64(n) => Some(Value::U64(n)),
        Value::F64(n) => Some(Value::F64(n)),
        Value::Other(kind) => Some(Value::Other(kind)),
    }
}

/// Epoch milliseconds from a `timestamp` value, if it is one.
fn given_ms(value: &Value<'_>) -> Option<i64> {
    let ms = match value {
        Value::I64(n) => Some(*n),
        Value::U64(n) => i64::try_from(*n).ok(),
        Value::F64(n) => integral(*n),
        Value::Str(s) => return epoch_ms(s),
        Value::Null | Value::Bool(_) | Value::Other(_) => None,
    }?;
    (MIN_MS..MAX_MS).contains(&ms).then_some(ms)
}

/// Epoch milliseconds from a `timestamp` or `key` text, if it is one.
fn epoch_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let ms = t
        .parse::<i64>()
        .ok()
        .or_else(|| parse_f64(t).and_then(integral))?;
    (MIN_MS..MAX_MS).contains(&ms).then_some(ms)
}

/// Epoch milliseconds from `timestampStr`: RFC 3339 with an offset, or a civil time
/// ("2026-01-01 05:30:00" or with a `T`) read in the record's `timezone` (UTC if none).
fn parse_time_str(text: &str, timezone: Option<&str>) -> Option<i64> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond()).filter(|ms| (MIN_MS..MAX_MS).contains(ms));
    }
    let civil: jiff::civil::DateTime = t.replacen(' ', "T", 1).parse().ok()?;
    let tz = match timezone {
        Some(name) if !name.trim().is_empty() => jiff::tz::TimeZone::get(name.trim()).ok()?,
        _ => jiff::tz::TimeZone::UTC,
    };
    let ms = civil.to_zoned(tz).ok()?.timestamp().as_millisecond();
    (MIN_MS..MAX_MS).contains(&ms).then_some(ms)
}

/// Sets a record's time from its `timestamp`, else its `key`, else its `timestampStr`
/// (read in its `timezone`); an error naming all three when none is usable.
fn resolve_time(row: &mut MetricRow, timestamp: Option<&Value<'_>>) -> Result<(), String> {
    let ms = record_time(
        timestamp,
        row.key,
        row.timestamp_str.as_deref(),
        row.timezone.as_deref(),
    )?;
    row.timestamp = Timestamp(ms);
    Ok(())
}

/// A record's hour (epoch ms) from its `timestamp`, else its `key`, else its
/// `timestampStr` read in its `timezone`; an error naming all three when none is usable.
pub(super) fn record_time(
    timestamp: Option<&Value<'_>>,
    key: Option<i64>,
    timestamp_str: Option<&str>,
    timezone: Option<&str>,
) -> Result<i64, String> {
    let ms = timestamp
        .and_then(given_ms)
        .or_else(|| key.filter(|ms| (MIN_MS..MAX_MS).contains(ms)))
        .or_else(|| timestamp_str.and_then(|s| parse_time_str(s, timezone)));
    let Some(ms) = ms else {
        let shown = |v: Option<String>| {
            v.map_or("missing".to_string(), |s| format!("{:?}", truncate(&s, 40)))
        };
        return Err(format!(
            "no usable time: timestamp {}, key {}, timestampStr {}",
            shown(timestamp.map(|v| match v {
                Value::Str(s) => s.to_string(),
                v => v.to_string(),
            })),
            shown(key.map(|k| k.to_string())),
            shown(timestamp_str.map(ToString::to_string)),
        ));
    };
    Ok(ms)
}

/// Fills a record's missing identifiers from its transaction and resolves its time.
pub(super) fn finish_record(
    row: &mut MetricRow,
    timestamp: Option<&Value<'_>>,
    ids: &[Option<CompactString>; 5],
) -> Result<(), String> {
    // Identifiers: a record's own value wins; otherwise the transaction's.
    let slots: [&mut CompactString; 5] = [
        &mut row.transaction_name,
        &mut row.transaction_id,
        &mut row.application_id,
        &mut row.application_name,
        &mut row.alias,
    ];
    for (slot, from_tx) in slots.into_iter().zip(ids) {
        if slot.is_empty() {
            if let Some(v) = from_tx {
                slot.clone_from(v);
            }
        }
    }
    if row.transaction_name.is_empty() {
        return Err("no transactionName on the record or its transaction".into());
    }
    resolve_time(row, timestamp)
}
