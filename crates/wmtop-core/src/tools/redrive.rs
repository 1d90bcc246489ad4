//! Dead letters by hand: re-driving them, and skipping a message the broker will not
//! serve. Re-drive: after a fix (a new column, a corrected payload upstream, a new
//! wmtop), messages that were set aside are published to the topic again, so the
//! consumer takes them once more; the letters are then removed. A message still bad ends
//! aside again, with its new offset and reason. Whole messages are re-sent from their
//! saved payload; for a bad record the original message is read back from the topic
//! (its good records are stored already and are not written again). Skip: the message
//! is recorded as a dead letter ("not served by the broker") and the group is moved past
//! it, so its partition is no longer blocked.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde::Serialize;

use crate::clickhouse::{ChError, DeadLetter, Loader, Scope};
use crate::config::Settings;
use crate::kafka::{lag, reader, replay, Kafka, KafkaOpError};

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
    /// Letters with nothing to send (a message the broker never served): kept.
    pub kept: usize,
}

/// Why a re-drive failed.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    ClickHouse(#[from] ChError),
    #[error(transparent)]
    KafkaOp(#[from] KafkaOpError),
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("the dead-letter listing is not readable: {0}")]
    Listing(String),
    #[error("{0}")]
    Refused(String),
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
    reason: String,
}

/// The reason recorded for a message the broker does not serve.
pub const NOT_SERVED: &str = "not served by the broker";

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
pub async fn redrive(settings: &Settings, loader: &Loader) -> Result<RedriveReport, RedriveError> {
    let letters_table = loader.ch.dead_letters_table();
    let sql = format!(
        "SELECT scope, kafka_partition, toString(kafka_offset) AS kafka_offset, message_key, hex(any(payload)) AS payload, any(reason) AS reason \
         FROM {letters_table} \
         WHERE topic = {} GROUP BY scope, kafka_partition, kafka_offset, message_key, record_index \
         ORDER BY kafka_partition, kafka_offset, record_index",
        crate::clickhouse::queries::quote(&settings.topic)
    );
    let all: Vec<Letter> = loader.ch.json_rows(&sql).await?;
    let mut report = RedriveReport {
        letters: all.len(),
        ..RedriveReport::default()
    };
    let letters: Vec<Letter> = all.into_iter().filter(|l| l.reason != NOT_SERVED).collect();
    report.kept = report.letters - letters.len();
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
    let kafka = Kafka::new(settings);
    let k = kafka.clone();
    let originals = tokio::task::spawn_blocking(move || {
        k.identify(Duration::from_secs(10))?;
        read_back(&k, &wanted)
    })
    .await
    .map_err(|e| RedriveError::Kafka(e.to_string()))??;
    let producer = kafka.producer()?;
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
        loader.ch.execute(&format!(
            "ALTER TABLE {letters_table} DELETE WHERE topic = {} AND (kafka_partition, kafka_offset) IN ({})",
            crate::clickhouse::queries::quote(&settings.topic),
            list.join(", ")
        ))
        .await?;
        report.removed += chunk.len();
    }
    Ok(report)
}

/// Reads the given messages back from the topic, where they still are. Blocking.
fn read_back(
    kafka: &Kafka,
    wanted: &[(i32, i64)],
) -> Result<BTreeMap<(i32, i64), Vec<u8>>, RedriveError> {
    let mut found = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let client = kafka.reader()?;
    for (partition, offset) in wanted {
        let m = reader::read_one(kafka, &client, *partition, *offset, Duration::from_secs(5))
            .map_err(|e| RedriveError::Kafka(e.to_string()))?;
        if let Some(m) = m {
            found.insert(
                (*partition, *offset),
                m.payload().unwrap_or_default().to_vec(),
            );
        }
    }
    Ok(found)
}

/// What a skip did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub partition: i32,
    pub offset: i64,
    /// The group's committed offset on that partition now.
    pub committed: i64,
    pub reason: &'static str,
}

/// Records the message at `partition:offset` as a dead letter ("not served by the
/// broker") and moves the group past it. The group must stand at that offset (else it
/// would jump over messages it has not read) and have no live member.
pub async fn skip(
    settings: &Settings,
    loader: &Loader,
    partition: i32,
    offset: i64,
) -> Result<Skipped, RedriveError> {
    let kafka = Kafka::new(settings);
    let k = kafka.clone();
    let parts = tokio::task::spawn_blocking(move || {
        k.identify(Duration::from_secs(10))?;
        // Before anything is recorded: a live member would undo the skip.
        replay::no_live_members(&k, "the skip")?;
        let client = k.offsets()?;
        lag::read(&k, &client)
    })
    .await
    .map_err(|e| RedriveError::Kafka(e.to_string()))??;
    let Some(p) = parts.iter().find(|p| p.partition == partition) else {
        return Err(RedriveError::Refused(format!(
            "topic {} has no partition {partition}",
            settings.topic
        )));
    };
    if p.position() != offset || offset >= p.high {
        return Err(RedriveError::Refused(format!(
            "group {} stands at offset {} of partition {partition} (high watermark {}), not at {offset}: \
             skipping from there would jump over messages it has not read",
            settings.group,
            p.position(),
            p.high
        )));
    }
    let letter = DeadLetter {
        scope: Scope::Message,
        topic: settings.topic.clone(),
        kafka_partition: partition,
        kafka_offset: offset,
        message_key: String::new(),
        record_index: -1,
        reason: NOT_SERVED.into(),
        payload: Vec::new(),
    };
    loader.insert_dead_letters(&[letter]).await?;
    let k = kafka.clone();
    tokio::task::spawn_blocking(move || replay::skip(&k, partition, offset))
        .await
        .map_err(|e| RedriveError::Kafka(e.to_string()))??;
    tracing::info!(
        "partition {partition}: offset {offset} recorded as a dead letter ({NOT_SERVED}); group {} moved to {}",
        settings.group,
        offset + 1
    );
    Ok(Skipped {
        partition,
        offset,
        committed: offset + 1,
        reason: NOT_SERVED,
    })
}
