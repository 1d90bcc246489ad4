//! The one lag sampler: reads each partition's lag periodically on a thread of its own
//! (with the age of the oldest uncommitted message, peeked with the partition reader) and
//! publishes each sample on a watch channel: the monitor's pane and /metrics read the
//! same samples.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::client::{Kafka, KafkaOpError, Reader};
use super::lag::{read, PartitionLag};
use super::reader;

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
