//! Lag: each partition's committed offset, watermarks and lag, read with a client that
//! never joins the group (the sampler in [`super::sampler`] reads it periodically).

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::client::{Kafka, KafkaOpError, Reader};

/// One partition's position.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PartitionLag {
    pub partition: i32,
    /// The group's committed offset (the next message it will read), if any.
    pub committed: Option<i64>,
    pub low: i64,
    pub high: i64,
    /// Messages not yet committed; unknown when the broker did not answer.
    pub lag: Option<i64>,
}

impl PartitionLag {
    /// Where the group will read next on this partition.
    pub fn position(&self) -> i64 {
        self.committed.unwrap_or(self.low).max(self.low)
    }
}

/// Each partition's committed offset, watermarks and lag. Blocking.
pub fn read(kafka: &Kafka, client: &Reader) -> Result<Vec<PartitionLag>, KafkaOpError> {
    let topic = kafka.settings().topic.clone();
    let timeout = Duration::from_secs(2);
    let md = client
        .fetch_metadata(Some(&topic), timeout)
        .map_err(kafka.op("read topic metadata"))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if parts.is_empty() {
        return Err(KafkaOpError::NoTopic {
            topic,
            hint: " (yet)",
        });
    }
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition(&topic, *p);
    }
    let committed = client
        .committed_offsets(tpl, timeout)
        .map_err(kafka.op("read committed offsets"))?;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let committed_at = committed
            .find_partition(&topic, p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        let (low, high) = client
            .fetch_watermarks(&topic, p, timeout)
            .map_err(kafka.op("read watermarks"))?;
        let from = committed_at.unwrap_or(low).max(low);
        out.push(PartitionLag {
            partition: p,
            committed: committed_at,
            low,
            high,
            lag: (high >= from).then_some(high - from),
        });
    }
    Ok(out)
}
