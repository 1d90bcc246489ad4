//! The consumer loop: waits (with a deadline) for ClickHouse and Kafka (`startup`),
//! reads the topic in the consumer group and, on each message, tick and landed batch,
//! takes the step due with the run's state (`session`): gathering batches
//! ([`batch`](super::batch)), landing them ([`land`](super::land): insert, then commit,
//! only after ClickHouse acknowledged), reporting schema drift (`drift`) and deciding how
//! the run ends ([`verdict`]). Every run ends with a verdict and a summary (`summary`):
//! done (read to the end, landed, committed, copies merged), interrupted (flushed and
//! committed first), gave up (with what it waited for) or failed (with the reason).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use tokio::sync::{mpsc, watch};

use super::batch::{Batch, Flat};
use super::drift::DriftWatch;
use super::events::Events;
use super::rest::{News, Rest, RESTING_TICK};
use super::session::Session;
use super::startup;
pub use super::summary::ConsumeSummary;
use super::summary::{finish, interrupted, End};
use super::verdict::{self, Verdict, WaitedFor};
use crate::config::Settings;
use crate::kafka::lag;
use crate::kafka::sampler::LagSample;
use crate::kafka::KafkaOpError;

/// How a consume run is driven.
#[derive(Clone, Debug, Default)]
pub struct ConsumeOptions {
    /// Stop once the topic has been quiet this long and everything held is read.
    pub until_idle: Option<Duration>,
    /// While this holds true, the consumer's partitions are paused (nothing is read;
    /// the group membership is kept).
    pub pause: Option<watch::Receiver<bool>>,
    /// Lag samples the caller already takes (the monitor's sampler): a resting consumer
    /// learns of new messages from them instead of asking the broker itself.
    pub lag: Option<watch::Receiver<Option<LagSample>>>,
}

/// Runs the consumer until `stop` turns true or, with `until_idle`, until the topic has
/// been quiet that long with everything read; always returns a summary with a verdict.
pub async fn run(
    settings: &Settings,
    opts: ConsumeOptions,
    mut stop: watch::Receiver<bool>,
    events: Events,
) -> ConsumeSummary {
    let started = Instant::now();
    let mut summary = ConsumeSummary {
        table: format!("{}.{}", settings.database, settings.table),
        ..ConsumeSummary::default()
    };
    let (loader, kafka) = match startup::start(settings, &stop).await {
        Ok(ok) => ok,
        Err(end) => return finish(summary, end, started),
    };
    summary.clickhouse_version = loader.ch.version_text.clone();
    let consumer = match kafka.group_consumer().and_then(|c| {
        c.subscribe(&[settings.topic.as_str()])
            .map_err(kafka.op("subscribe"))
            .map(|()| c)
    }) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            let end = End::failed(e);
            return finish(summary, end, started);
        }
    };
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();
    let mut r = Session {
        settings,
        loader,
        kafka,
        consumer: Arc::clone(&consumer),
        events,
        batch: Batch::default(),
        summary,
        drift: DriftWatch::default(),
        written: Default::default(),
        unsettled: false,
        in_flight: None,
        done: done_tx,
        batches_sent: 0,
        started,
        stuck: BTreeMap::new(),
    };
    let mut t = Ticks::new(settings);
    let end: End = loop {
        if *stop.borrow() {
            break interrupted();
        }
        let step = tokio::select! {
            _ = stop.changed() => Some(interrupted()),
            msg = consumer.recv() => t.message(&mut r, msg, &opts).await,
            Some(number) = done_rx.recv() => t.landed(&mut r, number).await,
            _ = tokio::time::sleep_until(t.next_tick) => t.tick(&mut r, &opts).await,
        };
        if let Some(end) = step {
            break end;
        }
    };
    let end = wind_up(&mut r, end, t.max_wait).await;
    r.summary.unknown_fields = r.drift.unknown.iter().cloned().collect();
    finish(r.summary, end, started)
}

/// Flushes and lands what is left when the run ends done or interrupted (else drops the
/// batch in flight, which is read again), then settles (done or interrupted); the end
/// after that.
async fn wind_up(r: &mut Session<'_>, end: End, max_wait: Duration) -> End {
    let mut end = end;
    if matches!(end.verdict, Verdict::Done | Verdict::Interrupted) {
        let landed = match r.flush(max_wait).await {
            Ok(()) => r.land().await,
            Err(e) => Err(e),
        };
        if let Err(e) = landed {
            end = e;
        }
    } else if let Some(f) = r.in_flight.take() {
        // Stopping on an error: the batch in flight is not committed (it is read again).
        f.task.abort();
    }
    // Stopped by a signal too: what it wrote over revised hours is merged, so a plain
    // count shows no copy after it.
    if matches!(end.verdict, Verdict::Done | Verdict::Interrupted) && r.unsettled {
        if let Err(e) = r.settle().await {
            end = e;
        }
    }
    end
}

/// A message came this recently: the consumer is receiving.
const RECEIVING: Duration = Duration::from_secs(2);

/// After a batch went because every held partition was read to its end, the next goes
/// on that word only this much later. A topic written to steadily is read to its end
/// between each of its messages (on some partition, every fetch): without a gap each
/// message would go in an insert of its own, and ClickHouse pays for every insert.
const DRAINED_GAP: Duration = Duration::from_secs(1);

/// With no word from the client that a partition is read to its end, a batch this long
/// without a new message counts as drained.
const DRAINED_WITHOUT_EOF: Duration = Duration::from_secs(1);

/// The loop's own state between steps: when to tick, the watchdog, what is held and
/// paused, when the last message came, and fetching at rest.
struct Ticks {
    max_wait: Duration,
    interval: Duration,
    busy_tick: Duration,
    /// Held partitions read to their end since their last message: the last message
    /// read was the last the fetch that brought it knew of, or the client said so.
    at_end: BTreeSet<i32>,
    /// When a batch last went because the topic was drained.
    drained_flush: Option<Instant>,
    next_tick: tokio::time::Instant,
    progress: verdict::Progress,
    held: Option<Vec<i32>>,
    paused: bool,
    last_message: Instant,
    /// When the consumer last stopped reading to wait for its own insert to land.
    last_busy: Option<Instant>,
    unassigned_since: Option<Instant>,
    /// Caught up and settled for a while: fetching rests (partitions paused) until a
    /// look at the watermarks shows something new, so an idle consumer does not poll
    /// the broker many times a second.
    rest: Rest,
}

impl Ticks {
    fn new(settings: &Settings) -> Ticks {
        let max_wait = settings.max_wait.0;
        let interval = settings.batch_interval.0;
        let busy_tick = (interval / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        Ticks {
            max_wait,
            interval,
            busy_tick,
            at_end: BTreeSet::new(),
            drained_flush: None,
            next_tick: tokio::time::Instant::now() + busy_tick,
            progress: verdict::Progress::new(max_wait),
            held: None,
            paused: false,
            last_message: Instant::now(),
            last_busy: None,
            unassigned_since: Some(Instant::now()),
            rest: Rest::default(),
        }
    }

    /// A message (or a consumer error): flattened into the batch, flushed when full, or
    /// when it was the last one there is and the batch waits for nothing else.
    async fn message(
        &mut self,
        r: &mut Session<'_>,
        msg: Result<rdkafka::message::BorrowedMessage<'_>, rdkafka::error::KafkaError>,
        opts: &ConsumeOptions,
    ) -> Option<End> {
        match msg {
            Ok(m) => {
                let (partition, offset) = (m.partition(), m.offset());
                // The fetch that brought this message said where the partition ends. The
                // client's own word that it is read to its end comes only with the next
                // fetch, which the broker holds back while it has nothing new (up to
                // `fetch.wait.max.ms`, half a second by default): the last batch of a
                // load would wait that long for nothing.
                let topic = r.settings.topic.as_str();
                let last = lag::fetched_high(&*r.consumer, topic, partition)
                    .is_some_and(|h| offset + 1 >= h);
                if last {
                    self.at_end.insert(partition);
                } else {
                    self.at_end.remove(&partition);
                }
                let flat = Flat::of(&r.loader.plan, &m, &mut r.batch.rows);
                drop(m);
                r.take(flat);
                self.last_message = Instant::now();
                if r.batch.rows.len() >= r.settings.batch_rows
                    || r.batch.rows.bytes() >= r.settings.batch_bytes()
                {
                    return self.flush(r).await.err();
                }
                if last {
                    return self.at_end_of(r, opts).await;
                }
            }
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                self.at_end.insert(p);
                return self.at_end_of(r, opts).await;
            }
            Err(e) => {
                if let Some(f) = r.kafka.fault() {
                    return Some(End::failed(KafkaOpError::Fault(
                        f,
                        r.settings.kafka_brokers.clone(),
                    )));
                }
                if let Some(denied) = r.kafka.denied(&e) {
                    return Some(End::failed(denied));
                }
                tracing::debug!("Kafka: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        None
    }

    /// A partition was read to its end: once every held partition is, the batch goes
    /// (unless an insert is in flight: it goes when that one lands).
    async fn at_end_of(&mut self, r: &mut Session<'_>, opts: &ConsumeOptions) -> Option<End> {
        if self.held.is_none() {
            // Read to the end before the first tick looked at the assignment.
            self.follow_assignment(r, opts);
        }
        if self.drained() && r.in_flight.is_none() {
            return self.flush_drained(r).await.err();
        }
        None
    }

    /// Hands the batch to ClickHouse because the topic is drained (not because the
    /// batch is full or old).
    async fn flush_drained(&mut self, r: &mut Session<'_>) -> Result<(), End> {
        if !r.batch.is_empty() {
            self.drained_flush = Some(Instant::now());
        }
        r.flush(self.max_wait).await
    }

    /// Looks at the assignment and the user's pause; a change sets every partition's
    /// resting state anew. The partitions held now.
    fn follow_assignment(&mut self, r: &mut Session<'_>, opts: &ConsumeOptions) -> Vec<i32> {
        let before = (self.held.clone(), self.paused);
        let now_held = r.watch_assignment(&mut self.held, &mut self.paused, opts.pause.as_ref());
        if (self.held.clone(), self.paused) != before {
            self.rest = Rest::default();
        }
        now_held
    }

    /// Batch `number`'s insert finished: lands it (commit, or retry). A flush that waited
    /// for it has landed it already; waiting here on the insert now in flight instead
    /// would hold the loop (no message read, no look taken) for the whole of it.
    async fn landed(&mut self, r: &mut Session<'_>, number: u64) -> Option<End> {
        if r.in_flight.as_ref().map(|f| f.number) != Some(number) {
            return None;
        }
        let retried = r.summary.insert_retries;
        if let Err(end) = r.land().await {
            return Some(end);
        }
        if r.summary.insert_retries > retried {
            // Time spent retrying an insert is neither idle nor stuck.
            self.last_message = Instant::now();
            self.progress.reset_clocks();
        }
        // Rows held back while that insert ran (the topic drained meanwhile) go now.
        if !r.batch.is_empty() && self.drained() {
            return self.flush_drained(r).await.err();
        }
        None
    }

    /// Hands the batch to ClickHouse. When the insert before it has not landed yet, the
    /// consumer stops reading until it does: that wait is the consumer's own, so the
    /// watchdog does not count it against a partition that stood still meanwhile.
    async fn flush(&mut self, r: &mut Session<'_>) -> Result<(), End> {
        let waits = r.in_flight.is_some();
        let flushed = r.flush(self.max_wait).await;
        if waits {
            self.last_busy = Some(Instant::now());
        }
        flushed
    }

    /// Every held partition has been read to its end, or (should the client not say
    /// so) nothing has come for a second. The first only once [`DRAINED_GAP`] has passed
    /// since a batch last went for being drained.
    fn drained(&self) -> bool {
        let open = self
            .drained_flush
            .is_none_or(|t| t.elapsed() >= DRAINED_GAP);
        let all_at_end = self
            .held
            .as_ref()
            .is_some_and(|h| !h.is_empty() && h.iter().all(|p| self.at_end.contains(p)));
        (open && all_at_end) || self.last_message.elapsed() >= DRAINED_WITHOUT_EOF
    }

    /// A tick: flushes a due batch, follows the assignment and the user's pause, and
    /// looks at the positions (unless resting with nothing new), which may end the run.
    async fn tick(&mut self, r: &mut Session<'_>, opts: &ConsumeOptions) -> Option<End> {
        // A resting consumer has nothing to flush and only looks for news.
        self.next_tick = tokio::time::Instant::now()
            + if self.rest.resting {
                RESTING_TICK
            } else {
                self.busy_tick
            };
        // Due: the batch is T old, or the topic is drained, so a caught-up consumer
        // does not sit on rows for T. While a batch is being inserted the next one goes
        // on growing: it is flushed once that insert lands (one insert of many rows
        // costs ClickHouse far less than several small ones).
        let aged = r
            .batch
            .started
            .is_some_and(|t| t.elapsed() >= self.interval);
        let flushed = if aged {
            self.flush(r).await
        } else if !r.batch.is_empty() && r.in_flight.is_none() && self.drained() {
            self.flush_drained(r).await
        } else {
            Ok(())
        };
        if let Err(end) = flushed {
            return Some(end);
        }
        let now_held = self.follow_assignment(r, opts);
        if now_held.is_empty() {
            return self.unassigned(r.settings, opts);
        }
        self.unassigned_since = None;
        if self.paused {
            self.progress.reset_clocks();
            self.progress.rest();
            return None;
        }
        if self.rest.resting {
            match self.rest.news(opts.lag.as_ref(), &now_held) {
                // Nothing new anywhere: no need to ask the broker.
                Some(News::Nothing) => {
                    self.progress.rest();
                    return None;
                }
                Some(News::Held) => self.rest.follow(&r.consumer, false),
                // New messages elsewhere, or no fresh sample: look as usual.
                Some(News::Elsewhere) | None => {}
            }
        }
        self.look(r, opts).await
    }

    /// Nothing held: a run that ends when idle gives up after `max_wait`.
    fn unassigned(&mut self, settings: &Settings, opts: &ConsumeOptions) -> Option<End> {
        let since = *self.unassigned_since.get_or_insert_with(Instant::now);
        if opts.until_idle.is_none() || since.elapsed() < self.max_wait {
            return None;
        }
        let reason = format!(
            "no partition of {} was assigned to this consumer; is another consumer in group {} holding them all?",
            settings.topic, settings.group
        );
        Some(End::gave_up(
            WaitedFor::server(
                "assignment",
                &settings.kafka_brokers,
                since.elapsed(),
                reason,
            ),
            format!("no partition assigned within {}s", self.max_wait.as_secs()),
        ))
    }

    /// The watchdog's look at positions and watermarks: a silent broker or a stuck
    /// partition past `max_wait` ends the run; caught up and landed, the consumer rests,
    /// settles, or (until idle) is done.
    async fn look(&mut self, r: &mut Session<'_>, opts: &ConsumeOptions) -> Option<End> {
        // While messages keep coming, a partition whose position stands still waits its
        // turn behind them in the client's queue: the broker is serving, so its clock
        // starts only once nothing comes. Nor does it run while the consumer waited on
        // its own insert instead of reading (ClickHouse slow to take a batch).
        let busy = self.last_busy.is_some_and(|t| t.elapsed() < RECEIVING);
        if self.last_message.elapsed() < RECEIVING || busy {
            self.progress.reset_clocks();
        }
        let look = self.progress.poll(&r.consumer, &r.kafka)?;
        if let Some((silent, why)) = &look.broker_silent {
            if *silent >= self.max_wait {
                return Some(End::gave_up_on_kafka(
                    &r.settings.kafka_brokers,
                    *silent,
                    why.clone(),
                ));
            }
            return None;
        }
        if let Some(end) = r.note_stuck(&look, opts.until_idle.is_some()) {
            return Some(end);
        }
        let settled_now = look.caught_up && r.in_flight.is_none() && r.batch.is_empty();
        if opts.until_idle.is_none() {
            self.rest.follow(&r.consumer, settled_now && !r.unsettled);
        }
        if settled_now && r.unsettled && opts.until_idle.is_none() {
            if let Err(end) = r.settle().await {
                return Some(end);
            }
        }
        if settled_now
            && opts
                .until_idle
                .is_some_and(|idle| self.last_message.elapsed() >= idle)
        {
            return Some(End::done());
        }
        None
    }
}
