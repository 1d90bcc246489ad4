//! Lag: each partition's committed offset, watermarks and lag, read with a client that
//! never joins the group, and the one sampler that reads it periodically on a thread of
//! its own and publishes each sample (with the age of the oldest uncommitted message)
//! on a watch channel: the monitor's pane, /metrics and the consumer's idle verdict all
//! read the same samples.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::{reader, Kafka, KafkaOpError, Reader};

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
    let timeout = Duration::from_secs(5);
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

/// One partition's lag with its age: how old the oldest uncommitted message is.
#[derive(Clone, Debug, PartialEq)]
pub struct LagRow {
    pub lag: PartitionLag,
    /// Age of the oldest message not yet committed; None when unknown or no lag.
    pub oldest_age: Option<Duration>,
}

/// One sample: when it was taken, and the rows or why there are none.
#[derive(Clone, Debug)]
pub struct LagSample {
    pub at: Instant,
    pub rows: Result<Vec<LagRow>, String>,
}

/// Samples lag every `period` until `stop`, publishing each sample. Oldest ages are
/// read (one message peeked per partition with lag, cached per offset) when `ages`.
pub fn spawn_sampler(
    kafka: Kafka,
    period: Duration,
    ages: bool,
    stop: watch::Receiver<bool>,
) -> (
    watch::Receiver<Option<LagSample>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = watch::channel(None);
    let task = tokio::task::spawn_blocking(move || {
        let mut clients: Option<(Reader, Option<Reader>)> = None;
        let mut times: HashMap<(i32, i64), i64> = HashMap::new();
        while !*stop.borrow() {
            if kafka.fault().is_some() {
                // Retrying cannot help; the run that owns the sampler reports why.
                break;
            }
            let sampled = (|| {
                if clients.is_none() {
                    let peek = if ages { Some(kafka.reader()?) } else { None };
                    clients = Some((kafka.offsets()?, peek));
                }
                let Some((c, peek)) = clients.as_ref() else {
                    return Err(kafka.error("sample lag", rdkafka::error::KafkaError::Canceled));
                };
                let lags = read(&kafka, c)?;
                let now_ms = jiff::Timestamp::now().as_millisecond();
                Ok(lags
                    .into_iter()
                    .map(|l| {
                        let from = l.position();
                        let oldest = match (peek, l.lag) {
                            (Some(peek), Some(n)) if n > 0 => {
                                let cached = times.get(&(l.partition, from)).copied();
                                cached.or_else(|| {
                                    let t = reader::message_time(&kafka, peek, l.partition, from)?;
                                    times.insert((l.partition, from), t);
                                    Some(t)
                                })
                            }
                            _ => None,
                        };
                        LagRow {
                            oldest_age: oldest.map(|t| {
                                Duration::from_millis(u64::try_from(now_ms - t).unwrap_or(0))
                            }),
                            lag: l,
                        }
                    })
                    .collect())
            })();
            if sampled.is_err() {
                clients = None;
            }
            if times.len() > 10_000 {
                times.clear();
            }
            let _ = tx.send(Some(LagSample {
                at: Instant::now(),
                rows: sampled.map_err(|e: KafkaOpError| e.to_string()),
            }));
            // Sleep in short steps so a stop is seen quickly.
            let until = Instant::now() + period;
            while Instant::now() < until && !*stop.borrow() {
                std::thread::sleep(Duration::from_millis(100).min(period));
            }
        }
    });
    (rx, task)
}

/// A sample shared between tasks.
pub type Samples = Arc<watch::Receiver<Option<LagSample>>>;
