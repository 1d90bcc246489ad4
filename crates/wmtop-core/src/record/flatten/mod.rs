//! Flattening: one Kafka message (a transaction object with its `transactionSeries`) into
//! one [`MetricRow`] per hourly record. Lenient where real payloads are untidy (missing
//! fields, nulls, numbers sent as strings), strict where data would be lost: a value of
//! the wrong type or a record with no usable time is an error for that record, with its
//! reason, never a silent null and never an error for the whole batch.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

mod fast;

use crate::record::columns::{column_for_json, id_columns, MetricRow, Timestamp, COLUMNS, SETTERS};
use crate::record::value::{integral, parse_f64, truncate, Key};
pub use crate::record::value::{Convert, Value};

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
    /// The rows, when collected ([`flatten_message`]; [`flatten_each`] hands them over
    /// one at a time instead and leaves this empty).
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

/// Index of `timestamp` in [`COLUMNS`].
const TIMESTAMP_COLUMN: usize = crate::record::columns::TIMESTAMP_COLUMN;

/// Earliest and latest epoch milliseconds accepted as a record's hour (2000 to 2100):
/// outside that a value is in the wrong unit or garbage, not a time.
const MIN_MS: i64 = 946_684_800_000;
const MAX_MS: i64 = 4_102_444_800_000;

struct Envelope<'a> {
    ids: [Option<String>; 5],
    series: Option<Vec<&'a RawValue>>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a transaction object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
                let mut env = Envelope {
                    ids: Default::default(),
                    series: None,
                };
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if key == "transactionSeries" {
                        let series: Option<Vec<&'de RawValue>> = map.next_value().map_err(|e| {
                            de::Error::custom(format!("transactionSeries is not an array ({e})"))
                        })?;
                        env.series = series;
                        continue;
                    }
                    match id_slot(&key) {
                        Some(n) => {
                            let value: Value<'de> = map.next_value()?;
                            let mut id = String::new();
                            Convert::convert(value, &mut id)
                                .map_err(|e| de::Error::custom(format!("{key}: {e}")))?;
                            env.ids[n] = (!id.is_empty()).then_some(id);
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V)
    }
}

/// Which of the five identifiers (in [`id_columns`] order) a transaction key names.
fn id_slot(key: &str) -> Option<usize> {
    id_columns().position(|c| COLUMNS[c].json == key)
}

/// Reads one record into `row`, keeping its raw time fields for later resolution.
struct RecordSeed<'r> {
    row: &'r mut MetricRow,
    timestamp: &'r mut Option<String>,
    unknown: &'r mut BTreeSet<String>,
    present: &'r mut u128,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "timestamp" {
                *self.present |= 1 << TIMESTAMP_COLUMN;
                *self.timestamp = timestamp_text(map.next_value()?);
                continue;
            }
            match column_for_json(&key) {
                Some(idx) => {
                    *self.present |= 1 << idx;
                    let value: Value<'de> = map.next_value()?;
                    SETTERS[idx](self.row, value)
                        .map_err(|e| de::Error::custom(format!("field {key}: {e}")))?;
                }
                None => {
                    if !self.unknown.contains(key.as_ref()) {
                        self.unknown.insert(key.into_owned());
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A record's `timestamp` value as text, for [`resolve_time`] (None for null).
fn timestamp_text(value: Value<'_>) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Str(s) => Some(s.into_owned()),
        v => Some(v.to_string()),
    }
}

/// Epoch milliseconds from a `timestamp` or `key` value, if it is one.
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

fn resolve_time(row: &mut MetricRow, timestamp: Option<&str>) -> Result<(), String> {
    let ms = timestamp
        .and_then(epoch_ms)
        .or_else(|| row.key.filter(|ms| (MIN_MS..MAX_MS).contains(ms)))
        .or_else(|| {
            row.timestamp_str
                .as_deref()
                .and_then(|s| parse_time_str(s, row.timezone.as_deref()))
        });
    let Some(ms) = ms else {
        let shown = |v: Option<String>| {
            v.map_or("missing".to_string(), |s| format!("{:?}", truncate(&s, 40)))
        };
        return Err(format!(
            "no usable time: timestamp {}, key {}, timestampStr {}",
            shown(timestamp.map(str::to_owned)),
            shown(row.key.map(|k| k.to_string())),
            shown(row.timestamp_str.clone()),
        ));
    };
    row.timestamp = Timestamp(ms);
    Ok(())
}

/// Flattens one message. A message error means nothing in it could be used; otherwise
/// every record is either a row or a [`BadRecord`] with its reason.
pub fn flatten_message(payload: &[u8]) -> Result<Flattened, MessageError> {
    let mut rows = Vec::new();
    let mut out = flatten_each(payload, |row| rows.push(std::mem::take(row)))?;
    out.rows = rows;
    Ok(out)
}

/// Flattens one message like [`flatten_message`], handing each row to `each` as it is
/// made instead of collecting them (the consumer encodes rows straight into its insert).
pub fn flatten_each(
    payload: &[u8],
    mut each: impl FnMut(&mut MetricRow),
) -> Result<Flattened, MessageError> {
    let text = std::str::from_utf8(payload)
        .map_err(|e| MessageError::NotJson(format!("not UTF-8: {e}")))?;
    if let Some(done) = fast::flatten(text, &mut each) {
        return Ok(done);
    }
    flatten_serde(text, each)
}

/// The reference path: serde_json over the whole message, then over each record.
fn flatten_serde(
    text: &str,
    mut each: impl FnMut(&mut MetricRow),
) -> Result<Flattened, MessageError> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        // Tell "not JSON at all" from "JSON, but not an object".
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => MessageError::NotATransaction("the message is JSON but not an object".into()),
            Err(e) => MessageError::NotJson(e.to_string()),
        });
    }
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            MessageError::NotJson(e.to_string())
        } else {
            MessageError::NotATransaction(e.to_string())
        }
    })?;
    let series = env.series.ok_or(MessageError::NoSeries)?;
    if series.is_empty() {
        return Err(MessageError::EmptySeries);
    }
    let tx_name = env.ids[0].clone();
    let mut out = Flattened {
        transaction_name: tx_name,
        records: series.len(),
        ..Flattened::default()
    };
    for (index, raw) in series.into_iter().enumerate() {
        match flatten_record(
            raw.get(),
            &env.ids,
            &mut out.unknown_fields,
            &mut out.present_columns,
        ) {
            Ok(mut row) => {
                out.good += 1;
                each(&mut row);
            }
            Err(reason) => out.bad_records.push(BadRecord {
                index,
                reason: format!("record {index}: {reason}"),
                raw: raw.get().to_owned(),
            }),
        }
    }
    Ok(out)
}

fn flatten_record(
    raw: &str,
    ids: &[Option<String>; 5],
    unknown: &mut BTreeSet<String>,
    present: &mut u128,
) -> Result<MetricRow, String> {
    let mut row = MetricRow::default();
    let mut timestamp = None;
    let mut de = serde_json::Deserializer::from_str(raw);
    RecordSeed {
        row: &mut row,
        timestamp: &mut timestamp,
        unknown,
        present,
    }
    .deserialize(&mut de)
    .map_err(|e| e.to_string())?;
    finish_record(&mut row, timestamp.as_deref(), ids)?;
    Ok(row)
}

/// Fills a record's missing identifiers from its transaction and resolves its time.
fn finish_record(
    row: &mut MetricRow,
    timestamp: Option<&str>,
    ids: &[Option<String>; 5],
) -> Result<(), String> {
    // Identifiers: a record's own value wins; otherwise the transaction's.
    let slots: [&mut String; 5] = [
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

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_205_800_000;

    fn one(record: &str) -> Result<MetricRow, String> {
        let msg = format!(
            r#"{{"transactionName":"GET /a","applicationId":31854,"transactionSeries":[{record}]}}"#
        );
        let f = flatten_message(msg.as_bytes()).map_err(|e| e.to_string())?;
        match (f.rows.into_iter().next(), f.bad_records.into_iter().next()) {
            (Some(row), None) => Ok(row),
            (None, Some(bad)) => Err(bad.reason),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn identifiers_come_from_the_transaction_when_the_record_lacks_them() {
        let row = one(&format!(r#"{{"timestamp":{T0},"totalCount":10}}"#)).unwrap();
        assert_eq!(row.transaction_name, "GET /a");
        assert_eq!(row.application_id, "31854");
        assert_eq!(row.timestamp, Timestamp(T0));
        assert_eq!(row.total_count, Some(10));
    }

    #[test]
    fn a_records_own_identifier_wins() {
        let row = one(&format!(
            r#"{{"timestamp":{T0},"transactionName":"GET /b","applicationId":"7"}}"#
        ))
        .unwrap();
        assert_eq!(row.transaction_name, "GET /b");
        assert_eq!(row.application_id, "7");
    }

    #[test]
    fn missing_and_null_fields_are_null_not_zero() {
        let row = one(&format!(
            r#"{{"timestamp":{T0},"errorRate":null,"ebHealth":null}}"#
        ))
        .unwrap();
        assert_eq!(row.error_rate, None);
        assert_eq!(row.eb_health, None);
        assert_eq!(row.percentile_99, None);
        assert_eq!(row.eb_breached, None);
    }

    #[test]
    fn numbers_sent_as_strings_keep_their_value() {
        let row = one(&format!(
            r#"{{"timestamp":"{T0}","totalCount":"1234","errorRate":" 0.125 ","percentile95":"88.5","ebBreached":"true","ebLeftCount":"-3"}}"#
        ))
        .unwrap();
        assert_eq!(row.timestamp, Timestamp(T0));
        assert_eq!(row.total_count, Some(1234));
        assert_eq!(row.error_rate, Some(0.125));
        assert_eq!(row.percentile_95, Some(88.5));
        assert_eq!(row.eb_breached, Some(true));
        assert_eq!(row.eb_left_count, Some(-3));
    }

    #[test]
    fn wrong_types_are_an_error_for_the_record_naming_the_field() {
        let err = one(&format!(r#"{{"timestamp":{T0},"totalCount":"lots"}}"#)).unwrap_err();
        assert!(
            err.contains("record 0")
                && err.contains("field totalCount")
                && err.contains("\"lots\""),
            "{err}"
        );
        let err = one(&format!(r#"{{"timestamp":{T0},"errorCount":2.5}}"#)).unwrap_err();
        assert!(err.contains("expected an integer, got 2.5"), "{err}");
        let err = one(&format!(r#"{{"timestamp":{T0},"avgResponseTime":[1,2]}}"#)).unwrap_err();
        assert!(
            err.contains("field avgResponseTime: expected a number, got an array"),
            "{err}"
        );
        let err = one(&format!(r#"{{"timestamp":{T0},"ebBreached":"maybe"}}"#)).unwrap_err();
        assert!(err.contains("expected a boolean"), "{err}");
    }

    #[test]
    fn time_falls_back_from_timestamp_to_key_to_timestamp_str() {
        let row = one(&format!(r#"{{"key":{T0}}}"#)).unwrap();
        assert_eq!(row.timestamp, Timestamp(T0));
        assert_eq!(row.key, Some(T0));
        // 2026-01-01 00:00 in Kolkata is 2025-12-31 18:30 UTC = T0.
        let row =
            one(r#"{"timestampStr":"2026-01-01 00:00:00","timezone":"Asia/Kolkata"}"#).unwrap();
        assert_eq!(row.timestamp, Timestamp(T0));
        let row = one(r#"{"timestampStr":"2025-12-31T18:30:00Z"}"#).unwrap();
        assert_eq!(row.timestamp, Timestamp(T0));
        let row = one(&format!(
            r#"{{"timestamp":"garbage","key":{}}}"#,
            T0 + 3_600_000
        ))
        .unwrap();
        assert_eq!(row.timestamp, Timestamp(T0 + 3_600_000));
    }

    #[test]
    fn no_usable_time_is_an_error_for_that_record_only() {
        let msg = format!(
            r#"{{"transactionName":"GET /a","transactionSeries":[{{"totalCount":1}},{{"timestamp":{T0}}},{{"timestamp":1767205800,"timestampStr":"yesterday"}}]}}"#
        );
        let f = flatten_message(msg.as_bytes()).unwrap();
        assert_eq!(f.records, 3);
        assert_eq!(f.rows.len(), 1);
        assert_eq!(f.bad_records.len(), 2);
        assert_eq!(f.bad_records[0].index, 0);
        assert!(
            f.bad_records[0]
                .reason
                .starts_with("record 0: no usable time"),
            "{}",
            f.bad_records[0].reason
        );
        assert_eq!(f.bad_records[0].raw, r#"{"totalCount":1}"#);
        // Epoch seconds where milliseconds are due are not taken for a 1970 time.
        assert!(
            f.bad_records[1].reason.contains("timestamp \"1767205800\""),
            "{}",
            f.bad_records[1].reason
        );
    }

    #[test]
    fn message_errors_say_what_is_wrong() {
        let err = |b: &[u8]| flatten_message(b).unwrap_err();
        assert!(matches!(err(b"not json"), MessageError::NotJson(_)));
        assert!(matches!(
            err(b"{\"transactionName\":\"x\""),
            MessageError::NotJson(_)
        ));
        assert!(matches!(err(b"[1,2]"), MessageError::NotATransaction(_)));
        assert_eq!(err(b"{\"transactionName\":\"x\"}"), MessageError::NoSeries);
        assert_eq!(
            err(b"{\"transactionSeries\":[]}"),
            MessageError::EmptySeries
        );
        let e = err(b"{\"transactionSeries\":{\"a\":1}}");
        assert!(
            e.to_string().contains("transactionSeries is not an array"),
            "{e}"
        );
        assert!(matches!(
            err(b"{\"a\":\"\xff\xfe\"}"),
            MessageError::NotJson(_)
        ));
    }

    #[test]
    fn the_columns_sent_are_tracked() {
        assert_eq!(COLUMNS[TIMESTAMP_COLUMN].name, "timestamp");
        let msg = format!(
            r#"{{"transactionName":"x","transactionSeries":[{{"timestamp":{T0},"totalCount":1}},{{"key":{T0},"errorRate":null}}]}}"#
        );
        let f = flatten_message(msg.as_bytes()).unwrap();
        let sent: Vec<&str> = COLUMNS
            .iter()
            .enumerate()
            .filter(|(i, _)| f.present_columns & (1 << i) != 0)
            .map(|(_, c)| c.name)
            .collect();
        assert_eq!(sent, vec!["timestamp", "key", "total_count", "error_rate"]);
    }

    #[test]
    fn unknown_fields_are_reported_as_drift() {
        let msg = format!(
            r#"{{"transactionName":"x","transactionSeries":[{{"timestamp":{T0},"brandNewField":1}}]}}"#
        );
        let f = flatten_message(msg.as_bytes()).unwrap();
        assert_eq!(f.rows.len(), 1);
        assert_eq!(
            f.unknown_fields.into_iter().collect::<Vec<_>>(),
            vec!["brandNewField".to_string()]
        );
    }

    /// The fast path, where it answers, agrees with the serde path row for row.
    fn same_on_both_paths(text: &str) -> bool {
        let mut fast_rows = Vec::new();
        let fast = fast::flatten(text, &mut |r| fast_rows.push(std::mem::take(r)));
        let mut slow_rows = Vec::new();
        let slow = flatten_serde(text, |r| slow_rows.push(std::mem::take(r)));
        let Some(fast) = fast else {
            return false;
        };
        let slow =
            slow.unwrap_or_else(|e| panic!("fast path took what serde refused ({e}): {text}"));
        assert!(
            slow.bad_records.is_empty(),
            "fast path took a bad record: {text}"
        );
        assert_eq!(fast_rows, slow_rows, "rows differ for {text}");
        assert_eq!(fast.records, slow.records);
        assert_eq!(fast.good, slow.good);
        assert_eq!(fast.present_columns, slow.present_columns);
        assert_eq!(fast.unknown_fields, slow.unknown_fields);
        assert_eq!(fast.transaction_name, slow.transaction_name);
        true
    }

    #[test]
    fn the_fast_path_takes_the_simulators_data_and_agrees_with_serde() {
        // The simulator is a dev-dependency: its own copy of this crate's types.
        let mut cfg = wmtop_sim::SimConfig::new(Default::default());
        cfg.transactions = 12;
        cfg.hours = 30;
        let body = wmtop_sim::full_answer(&cfg).unwrap();
        let answer = crate::source::api::split_answer(body.into()).unwrap();
        assert_eq!(answer.transactions.len(), 12);
        for tx in &answer.transactions {
            let text = std::str::from_utf8(&tx.payload).unwrap();
            assert!(
                same_on_both_paths(text),
                "the fast path gave up on clean data"
            );
        }
    }

    #[test]
    fn the_fast_path_agrees_or_gives_up_on_untidy_input() {
        let rec = |body: &str| {
            format!(
                r#"{{"transactionName":"GET /a","applicationId":31854,"transactionSeries":[{body}]}}"#
            )
        };
        let t = format!(r#""timestamp":{T0}"#);
        let taken = [
            rec(&format!(
                r#"{{{t},"successRate":"99.5","totalCount":"12"}}"#
            )),
            rec(&format!(
                r#"{{{t},"successRate":-0,"errorRate":-0.0,"totalCount":-0}}"#
            )),
            rec(&format!(
                r#"{{{t},"successRate":1.5e3,"errorRate":123456789012345678901234.5}}"#
            )),
            rec(&format!(
                r#"{{{t},"successRate":0.1,"errorRate":0.30000000000000004,"avgResponseTime":1e-7}}"#
            )),
            rec(&format!(
                r#"{{{t},"totalCount":9223372036854775807,"errorCount":-9223372036854775808,"successRate":18446744073709551616}}"#
            )),
            rec(&format!(
                r#"{{{t},"successRate":null,"ebBreached":true,"responseBreached":0,"timelinessHealth":"OK"}}"#
            )),
            rec(&format!(
                r#"{{ {t} , "newField" : 1 , "successRate" : 2 }} , {{{t},"successRate":3,"successRate":4}}"#
            )),
            rec(&format!(r#"{{{t},"transactionName":"GET /b","alias":17}}"#)),
            format!(r#"{{"transactionSeries":[{{{t}}}],"transactionName":"late"}}"#),
            format!(" \n{}\t ", rec(&format!("{{{t}}}"))),
            rec(
                r#"{"key":1767205800000,"timestampStr":"2026-01-01 05:30:00","timezone":"Asia/Kolkata"}"#,
            ),
            rec(r#"{"timestampStr":"2026-01-01 05:30:00","timezone":"Asia/Kolkata"}"#),
            rec(&format!(r#"{{"timestamp":"{T0}"}}"#)),
        ];
        for text in &taken {
            assert!(same_on_both_paths(text), "the fast path gave up on {text}");
        }
        let declined = [
            rec(&format!(r#"{{{t},"timelinessHealth":"O\u004b"}}"#)),
            rec(&format!(r#"{{{t},"nested":{{"a":1}}}}"#)),
            rec(&format!(r#"{{{t},"successRate":"abc"}}"#)),
            rec(&format!(r#"{{{t},"successRate":01}}"#)),
            rec(&format!(r#"{{{t},"successRate":1.}}"#)),
            rec(&format!(r#"{{{t},"successRate":+1}}"#)),
            rec(&format!(r#"{{{t},"successRate":.5}}"#)),
            rec(&format!(r#"{{{t},"successRate":1e}}"#)),
            rec(&format!("{{{t},\"timelinessHealth\":\"a{}b\"}}", '\u{1}')),
            rec(r#"{"successRate":1}"#),
            rec(&format!(r#"{{{t},"totalCount":18446744073709551616}}"#)),
            rec("7"),
            rec(""),
            format!("{} x", rec(&format!("{{{t}}}"))),
            rec(&format!("{{{t}}}")).replace("]}", "]"),
            format!(
                r#"{{"transactionName":"a","transactionSeries":[{{{t}}}],"transactionSeries":[{{{t}}}]}}"#
            ),
            r#"{"transactionName":"a","transactionSeries":null}"#.to_string(),
            r#"{"transactionName":"a"}"#.to_string(),
        ];
        for text in &declined {
            assert!(!same_on_both_paths(text), "the fast path took {text}");
        }
    }
}
