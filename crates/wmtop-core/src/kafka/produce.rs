//! Publishing: one Kafka message per transaction, keyed by its name, with acks=all and an
//! idempotent producer; every delivery report is counted and a single undelivered
//! message fails the run loudly.

use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
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
            (tx, result.map(|_| ()).map_err(|(e, _)| e.to_string()))
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
    };
    let mut first_error = None;
    while let Some((tx, result)) = pending.next().await {
        match result {
            Ok(()) => {
                report.messages_delivered += 1;
                report.bytes += tx.payload.len();
                report
                    .per_transaction
                    .push((tx.name.clone().unwrap_or_default(), 1));
            }
            Err(e) => {
                report.messages_failed += 1;
                first_error.get_or_insert_with(|| match kafka.fault() {
                    Some(f) => f.to_string(),
                    None => e,
                });
            }
        }
    }
    drop(pending);
    let _ = producer.flush(Timeout::After(Duration::from_secs(10)));
    report.publish_ms = started.elapsed().as_millis() as u64;
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
