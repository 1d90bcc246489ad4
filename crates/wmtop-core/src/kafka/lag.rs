//! Lag: each partition's committed offset, watermarks and lag, read with a client that
//! never joins the group (the sampler in [`super::sampler`] reads it periodically).

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::client::{Kafka, KafkaOpError, Reader};
use super::context::KafkaContext;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(2);

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
    let parts = partitions(kafka, client)?;
    read_of(kafka, client, &parts)
}

/// The topic's partitions, as the broker lists them. Blocking.
pub fn partitions<C: Consumer<KafkaContext>>(
    kafka: &Kafka,
    client: &C,
) -> Result<Vec<i32>, KafkaOpError> {
    Ok(layout(kafka, client)?.iter().map(|p| p.id).collect())
}

/// One partition's replicas as the cluster's metadata describes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Replicas {
    pub id: i32,
    /// The broker that leads it; None while it has none (its replicas are all down).
    pub leader: Option<i32>,
    pub replicas: usize,
    pub in_sync: usize,
}

impl Replicas {
    /// Fewer replicas in sync than assigned.
    pub fn under_replicated(&self) -> bool {
        self.in_sync < self.replicas
    }
}

/// The topic's partitions with their leaders and replicas, as the broker lists them.
/// Blocking.
pub fn layout<C: Consumer<KafkaContext>>(
    kafka: &Kafka,
    client: &C,
) -> Result<Vec<Replicas>, KafkaOpError> {
    let topic = &kafka.settings().topic;
    let md = client
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(kafka.op("read topic metadata"))?;
    let parts: Vec<Replicas> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions())
        .map(|p| Replicas {
            id: p.id(),
            leader: (p.leader() >= 0).then_some(p.leader()),
            replicas: p.replicas().len(),
            in_sync: p.isr().len(),
        })
        .collect();
    if parts.is_empty() {
        return Err(KafkaOpError::NoTopic {
            topic: topic.clone(),
            hint: " (yet)",
        });
    }
    Ok(parts)
}

/// [`read`] for partitions already listed. Blocking.
pub fn read_of(
    kafka: &Kafka,
    client: &Reader,
    parts: &[i32],
) -> Result<Vec<PartitionLag>, KafkaOpError> {
    let topic = &kafka.settings().topic;
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition(topic, *p);
    }
    let committed = client
        .committed_offsets(tpl, TIMEOUT)
        .map_err(kafka.op("read committed offsets"))?;
    let marks = watermarks(kafka, client, parts)?;
    let mut out = Vec::with_capacity(parts.len());
    for (&p, (low, high)) in parts.iter().zip(marks) {
        let committed_at = committed
            .find_partition(topic, p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
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

/// The high watermark this client last learned for `partition` from its own fetches
/// (every fetch response carries it): a look at the client's memory, with no request to
/// the broker. None until a fetch of the partition has answered.
pub fn fetched_high<C: Consumer<KafkaContext>>(
    client: &C,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client handle is alive for the borrow of `client`; the topic is a
    // NUL-terminated string that outlives the call; librdkafka only writes the two
    // integers it is given and takes the partition's own lock to read them.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            client.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// Each partition's low and high watermark, in the order asked: one request per end for
/// all partitions (the list-offsets request for the earliest and the latest offset,
/// which is what a watermark query sends for one partition at a time). Blocking.
pub fn watermarks<C: Consumer<KafkaContext>>(
    kafka: &Kafka,
    client: &C,
    parts: &[i32],
) -> Result<Vec<(i64, i64)>, KafkaOpError> {
    let topic = &kafka.settings().topic;
    let ends = |at: Offset| -> Result<Vec<i64>, KafkaOpError> {
        let mut tpl = TopicPartitionList::new();
        for &p in parts {
            tpl.add_partition_offset(topic, p, at)
                .map_err(kafka.op("read watermarks"))?;
        }
        let got = client
            .offsets_for_times(tpl, TIMEOUT)
            .map_err(kafka.op("read watermarks"))?;
        parts
            .iter()
            .map(|&p| {
                let e = got.find_partition(topic, p).ok_or_else(|| {
                    kafka.error(
                        "read watermarks",
                        KafkaError::OffsetFetch(RDKafkaErrorCode::UnknownPartition),
                    )
                })?;
                e.error().map_err(kafka.op("read watermarks"))?;
                match e.offset() {
                    Offset::Offset(o) => Ok(o),
                    _ => Err(kafka.error(
                        "read watermarks",
                        KafkaError::OffsetFetch(RDKafkaErrorCode::OffsetNotAvailable),
                    )),
                }
            })
            .collect()
    };
    let low = ends(Offset::Beginning)?;
    let high = ends(Offset::End)?;
    Ok(low.into_iter().zip(high).collect())
}
