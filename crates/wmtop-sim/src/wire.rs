//! The wire form of a series answer: picks the records in a time window, wraps them in the
//! configured shape, and applies the data faults (numbers sent as strings, fields left out)
//! deterministically from the seed, changing only the form, never a value; and, when
//! asked, one extra record with no usable time on the first transactions.

use serde::Serialize;
use serde_json::Value;

use crate::config::{Faults, Shape};
use crate::data::{SimRecord, SimTransaction};
use crate::rng::{hash_str, hash_words, unit};

/// Fields that are never left out: a record's time.
pub const TIME_FIELDS: [&str; 3] = ["timestamp", "key", "timestampStr"];

/// A transaction with only some of its records, serialized like [`SimTransaction`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TxView<'a> {
    transaction_name: &'a str,
    transaction_id: u64,
    application_id: u64,
    application_name: &'a str,
    alias: &'a str,
    transaction_series: &'a [SimRecord],
}

/// The records of `tx` with `start <= timestamp <= end` (records are ordered by time).
pub fn window(tx: &SimTransaction, start: i64, end: i64) -> &[SimRecord] {
    let lo = tx.records.partition_point(|r| r.timestamp < start);
    let hi = tx.records.partition_point(|r| r.timestamp <= end);
    tx.records.get(lo..hi.max(lo)).unwrap_or(&[])
}

/// Which data faults to apply, and the seed their choices follow from.
#[derive(Clone, Copy, Debug)]
pub struct DataFaults {
    pub seed: u64,
    pub strings_for_numbers: f64,
    pub missing_fields: f64,
    /// The first N transactions get one more record, with no usable time.
    pub unusable_records: u32,
}

impl DataFaults {
    /// The data faults of `f`, or `None` when it has none.
    pub fn of(f: &Faults, seed: u64) -> Option<Self> {
        f.touches_data().then_some(Self {
            seed,
            strings_for_numbers: f.strings_for_numbers,
            missing_fields: f.missing_fields,
            unusable_records: f.unusable_records,
        })
    }

    fn pick(&self, salt: u64, tx_id: u64, ts: i64, field: &str, share: f64) -> bool {
        share > 0.0
            && unit(hash_words(&[
                self.seed,
                salt,
                tx_id,
                ts as u64,
                hash_str(field),
            ])) < share
    }

    /// Whether `field` of the record at `ts` of transaction `tx_id` is sent as a string.
    pub fn as_string(&self, tx_id: u64, ts: i64, field: &str) -> bool {
        self.pick(0x0053_5452, tx_id, ts, field, self.strings_for_numbers)
    }

    /// Whether `field` of the record at `ts` of transaction `tx_id` is left out.
    pub fn left_out(&self, tx_id: u64, ts: i64, field: &str) -> bool {
        !TIME_FIELDS.contains(&field)
            && self.pick(0x4d49_5353, tx_id, ts, field, self.missing_fields)
    }

    fn apply(&self, tx_id: u64, record: &SimRecord) -> serde_json::Result<Value> {
        let mut v = serde_json::to_value(record)?;
        if let Value::Object(map) = &mut v {
            map.retain(|k, _| !self.left_out(tx_id, record.timestamp, k));
            for (k, val) in map.iter_mut() {
                if let Value::Number(n) = val {
                    if self.as_string(tx_id, record.timestamp, k) {
                        // serde_json prints the shortest form that reads back to the same value.
                        *val = Value::String(n.to_string());
                    }
                }
            }
        }
        Ok(v)
    }
}

/// The answer body for `[start, end]`: transactions with no record in the window are left out.
pub fn body(
    data: &[SimTransaction],
    start: i64,
    end: i64,
    shape: Shape,
    faults: Option<DataFaults>,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(1 << 20);
    if let Some(key) = shape.key() {
        out.extend_from_slice(b"{");
        serde_json::to_writer(&mut out, key)?;
        out.extend_from_slice(b":");
    }
    out.push(b'[');
    let mut first = true;
    for (index, tx) in data.iter().enumerate() {
        let records = window(tx, start, end);
        if records.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        match faults {
            None => serde_json::to_writer(
                &mut out,
                &TxView {
                    transaction_name: &tx.name,
                    transaction_id: tx.transaction_id,
                    application_id: tx.application_id,
                    application_name: &tx.application_name,
                    alias: &tx.alias,
                    transaction_series: records,
                },
            )?,
            Some(df) => {
                let mut series = records
                    .iter()
                    .map(|r| df.apply(tx.transaction_id, r))
                    .collect::<serde_json::Result<Vec<Value>>>()?;
                if index < df.unusable_records as usize {
                    series.push(serde_json::json!({"totalCount": 1, "timestamp": null}));
                }
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct TxFaulty<'a> {
                    transaction_name: &'a str,
                    transaction_id: u64,
                    application_id: u64,
                    application_name: &'a str,
                    alias: &'a str,
                    transaction_series: Vec<Value>,
                }
                serde_json::to_writer(
                    &mut out,
                    &TxFaulty {
                        transaction_name: &tx.name,
                        transaction_id: tx.transaction_id,
                        application_id: tx.application_id,
                        application_name: &tx.application_name,
                        alias: &tx.alias,
                        transaction_series: series,
                    },
                )?;
            }
        }
    }
    out.push(b']');
    if shape.key().is_some() {
        out.push(b'}');
    }
    Ok(out)
}
