//! Publishing: one Kafka message per transaction, keyed by its name, with acks=all and an
//! idempotent producer; every delivery report is counted and a single undelivered
//! message fails the run loudly. A transaction larger than the topic takes is named with
//! its size and the topic's `max.message.bytes`; the others are still delivered.

use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use serde::Serialize;

use crate::kafka::{topic, Kafka, KafkaOpError};
use crate::source::api::Answer;

/// What a publish did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub transactions: usize,
    pub records: usize,
    pub messages_delivered: usize,
    pub messages_failed: usize,
    pub bytes: usize,
    pub topic_created: bool,
    /// Records the API served that flatten sets aside (a whole unusable message counts
    /// all of its records).
    pub set_aside: usize,
    pub publish_ms: u64,
    /// Messages delivered per transaction name.
    #[serde(skip)]
    pub per_transaction: Vec<(String, usize)>,
    /// The offset of the last message delivered, per partition.
    #[serde(skip)]
    pub last_offsets: std::collections::BTreeMap<i32, i64>,
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Kafka(#[from] KafkaOpError),
    #[error("{failed} of {total} messages were not delivered to {topic}; first error: {first}")]
    Undelivered {
        failed: usize,
        total: usize,
        topic: String,
        first: String,
        report: Box<PublishReport>,
    },
}

/// Publishes every transaction of `answer` to the configured topic (made first, where
/// it is missing and may be created).
pub async fn publish(kafka: &Kafka, answer: &Answer) -> Result<PublishReport, PublishError> {
    let started = Instant::now();
    let settings = kafka.settings();
    let topic_created = matches!(kafka.ready().await?, topic::TopicState::Created { .. });
    let producer: FutureProducer<crate::kafka::KafkaContext> = kafka.producer()?;
    let mut pending = FuturesUnordered::new();
    for tx in &answer.transactions {
        let producer = &producer;
        let topic = settings.topic.as_str();
        pending.push(async move {
            let mut record = FutureRecord::to(topic).payload(&tx.payload[..]);
            if let Some(name) = &tx.name {
                record = record.key(name.as_str());
            }
            let result = producer
                .send(record, Timeout::After(Duration::from_secs(60)))
                .await;
            (tx, result.map_err(|(e, _)| e))
        });
    }
    let mut report = PublishReport {
        transactions: answer.transactions.len(),
        records: answer.records(),
        messages_delivered: 0,
        messages_failed: 0,
        bytes: 0,
        topic_created,
        set_aside: answer
            .accounting()
            .values()
            .map(|a| a.set_aside as usize)
            .sum(),
        publish_ms: 0,
        per_transaction: Vec::with_capacity(answer.transactions.len()),
        last_offsets: Default::default(),
    };
    let mut first_error = None;
    let mut too_large: Vec<(String, usize)> = Vec::new();
    while let Some((tx, result)) = pending.next().await {
        match result {
            Ok(delivery) => {
                let (partition, offset) = (delivery.partition, delivery.offset);
                let last = report.last_offsets.entry(partition).or_insert(offset);
                *last = (*last).max(offset);
                report.messages_delivered += 1;
                report.bytes += tx.payload.len();
                report
                    .per_transaction
                    .push((tx.name.clone().unwrap_or_default(), 1));
            }
            Err(e) => {
                report.messages_failed += 1;
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
                    too_large.push((tx.name.clone().unwrap_or_default(), tx.payload.len()));
                }
                first_error.get_or_insert_with(|| match kafka.fault() {
                    Some(f) => f.to_string(),
                    None => e.to_string(),
                });
            }
        }
    }
    drop(pending);
    let _ = producer.flush(Timeout::After(Duration::from_secs(10)));
    report.publish_ms = started.elapsed().as_millis() as u64;
    if !too_large.is_empty() {
        first_error = Some(too_large_words(
            &too_large,
            &max_message_bytes(kafka).await,
            settings,
        ));
    }
    if let Some(first) = first_error {
        return Err(PublishError::Undelivered {
            failed: report.messages_failed,
            total: report.transactions,
            topic: settings.topic.clone(),
            first,
            report: Box::new(report),
        });
    }
    Ok(report)
}

/// The topic's `max.message.bytes` as the broker describes it, or why it cannot be told.
async fn max_message_bytes(kafka: &Kafka) -> Result<u64, String> {
    let topic = kafka.settings().topic.as_str();
    let admin = kafka.admin().map_err(|e| e.to_string())?;
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
        .await
        .map_err(|e| e.to_string())?;
    let resource = described
        .into_iter()
        .next()
        .ok_or("no answer")?
        .map_err(|code| KafkaError::AdminOp(code).to_string())?;
    resource
        .get("max.message.bytes")
        .and_then(|e| e.value.as_deref()?.parse().ok())
        .ok_or_else(|| "not in the topic's configuration".to_string())
}

/// The transactions too large for the topic, by name and size, with the topic's limit.
fn too_large_words(
    too_large: &[(String, usize)],
    limit: &Result<u64, String>,
    settings: &crate::config::Settings,
) -> String {
    let names: Vec<String> = too_large
        .iter()
        .take(5)
        .map(|(name, size)| format!("{name} ({size} bytes)"))
        .collect();
    let more = match too_large.len() {
        n if n > 5 => format!(" and {} more", n - 5),
        _ => String::new(),
    };
    let limit = match limit {
        Ok(n) => format!("its max.message.bytes is {n}"),
        Err(why) => format!("its max.message.bytes could not be read: {why}"),
    };
    format!(
        "{} larger than topic {} takes ({limit}; wmtop sends up to {} bytes): {}{more}. \
         Raise the topic's max.message.bytes; the other transactions were delivered",
        if too_large.len() == 1 {
            "a transaction is"
        } else {
            "transactions are"
        },
        settings.topic,
        super::MAX_MESSAGE_BYTES,
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_too_large_is_named_with_its_size_and_the_topics_limit() {
        let mut s = crate::config::Settings::defaults();
        s.topic = "series".into();
        let one = too_large_words(&[("GET /big".into(), 7_340_032)], &Ok(1_048_576), &s);
        assert_eq!(
            one,
            "a transaction is larger than topic series takes (its max.message.bytes is 1048576; \
             wmtop sends up to 10485760 bytes): GET /big (7340032 bytes). Raise the topic's \
             max.message.bytes; the other transactions were delivered"
        );
        let many: Vec<(String, usize)> = (0..7).map(|i| (format!("t{i}"), 2_000_000)).collect();
        let words = too_large_words(&many, &Err("TOPIC_AUTHORIZATION_FAILED".into()), &s);
        assert!(words.starts_with("transactions are larger"), "{words}");
        assert!(
            words.contains("could not be read: TOPIC_AUTHORIZATION_FAILED"),
            "{words}"
        );
        assert!(words.contains("t4 (2000000 bytes) and 2 more"), "{words}");
    }
}
