//! The one partition reader: reads given offset ranges of the topic's partitions with a
//! client that never joins the group, hands each message over, and gives up with the
//! partition and offset it was waiting for when nothing more comes for a while. Check,
//! re-drive, the lag sampler, the transaction detail view and the benchmarks all read
//! through it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use super::client::{Kafka, KafkaOpError, Reader};
use super::lag;

/// Reading stopped short: nothing more came from a partition for `waited`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "topic {topic} partition {partition}: read to offset {reached} of {high} (high watermark) and nothing more came for {}s{}{}",
    waited.as_secs(),
    if *others > 0 { format!(" ({others} other partitions unfinished too)") } else { String::new() },
    last_error.as_ref().map_or(String::new(), |e| format!("; last error: {e}"))
)]
pub struct Stalled {
    pub topic: String,
    pub partition: i32,
    /// The next offset it waited for.
    pub reached: i64,
    pub high: i64,
    pub others: usize,
    pub waited: Duration,
    pub last_error: Option<String>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Kafka(#[from] KafkaOpError),
    #[error(transparent)]
    Stalled(#[from] Stalled),
}

/// Reads `[from, to)` of each partition given, handing each message to `each`. Gives up
/// when nothing arrives for `stall`. Blocking.
pub fn read_ranges(
    kafka: &Kafka,
    client: &Reader,
    ranges: &[(i32, i64, i64)],
    stall: Duration,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<(), ReadError> {
    let topic = kafka.settings().topic.clone();
    // Per partition still to read: (next offset, end).
    let mut pending: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for &(p, from, to) in ranges.iter().filter(|(_, from, to)| to > from) {
        tpl.add_partition_offset(&topic, p, Offset::Offset(from))
            .map_err(kafka.op("build partition list"))?;
        pending.insert(p, (from, to));
    }
    if pending.is_empty() {
        return Ok(());
    }
    client.assign(&tpl).map_err(kafka.op("assign partitions"))?;
    let mut progress_at = Instant::now();
    let mut last_error = None;
    while let Some((&partition, &(reached, high))) = pending.iter().next() {
        if progress_at.elapsed() > stall {
            let _ = client.unassign();
            return Err(Stalled {
                topic,
                partition,
                reached,
                high,
                others: pending.len() - 1,
                waited: stall,
                last_error,
            }
            .into());
        }
        let msg = match client.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(e)) => {
                if let Some(f) = kafka.fault() {
                    let _ = client.unassign();
                    return Err(
                        KafkaOpError::Fault(f, kafka.settings().kafka_brokers.clone()).into(),
                    );
                }
                last_error = Some(e.to_string());
                continue;
            }
            Some(Ok(msg)) => msg,
        };
        let Some(at) = pending.get_mut(&msg.partition()) else {
            continue;
        };
        progress_at = Instant::now();
        if msg.offset() < at.1 {
            at.0 = msg.offset() + 1;
            each(&msg);
        }
        if msg.offset() + 1 >= at.1 {
            pending.remove(&msg.partition());
        }
    }
    let _ = client.unassign();
    Ok(())
}

/// Reads every partition from its low to its high watermark. Blocking.
pub fn read_all(
    kafka: &Kafka,
    stall: Duration,
    each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<(), ReadError> {
    let offsets = kafka.offsets()?;
    let parts = match lag::read(kafka, &offsets) {
        Ok(parts) => parts,
        Err(KafkaOpError::NoTopic { topic, .. }) => {
            tracing::warn!("topic {topic} has no partitions: counting it as empty");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let ranges: Vec<(i32, i64, i64)> = parts.iter().map(|p| (p.partition, p.low, p.high)).collect();
    let client = kafka.reader()?;
    read_ranges(kafka, &client, &ranges, stall, each)
}

/// The message at `offset`, if it can be read within `wait`. Blocking.
pub fn read_one(
    kafka: &Kafka,
    client: &Reader,
    partition: i32,
    offset: i64,
    wait: Duration,
) -> Result<Option<OwnedMessage>, ReadError> {
    let mut found = None;
    match read_ranges(
        kafka,
        client,
        &[(partition, offset, offset + 1)],
        wait,
        |m| {
            found = Some(m.detach());
        },
    ) {
        Ok(()) | Err(ReadError::Stalled(_)) => Ok(found),
        Err(e) => Err(e),
    }
}

/// The timestamp (epoch ms) of the message at `offset`; None when it cannot be read in
/// a moment. Blocking.
pub fn message_time(kafka: &Kafka, client: &Reader, partition: i32, offset: i64) -> Option<i64> {
    read_one(kafka, client, partition, offset, Duration::from_millis(500))
        .ok()
        .flatten()
        .and_then(|m| m.timestamp().to_millis())
}
