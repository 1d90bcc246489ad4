//! The reference path of flattening: serde_json over the whole message (the transaction
//! object, its identifiers and its series as raw records), then over each record into a
//! row. Every outcome other than "all rows good" comes from here: a message error, or a
//! record set aside with its reason.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::record::{finish_record, id_slot, timestamp_given, BadRecord, Flattened, MessageError};
use crate::record::columns::{
    column_for_json, CompactString, MetricRow, SETTERS, TIMESTAMP_COLUMN,
};
use crate::record::value::{Convert, Key, Value};

/// A transaction object: its identifiers (in [`crate::record::columns::id_columns`]
/// order) and its series, each record left as raw JSON.
struct Envelope<'a> {
    ids: [Option<CompactString>; 5],
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
                            let mut id = CompactString::default();
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

/// Reads one record into `row`, keeping its raw time fields for later resolution.
struct RecordSeed<'r> {
    row: &'r mut MetricRow,
    timestamp: &'r mut Option<Value<'static>>,
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
                *self.timestamp = timestamp_given(map.next_value()?);
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

/// The reference path: serde_json over the whole message, then over each record.
pub(super) fn flatten_serde(
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
    let tx_name = env.ids[0].clone().map(String::from);
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
    ids: &[Option<CompactString>; 5],
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
    finish_record(&mut row, timestamp.as_ref(), ids)?;
    Ok(row)
}
