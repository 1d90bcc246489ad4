//! How a run ends, and what it waited for. Once a second the consumer's own positions
//! are compared with the partitions' high watermarks (on a blocking thread, read by a
//! client of their own, so that a connection the group consumer's fetches break does not
//! hide the broker's answers): every partition read to its end means caught up; a
//! partition whose position has not moved for `max_wait` while the broker answers means a
//! message it will not serve (named by partition and offset); a broker that does not
//! answer for `max_wait` ends the wait. The run's summary carries the verdict and, when it
//! gave up, what it waited for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::kafka::{lag, GroupConsumer, Kafka, Reader};
use crate::load::events::Stuck;

/// How a run ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything read, landed, committed and settled.
    #[default]
    Done,
    /// Stopped by a signal or the user: flushed and committed first.
    Interrupted,
    /// A server did not answer, or a message was not served, within `max_wait`.
    GaveUp,
    /// An error retrying cannot fix (a refused login, a bad certificate, a missing
    /// grant or table).
    Failed,
}

/// What a run that gave up or failed was waiting for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WaitedFor {
    /// `clickhouse`, `kafka`, `message` or `assignment`.
    pub what: &'static str,
    /// The server (URL with credentials masked, or the brokers).
    pub server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub waited_s: u64,
    pub reason: String,
}

impl WaitedFor {
    /// A wait for a server, or for an assignment: not about one message.
    pub fn server(what: &'static str, server: &str, waited: Duration, reason: String) -> WaitedFor {
        WaitedFor {
            what,
            server: server.to_string(),
            partition: None,
            offset: None,
            high: None,
            size: None,
            waited_s: waited.as_secs(),
            reason,
        }
    }
}

/// One look at where the consumer stands.
#[derive(Debug, Default)]
pub struct Look {
    /// Every partition held is read to its high watermark.
    pub caught_up: bool,
    /// Partitions whose next message has not come for `max_wait`.
    pub stuck: Vec<Stuck>,
    /// The broker has not answered for this long.
    pub broker_silent: Option<(Duration, String)>,
    /// Partitions not read to the end: (partition, position, high).
    pub behind: Vec<(i32, i64, i64)>,
    /// Every partition of the topic, as the broker lists it.
    pub partitions: Vec<i32>,
}

/// Each held partition (partition, position, high watermark), and all the topic's.
type Positions = Result<(Vec<(i32, i64, i64)>, Vec<i32>), String>;

/// Watches positions against watermarks.
pub struct Progress {
    pending: Option<tokio::task::JoinHandle<Positions>>,
    /// Reads watermarks and committed offsets (made at the first look).
    reader: Option<Arc<Reader>>,
    last_look: Instant,
    /// Per partition: the position seen, and since when.
    still: BTreeMap<i32, (i64, Instant)>,
    silent_since: Option<Instant>,
    max_wait: Duration,
}

impl Progress {
    pub fn new(max_wait: Duration) -> Progress {
        Progress {
            pending: None,
            reader: None,
            last_look: Instant::now() - Duration::from_secs(60),
            still: BTreeMap::new(),
            silent_since: None,
            max_wait,
        }
    }

    /// The consumer rests: no look is due until it wakes, so the client that reads the
    /// watermarks is let go (an idle client still costs its threads' wake-ups).
    pub fn rest(&mut self) {
        self.reader = None;
    }

    /// Forgets how long positions stood still (the consumer was busy landing, or
    /// paused, so standing still says nothing about the broker).
    pub fn reset_clocks(&mut self) {
        let now = Instant::now();
        for (_, since) in self.still.values_mut() {
            *since = now;
        }
        self.silent_since = None;
    }

    /// Starts a look when due; returns the last finished one, once.
    pub fn poll(&mut self, consumer: &Arc<GroupConsumer>, kafka: &Kafka) -> Option<Look> {
        let finished = self.pending.take_if(|t| t.is_finished()).map(|task| {
            let got = futures_util::FutureExt::now_or_never(task)
                .map(|r| r.unwrap_or_else(|e| Err(e.to_string())))
                .unwrap_or_else(|| Err("the look did not finish".into()));
            self.judge(got)
        });
        if self.pending.is_none() && self.last_look.elapsed() >= Duration::from_secs(1) {
            self.last_look = Instant::now();
            let reader = match &self.reader {
                Some(r) => Arc::clone(r),
                None => match kafka.offsets() {
                    Ok(r) => Arc::clone(self.reader.insert(Arc::new(r))),
                    Err(e) => return finished.or_else(|| Some(self.judge(Err(e.to_string())))),
                },
            };
            let c = Arc::clone(consumer);
            let k = kafka.clone();
            self.pending = Some(tokio::task::spawn_blocking(move || {
                positions(&k, &c, &reader)
            }));
        }
        finished
    }

    fn judge(&mut self, got: Positions) -> Look {
        let now = Instant::now();
        let mut look = Look::default();
        match got {
            Err(e) => {
                let since = *self.silent_since.get_or_insert(now);
                look.broker_silent = Some((now - since, e));
            }
            Ok((parts, all)) => {
                look.partitions = all;
                self.silent_since = None;
                self.still
                    .retain(|p, _| parts.iter().any(|(q, _, _)| q == p));
                look.caught_up = true;
                for (p, at, high) in parts {
                    if at >= high {
                        self.still.remove(&p);
                        continue;
                    }
                    look.caught_up = false;
                    look.behind.push((p, at, high));
                    let entry = self.still.entry(p).or_insert((at, now));
                    if entry.0 != at {
                        *entry = (at, now);
                    } else if now - entry.1 >= self.max_wait {
                        look.stuck.push(Stuck {
                            partition: p,
                            offset: at,
                            high,
                            size: None,
                            waited_s: (now - entry.1).as_secs(),
                        });
                    }
                }
            }
        }
        look
    }
}

/// Each held partition: (partition, position, high watermark), and every partition of
/// the topic; positions are the consumer's own, the rest is read by `reader`. Blocking.
fn positions(kafka: &Kafka, consumer: &GroupConsumer, reader: &Reader) -> Positions {
    let topic = kafka.settings().topic.as_str();
    let held = consumer.position().map_err(|e| e.to_string())?;
    let all = lag::partitions(kafka, reader).map_err(|e| e.to_string())?;
    let held: Vec<(i32, Offset)> = held
        .elements()
        .iter()
        .filter(|e| e.topic() == topic)
        .map(|e| (e.partition(), e.offset()))
        .collect();
    let ids: Vec<i32> = held.iter().map(|(p, _)| *p).collect();
    let marks = lag::watermarks(kafka, reader, &ids).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(held.len());
    for ((p, offset), (low, high)) in held.into_iter().zip(marks) {
        // Nothing fetched yet on this partition: the group's committed offset says where
        // it stands, else the start.
        let at = match offset {
            Offset::Offset(o) => o,
            _ => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(topic, p);
                reader
                    .committed_offsets(tpl, Duration::from_secs(2))
                    .map_err(|err| format!("partition {p}: {err}"))?
                    .elements()
                    .first()
                    .and_then(|c| match c.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(low)
                    .max(low)
            }
        };
        out.push((p, at, high));
    }
    Ok((out, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_that_stands_still_past_max_wait_is_stuck_and_a_moving_one_is_not() {
        let mut p = Progress::new(Duration::from_millis(50));
        let at = |parts: Vec<(i32, i64, i64)>| Ok((parts, vec![0, 1]));
        let look = p.judge(at(vec![(0, 5, 9), (1, 3, 3)]));
        assert!(!look.caught_up && look.stuck.is_empty());
        assert_eq!(look.behind, vec![(0, 5, 9)]);
        assert_eq!(look.partitions, vec![0, 1]);
        std::thread::sleep(Duration::from_millis(60));
        let look = p.judge(at(vec![(0, 5, 9), (1, 3, 3)]));
        assert_eq!(look.stuck.len(), 1);
        assert_eq!(
            (
                look.stuck[0].partition,
                look.stuck[0].offset,
                look.stuck[0].high
            ),
            (0, 5, 9)
        );
        // Moving on resets the clock; reaching the end is caught up.
        let look = p.judge(at(vec![(0, 6, 9), (1, 3, 3)]));
        assert!(look.stuck.is_empty());
        p.reset_clocks();
        let look = p.judge(at(vec![(0, 9, 9), (1, 3, 3)]));
        assert!(look.caught_up);
        let look = p.judge(Err("down".into()));
        assert!(look.broker_silent.is_some() && !look.caught_up);
    }
}
