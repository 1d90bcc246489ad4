//! The one lag sampler: reads each partition's lag periodically on a thread of its own
//! (with the age of the oldest uncommitted message, peeked with the partition reader),
//! who holds it (the group as the broker describes it) and its replicas (the cluster's
//! metadata), and publishes each sample on a watch channel: the monitor's pane and
//! /metrics read the same samples.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::client::{Kafka, KafkaOpError, Reader};
use super::group::{self, Group};
use super::lag::{self, PartitionLag, Replicas};
use super::reader;

/// Samples in a row without any change after which the sampler takes one every two
/// periods (each sample carries its time, so the figures say how old they are).
const STEADY_AFTER: u32 = 5;

/// How long the partition list (leaders and replicas) is used before the broker is
/// asked again.
const RELIST: Duration = Duration::from_secs(5);

/// How long describing the group may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What must stay the same for a sample to count as steady.
type Steady = (PartitionLag, Holder, Option<Replicas>);

/// Who holds a partition, as the broker describes the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A consumer of this process (its client id is this run's).
    This,
    /// Another member of the group: another process, here or on another host.
    Member { client_id: String, host: String },
    /// No member holds it.
    Nobody,
    /// The group is rebalancing: the holders are being decided.
    Rebalancing,
    /// The broker did not describe the group.
    Unknown,
}

impl Holder {
    /// Who holds `partition` in `group` (None: the broker did not describe it).
    pub fn of(group: Option<&Group>, partition: i32, me: &str) -> Holder {
        let Some(g) = group else {
            return Holder::Unknown;
        };
        if g.rebalancing() {
            return Holder::Rebalancing;
        }
        match g.holder(partition) {
            Some(m) if m.client_id == me => Holder::This,
            Some(m) => Holder::Member {
                client_id: m.client_id.clone(),
                host: m.host.clone(),
            },
            None => Holder::Nobody,
        }
    }
}

/// One partition's lag with its age, its holder and its replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct LagRow {
    pub lag: PartitionLag,
    /// Age of the oldest message not yet committed; None when unknown or no lag.
    pub oldest_age: Option<Duration>,
    pub holder: Holder,
    /// Leader and replicas in sync, as of the last partition list; None when not known.
    pub replicas: Option<Replicas>,
}

/// One sample: when it was taken, the rows or why there are none, and how many members
/// the group has (None when the broker did not describe it).
#[derive(Clone, Debug)]
pub struct LagSample {
    pub at: Instant,
    pub rows: Result<Vec<LagRow>, String>,
    pub members: Option<usize>,
}

/// The time of the oldest uncommitted message of a partition with lag (epoch ms), from
/// `times` or peeked with `peek` (and kept in `times`); None without lag or a reader.
fn oldest_time(
    kafka: &Kafka,
    peek: Option<&Reader>,
    times: &mut HashMap<(i32, i64), i64>,
    l: &PartitionLag,
) -> Option<i64> {
    let from = l.position();
    match (peek, l.lag) {
        (Some(peek), Some(n)) if n > 0 => {
            let cached = times.get(&(l.partition, from)).copied();
            cached.or_else(|| {
                let t = reader::message_time(kafka, peek, l.partition, from)?;
                times.insert((l.partition, from), t);
                Some(t)
            })
        }
        _ => None,
    }
}

/// Samples lag every `period` (every two once nothing has moved for five samples) until
/// `stop`, publishing each sample. Oldest ages are
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
    let runtime = tokio::runtime::Handle::current();
    let mut stop = stop;
    let task = tokio::task::spawn_blocking(move || {
        let mut offsets: Option<Reader> = None;
        // The reader that peeks at the oldest uncommitted message: made when some
        // partition has lag, dropped when none has, so an idle monitor keeps no
        // client (and its threads) it does not use.
        let mut peek: Option<Reader> = None;
        let mut times: HashMap<(i32, i64), i64> = HashMap::new();
        let mut parts: Option<(Vec<Replicas>, Instant)> = None;
        let me = kafka.client_id();
        let mut last: Option<Vec<Steady>> = None;
        let mut same = 0u32;
        while !*stop.borrow() {
            if kafka.fault().is_some() {
                // Retrying cannot help; the run that owns the sampler reports why.
                break;
            }
            let mut members = None;
            let sampled = (|| {
                let c: &Reader = match &mut offsets {
                    Some(c) => c,
                    empty => empty.insert(kafka.offsets()?),
                };
                // The partition list is asked for again every few seconds (and after
                // any failed sample), not every second.
                let listed = match parts.take() {
                    Some((list, at)) if at.elapsed() < RELIST => (list, at),
                    _ => (lag::layout(&kafka, c)?, Instant::now()),
                };
                let ids: Vec<i32> = listed.0.iter().map(|r| r.id).collect();
                let lags = lag::read_of(&kafka, c, &ids)?;
                let group = group::describe(&kafka, c, DESCRIBE_TIMEOUT)
                    .map_err(|e| tracing::debug!("describing the group: {e}"))
                    .ok();
                members = group.as_ref().map(|g| g.members.len());
                let replicas = listed.0.clone();
                parts = Some(listed);
                let lagging = lags.iter().any(|l| l.lag.is_some_and(|n| n > 0));
                if !(ages && lagging) {
                    peek = None;
                } else if peek.is_none() {
                    peek = Some(kafka.reader()?);
                }
                let now_ms = jiff::Timestamp::now().as_millisecond();
                Ok(lags
                    .into_iter()
                    .map(|l| {
                        let oldest = oldest_time(&kafka, peek.as_ref(), &mut times, &l);
                        LagRow {
                            oldest_age: oldest.map(|t| {
                                Duration::from_millis(u64::try_from(now_ms - t).unwrap_or(0))
                            }),
                            holder: Holder::of(group.as_ref(), l.partition, &me),
                            replicas: replicas.iter().find(|r| r.id == l.partition).copied(),
                            lag: l,
                        }
                    })
                    .collect())
            })();
            if sampled.is_err() {
                offsets = None;
                peek = None;
                parts = None;
            }
            if times.len() > 10_000 {
                times.clear();
            }
            // Moved: a figure, a holder or a replica set changed (not just an age).
            let now: Option<Vec<Steady>> = sampled.as_ref().ok().map(|rows: &Vec<LagRow>| {
                rows.iter()
                    .map(|r| (r.lag.clone(), r.holder.clone(), r.replicas))
                    .collect()
            });
            same = if now.is_some() && now == last {
                same.saturating_add(1)
            } else {
                0
            };
            last = now;
            let _ = tx.send(Some(LagSample {
                at: Instant::now(),
                rows: sampled.map_err(|e: KafkaOpError| e.to_string()),
                members,
            }));
            // Wait for the next sample, or for a stop (seen at once); with nobody left
            // to say stop, stop. Nothing has moved for a while: sample half as often.
            let wait = if same >= STEADY_AFTER {
                period * 2
            } else {
                period
            };
            if let Ok(Err(_)) = runtime.block_on(tokio::time::timeout(wait, stop.changed())) {
                break;
            }
        }
    });
    (rx, task)
}
