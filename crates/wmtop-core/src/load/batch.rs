//! One batch being gathered: each message flattened straight into RowBinary for the
//! table's row plan ([`Flat`]; no row structs kept), its bad records and bad messages
//! kept aside with their reasons, and what the batch came from (offsets, bytes,
//! transactions).

use std::collections::BTreeMap;
use std::time::Instant;

use rdkafka::message::Message;

use crate::clickhouse::table::RowPlan;
use crate::clickhouse::{DeadLetter, Rows, Scope};
use crate::record::columns::{FieldRef, TRANSACTION_NAME_COLUMN};
use crate::record::flatten::{flatten_fields, Flattened, MessageError};

/// Rows and dead letters on their way to ClickHouse, with their origin.
#[derive(Default)]
pub struct Batch {
    pub rows: Rows,
    pub dead: Vec<DeadLetter>,
    /// Per partition: first and last offset held.
    pub offsets: BTreeMap<i32, (i64, i64)>,
    /// Records taken in per transaction.
    pub per_transaction: BTreeMap<String, u64>,
    pub bytes: usize,
    pub messages: usize,
    pub started: Option<Instant>,
}

/// One message flattened and encoded (its rows written where the caller said): what it
/// came to, and where it came from.
pub struct Flat {
    pub partition: i32,
    pub offset: i64,
    key: String,
    bytes: usize,
    /// The first row's transaction name (when the object has none of its own).
    first_name: Option<String>,
    outcome: Result<Flattened, MessageError>,
    /// The message as sent, kept only when nothing in it could be used (a dead letter).
    unusable: Vec<u8>,
}

impl Flat {
    /// Flattens one message into `rows` for the plan (the batch's own, or rows of its
    /// own for [`Rows::append`]). Rows carry their message's Kafka time as version: the
    /// newest fetch wins a merge.
    pub fn of(plan: &RowPlan, m: &impl Message, rows: &mut Rows) -> Flat {
        let payload = m.payload().unwrap_or_default();
        let version = m
            .timestamp()
            .to_millis()
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0);
        let mut first_name: Option<String> = None;
        let outcome = flatten_fields(payload, |row| {
            if first_name.is_none() {
                if let FieldRef::Id(name) = row[TRANSACTION_NAME_COLUMN] {
                    first_name = Some(name.to_string());
                }
            }
            rows.push_fields(plan, row, version);
        });
        Flat {
            partition: m.partition(),
            offset: m.offset(),
            key: m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            bytes: payload.len(),
            first_name,
            unusable: if outcome.is_err() {
                payload.to_vec()
            } else {
                Vec::new()
            },
            outcome,
        }
    }
}

/// What one message came to.
pub struct Taken {
    pub transaction: String,
    pub outcome: Result<Flattened, MessageError>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Adds one flattened message (its rows already in `self.rows`) to the batch. Its
    /// records (or the whole message, when nothing in it is usable) that cannot be used
    /// become dead letters.
    pub fn add(&mut self, topic: &str, flat: Flat) -> Taken {
        let Flat {
            partition,
            offset,
            key,
            bytes,
            first_name,
            outcome,
            unusable,
        } = flat;
        self.offsets
            .entry(partition)
            .and_modify(|(_, last)| *last = (*last).max(offset))
            .or_insert((offset, offset));
        self.started.get_or_insert_with(Instant::now);
        self.bytes += bytes;
        self.messages += 1;
        let transaction = match &outcome {
            Ok(f) => f
                .transaction_name
                .clone()
                .or(first_name)
                .unwrap_or_else(|| key.clone()),
            Err(_) => key.clone(),
        };
        let letter = |scope, record_index, reason: String, payload: Vec<u8>| DeadLetter {
            scope,
            topic: topic.to_string(),
            kafka_partition: partition,
            kafka_offset: offset,
            message_key: key.clone(),
            record_index,
            reason,
            payload,
        };
        match &outcome {
            Err(e) => self
                .dead
                .push(letter(Scope::Message, -1, e.to_string(), unusable)),
            Ok(f) => {
                for bad in &f.bad_records {
                    self.dead.push(letter(
                        Scope::Record,
                        i32::try_from(bad.index).unwrap_or(i32::MAX),
                        bad.reason.clone(),
                        bad.raw.clone().into_bytes(),
                    ));
                }
                *self.per_transaction.entry(transaction.clone()).or_default() += f.good as u64;
            }
        }
        Taken {
            transaction,
            outcome,
        }
    }
}
