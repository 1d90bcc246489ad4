//! Re-driving dead letters: after a fix (a new column, a corrected payload upstream, a
//! new wmtop), messages that were set aside are published to the topic again, so the
//! consumer takes them once more; the letters are then removed. A message still bad ends
//! aside again, with its new offset and reason. Whole messages are re-sent from their
//! saved payload; for a bad record the original message is read back from the topic
//! (re-loading its good records is harmless: the table's key replaces them).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::Settings;
use crate::kafka;
use crate::sink::{Sink, SinkError};

/// What a re-drive did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct RedriveReport {
    /// Dead letters found.
    pub letters: usize,
    /// Messages published again.
    pub republished: usize,
    /// Of those, read back from the topic (for bad records).
    pub from_topic: usize,
    /// Records whose message is no longer on the topic, re-sent alone in a transaction
    /// object named by the message key.
    pub rebuilt: usize,
    /// Letters removed after their message was delivered.
    pub removed: usize,
}

/// Why a re-drive failed.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("the dead-letter listing is not readable: {0}")]
    Listing(String),
}

/// A message to send again: its key, its saved payload (whole-message letters), and
/// the raw records set aside from it (record letters).
type Pending = (String, Option<Vec<u8>>, Vec<String>);

#[derive(serde::Deserialize)]
struct Letter {
    scope: String,
    kafka_partition: i32,
    /// Text: 64-bit integers are quoted by some servers and not by others.
    kafka_offset: String,
    message_key: String,
    /// Hex, so that bytes that are not UTF-8 survive the JSON listing.
    payload: String,
}

fn unhex(hex: &str) -> Result<Vec<u8>, RedriveError> {
    let bytes = hex.as_bytes();
    if bytes.len() % 2 != 0 {
        return Err(RedriveError::Listing("odd-length hex payload".into()));
    }
    bytes
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| RedriveError::Listing("payload is not hex".into()))
        })
        .collect()
}

/// Publishes the dead letters of this topic again and removes them.
pub async fn redrive(settings: &Settings, sink: &Sink) -> Result<RedriveReport, RedriveError> {
    let letters_table = format!("{}_dead_letters", sink.qualified());
    let sql = format!(
        "SELECT scope, kafka_partition, toString(kafka_offset) AS kafka_offset, message_key, hex(payload) AS payload \
         FROM {letters_table} FINAL \
         WHERE topic = {} ORDER BY kafka_partition, kafka_offset, record_index",
        crate::queries::quote(&settings.topic)
    );
    let text = sink.query_text(&sql, "JSONEachRow", true).await?;
    let mut letters = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        letters.push(
            serde_json::from_str::<Letter>(line)
                .map_err(|e| RedriveError::Listing(e.to_string()))?,
        );
    }
    let mut report = RedriveReport {
        letters: letters.len(),
        ..RedriveReport::default()
    };
    // One message per (partition, offset): a message with several bad records goes once.
    let mut messages: BTreeMap<(i32, i64), Pending> = BTreeMap::new();
    for l in letters {
        let offset: i64 = l
            .kafka_offset
            .parse()
            .map_err(|_| RedriveError::Listing(format!("offset {:?}", l.kafka_offset)))?;
        let entry = messages
            .entry((l.kafka_partition, offset))
            .or_insert_with(|| (l.message_key.clone(), None, Vec::new()));
        let payload = unhex(&l.payload)?;
        if l.scope == "message" {
            entry.1 = Some(payload);
        } else {
            entry.2.push(String::from_utf8_lossy(&payload).into_owned());
        }
    }
    let wanted: Vec<(i32, i64)> = messages
        .iter()
        .filter(|(_, v)| v.1.is_none())
        .map(|(k, _)| *k)
        .collect();
    let s = settings.clone();
    let originals = tokio::task::spawn_blocking(move || read_back(&s, &wanted))
        .await
        .map_err(|e| RedriveError::Kafka(e.to_string()))??;
    let producer: FutureProducer = kafka::producer_config(settings)
        .create()
        .map_err(|e| RedriveError::Kafka(e.to_string()))?;
    let mut delivered = Vec::new();
    for ((partition, offset), (key, payload, records)) in messages {
        let body = match (payload, originals.get(&(partition, offset))) {
            (Some(p), _) => p,
            (None, Some(original)) => {
                report.from_topic += 1;
                original.clone()
            }
            (None, None) => {
                report.rebuilt += 1;
                let series: Vec<serde_json::Value> = records
                    .iter()
                    .filter_map(|r| serde_json::from_str(r).ok())
                    .collect();
                serde_json::to_vec(
                    &serde_json::json!({"transactionName": key, "transactionSeries": series}),
                )
                .map_err(|e| RedriveError::Kafka(e.to_string()))?
            }
        };
        let mut record = FutureRecord::to(&settings.topic).payload(&body);
        if !key.is_empty() {
            record = record.key(&key);
        }
        producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(e, _)| {
                RedriveError::Kafka(format!("re-publishing {partition}:{offset}: {e}"))
            })?;
        report.republished += 1;
        delivered.push((partition, offset));
    }
    // Remove what was delivered (ALTER … DELETE: old and new servers alike).
    for chunk in delivered.chunks(500) {
        let list: Vec<String> = chunk.iter().map(|(p, o)| format!("({p}, {o})")).collect();
        sink.execute(&format!(
            "ALTER TABLE {letters_table} DELETE WHERE topic = {} AND (kafka_partition, kafka_offset) IN ({})",
            crate::queries::quote(&settings.topic),
            list.join(", ")
        ))
        .await?;
        report.removed += chunk.len();
    }
    Ok(report)
}

/// Reads the given messages back from the topic, where they still are. Blocking.
fn read_back(
    settings: &Settings,
    wanted: &[(i32, i64)],
) -> Result<BTreeMap<(i32, i64), Vec<u8>>, RedriveError> {
    let mut found = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let consumer =
        kafka::peek_consumer(settings).map_err(|e| RedriveError::Kafka(e.to_string()))?;
    for (partition, offset) in wanted {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&settings.topic, *partition, Offset::Offset(*offset))
            .map_err(|e| RedriveError::Kafka(e.to_string()))?;
        consumer
            .assign(&tpl)
            .map_err(|e| RedriveError::Kafka(e.to_string()))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) if m.partition() == *partition && m.offset() == *offset => {
                    found.insert(
                        (*partition, *offset),
                        m.payload().unwrap_or_default().to_vec(),
                    );
                    break;
                }
                Some(Ok(m)) if m.partition() == *partition && m.offset() > *offset => break,
                _ => {}
            }
        }
    }
    Ok(found)
}
