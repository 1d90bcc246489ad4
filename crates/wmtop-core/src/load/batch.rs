//! One batch being gathered: each message flattened straight into RowBinary for the
//! table's row plan (no row structs kept), its bad records and bad messages kept aside
//! with their reasons, and what the batch came from (offsets, bytes, transactions).

use std::collections::BTreeMap;
use std::time::Instant;

use rdkafka::message::{BorrowedMessage, Message};

use crate::clickhouse::table::RowPlan;
use crate::clickhouse::{DeadLetter, Rows, Scope};
use crate::record::flatten::{flatten_each, Flattened, MessageError};

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

/// What one message came to.
pub struct Taken {
    pub transaction: String,
    pub outcome: Result<Flattened, MessageError>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Flattens one message into the batch. Its records (or the whole message, when
    /// nothing in it is usable) that cannot be used become dead letters.
    pub fn take(&mut self, plan: &RowPlan, topic: &str, m: &BorrowedMessage<'_>) -> Taken {
        let partition = m.partition();
        let offset = m.offset();
        let payload = m.payload().unwrap_or_default();
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        // The newest fetch wins a merge: rows carry their message's Kafka time.
        let version = m
            .timestamp()
            .to_millis()
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0);
        let rows = &mut self.rows;
        let mut name: Option<String> = None;
        let outcome = flatten_each(payload, |row| {
            if name.is_none() {
                name = Some(row.transaction_name.clone());
            }
            rows.push(plan, row, version);
        });
        self.offsets
            .entry(partition)
            .and_modify(|(_, last)| *last = (*last).max(offset))
            .or_insert((offset, offset));
        self.started.get_or_insert_with(Instant::now);
        self.bytes += payload.len();
        self.messages += 1;
        let transaction = match &outcome {
            Ok(f) => f
                .transaction_name
                .clone()
                .or(name)
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
                .push(letter(Scope::Message, -1, e.to_string(), payload.to_vec())),
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
