//! The consumer: reads the topic in a consumer group, flattens each message into rows,
//! keeps bad messages and records aside with their reason, inserts rows in batches
//! (N rows or every T, whichever first, and as soon as the topic is drained), retries inserts with exponential backoff, and
//! commits offsets only after ClickHouse acknowledged the rows that came from them. On
//! shutdown it flushes what it holds and commits before returning.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use tokio::sync::watch;

use crate::config::Settings;
use crate::events::{Event, Events};
use crate::flatten::flatten_each;
use crate::kafka::{self, KafkaOpError};
use crate::sink::{partition_of, Blob, DeadLetter, Scope, Sink, SinkError};

/// A partition with lag whose committed offset has not moved this long, held by no
/// consumer we can see, counts as orphaned (its consumer died and the broker did not hand
/// it on); the consumer then re-joins the group to force a new assignment.
const STALL_AFTER: Duration = Duration::from_secs(20);
/// How often the watchdog looks, and the least time between two re-joins.
const WATCH_EVERY: Duration = Duration::from_secs(5);
const REJOIN_GAP: Duration = Duration::from_secs(45);

/// Watches for orphaned partitions (see [`STALL_AFTER`]).
struct Watchdog {
    client: Option<Arc<rdkafka::consumer::BaseConsumer>>,
    pending: Option<tokio::task::JoinHandle<Option<Vec<kafka::PartitionLag>>>>,
    last_check: Instant,
    /// Per partition: the committed offset seen, and since when.
    still: BTreeMap<i32, (Option<i64>, Instant)>,
    last_rejoin: Option<Instant>,
}

impl Watchdog {
    fn new(settings: &Settings) -> Watchdog {
        Watchdog {
            client: kafka::consumer_config(settings).create().ok().map(Arc::new),
            pending: None,
            last_check: Instant::now(),
            still: BTreeMap::new(),
            last_rejoin: None,
        }
    }

    /// Called on each tick; true when the consumer should re-join the group.
    fn poll(&mut self, settings: &Settings, held: &[i32]) -> bool {
        if let Some(task) = self.pending.take_if(|t| t.is_finished()) {
            let lags = futures_util::FutureExt::now_or_never(task)
                .and_then(Result::ok)
                .flatten();
            if let Some(lags) = lags {
                return self.judge(&lags, held);
            }
        }
        if self.pending.is_none() && self.last_check.elapsed() >= WATCH_EVERY {
            self.last_check = Instant::now();
            if let Some(client) = self.client.clone() {
                let s = settings.clone();
                self.pending = Some(tokio::task::spawn_blocking(move || {
                    kafka::lag(&client, &s).ok()
                }));
            }
        }
        false
    }

    fn judge(&mut self, lags: &[kafka::PartitionLag], held: &[i32]) -> bool {
        let now = Instant::now();
        let mut orphaned = Vec::new();
        for l in lags {
            if held.contains(&l.partition) || l.lag.is_none_or(|n| n == 0) {
                self.still.remove(&l.partition);
                continue;
            }
            let entry = self.still.entry(l.partition).or_insert((l.committed, now));
            if entry.0 != l.committed {
                *entry = (l.committed, now);
            } else if now.duration_since(entry.1) >= STALL_AFTER {
                orphaned.push((l.partition, l.lag.unwrap_or(0)));
            }
        }
        if orphaned.is_empty() || self.last_rejoin.is_some_and(|t| t.elapsed() < REJOIN_GAP) {
            return false;
        }
        tracing::warn!(
            "partitions {orphaned:?} (partition, lag) have not moved for {STALL_AFTER:?} and this consumer does not hold them; \
             re-joining the group so that they are assigned again"
        );
        self.last_rejoin = Some(now);
        self.still.clear();
        true
    }
}

/// Records a message needs before a column absent from all of them counts as drift.
const DRIFT_MIN_RECORDS: usize = 5;

/// Longest wait for the group to assign partitions before the idle clock starts anyway
/// (longer than the session timeout a killed member leaves behind).
const ASSIGNMENT_WAIT: Duration = Duration::from_secs(30);

/// How a consume run ends.
#[derive(Clone, Debug, Default)]
pub struct ConsumeOptions {
    /// Stop after this long with no new message.
    pub until_idle: Option<Duration>,
    /// Give up on an insert after this many failed attempts (None: keep trying until
    /// shutdown, with the backoff capped at 10 s).
    pub max_insert_attempts: Option<u32>,
    /// While this holds true, the consumer's partitions are paused (nothing is read;
    /// the group membership is kept).
    pub pause: Option<watch::Receiver<bool>>,
}

/// What a consume run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumeSummary {
    pub messages: u64,
    pub records: u64,
    pub rows_inserted: u64,
    pub batches: u64,
    pub bad_messages: u64,
    pub bad_records: u64,
    pub insert_retries: u64,
    pub commits: u64,
    /// From the start of the run to the last commit (the last rows acknowledged by
    /// ClickHouse and their offsets committed).
    pub loaded_ms: u64,
    /// Record fields the table has no column for.
    pub unknown_fields: Vec<String>,
    /// Each drift found: fields added or gone, and since when.
    pub schema_drift: Vec<crate::events::Drift>,
    pub took_ms: u64,
}

/// Why a consume run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Kafka(#[from] KafkaOpError),
    #[error(
        "giving up after {attempts} failed inserts (offsets not committed, nothing lost): {last}"
    )]
    Insert { attempts: u32, last: SinkError },
    #[error("stopped before ClickHouse took the last batch (offsets not committed, nothing lost): {last}")]
    ShutdownWithPending { last: SinkError },
    #[error("the insert task failed (offsets not committed, nothing lost): {0}")]
    Task(String),
}

#[derive(Default)]
struct Batch {
    /// The rows, RowBinary-encoded as they were flattened (no row structs are kept).
    encoded: Vec<u8>,
    rows: usize,
    dead: Vec<DeadLetter>,
    /// Per partition: first and last offset held.
    offsets: BTreeMap<i32, (i64, i64)>,
    per_transaction: BTreeMap<String, u64>,
    partitions: BTreeSet<u32>,
    bytes: usize,
    messages: usize,
    /// Dead letters sent with the batch (the letters themselves go to the insert task).
    dead_count: usize,
    started: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    fn note_offset(&mut self, partition: i32, offset: i64) {
        self.offsets
            .entry(partition)
            .and_modify(|(_, last)| *last = (*last).max(offset))
            .or_insert((offset, offset));
        self.started.get_or_insert_with(Instant::now);
    }
}

struct Consumer_ {
    settings: Settings,
    sink: Sink,
    consumer: Arc<StreamConsumer>,
    events: Events,
    opts: ConsumeOptions,
    batch: Batch,
    summary: ConsumeSummary,
    unknown: BTreeSet<String>,
    touched: BTreeSet<u32>,
    seen_columns: u128,
    reported_missing: u128,
    started: Instant,
    /// The batch ClickHouse is taking now; its offsets are committed once it has.
    in_flight: Option<InFlight>,
    /// Told when the batch in flight is done, so its commit does not wait for the next.
    done: tokio::sync::mpsc::Sender<()>,
}

/// A batch handed to ClickHouse: the insert task, and what to commit and report after.
struct InFlight {
    task: tokio::task::JoinHandle<Result<u32, ConsumeError>>,
    batch: Batch,
}

/// Runs the consumer until `shutdown` turns true or, with `until_idle`, until the topic
/// has been quiet that long.
pub async fn run(
    settings: &Settings,
    sink: Sink,
    opts: ConsumeOptions,
    mut shutdown: watch::Receiver<bool>,
    events: Events,
) -> Result<ConsumeSummary, ConsumeError> {
    let started = Instant::now();
    let brokers = settings.kafka_brokers.clone();
    // Kafka may not be up yet: wait for it rather than fail.
    let what = format!("Kafka at {brokers}");
    if crate::retry::until_ready(&what, &mut shutdown.clone(), || {
        kafka::ensure_topic(settings)
    })
    .await
    .is_none()
    {
        return Ok(ConsumeSummary::default());
    }
    let consumer: Arc<StreamConsumer> = kafka::consumer_config(settings)
        .create()
        .map_err(|source| KafkaOpError::Kafka {
            brokers: brokers.clone(),
            action: "create consumer",
            source,
        })
        .map(Arc::new)?;
    consumer
        .subscribe(&[settings.topic.as_str()])
        .map_err(|source| KafkaOpError::Kafka {
            brokers,
            action: "subscribe",
            source,
        })?;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut c = Consumer_ {
        settings: settings.clone(),
        sink,
        consumer: Arc::clone(&consumer),
        events,
        opts,
        batch: Batch::default(),
        summary: ConsumeSummary::default(),
        unknown: BTreeSet::new(),
        touched: BTreeSet::new(),
        seen_columns: 0,
        reported_missing: 0,
        started,
        in_flight: None,
        done: done_tx,
    };
    let interval = c.settings.batch_interval.0;
    let mut tick = tokio::time::interval(
        (interval / 4).clamp(Duration::from_millis(20), Duration::from_millis(250)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drained = interval.min(Duration::from_millis(250));
    let mut watchdog = Watchdog::new(settings);
    let mut assigned = false;
    let mut held: Vec<i32> = Vec::new();
    let mut paused = false;
    let mut last_message = Instant::now();
    let mut outcome = Ok(());
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            msg = consumer.recv() => match msg {
                Ok(m) => {
                    if let Err(e) = c.handle(&m, &shutdown).await {
                        outcome = Err(e);
                        break;
                    }
                    // Idle means nothing arrived: time spent retrying an insert is not.
                    last_message = Instant::now();
                }
                Err(e) => {
                    tracing::warn!("Kafka: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Some(()) = done_rx.recv() => {
                let retried = c.summary.insert_retries;
                if let Err(e) = c.land().await {
                    outcome = Err(e);
                    break;
                }
                if c.summary.insert_retries > retried {
                    last_message = Instant::now();
                }
            }
            _ = tick.tick() => {
                // Due: the batch is T old, or the topic is drained (nothing new for a
                // moment), so a caught-up consumer does not sit on rows for T.
                let due = c.batch.started.is_some_and(|t| t.elapsed() >= interval)
                    || (!c.batch.is_empty() && last_message.elapsed() >= drained);
                if due {
                    let retried = c.summary.insert_retries;
                    if let Err(e) = c.flush(&shutdown).await {
                        outcome = Err(e);
                        break;
                    }
                    if c.summary.insert_retries > retried {
                        last_message = Instant::now();
                    }
                }
                c.watch_assignment(&mut held, &mut paused);
                if !paused && watchdog.poll(&c.settings, &held) {
                    if let Err(e) = c.flush(&shutdown).await {
                        outcome = Err(e);
                        break;
                    }
                    c.consumer.unsubscribe();
                    if let Err(e) = c.consumer.subscribe(&[c.settings.topic.as_str()]) {
                        tracing::warn!("re-subscribing failed: {e}");
                    }
                    last_message = Instant::now();
                }
                // The idle clock runs only while the group has given this consumer
                // partitions: a restart waits out the old member's session first.
                if !assigned {
                    assigned = c.consumer.assignment().is_ok_and(|a| a.count() > 0);
                    if assigned {
                        last_message = Instant::now();
                    } else if started.elapsed() >= ASSIGNMENT_WAIT {
                        tracing::warn!("no partitions assigned after {ASSIGNMENT_WAIT:?}; is another consumer in group {} holding them?", c.settings.group);
                        assigned = true;
                    }
                }
                if assigned && c.opts.until_idle.is_some_and(|idle| last_message.elapsed() >= idle) {
                    // Quiet is not enough: a broker that is down is quiet too. Stop only
                    // once every partition held has been read to its high watermark.
                    let consumer = Arc::clone(&c.consumer);
                    let topic = c.settings.topic.clone();
                    let caught_up = tokio::task::spawn_blocking(move || caught_up(&consumer, &topic))
                        .await
                        .unwrap_or(Err("the check did not run".into()));
                    match caught_up {
                        Ok(()) => break,
                        Err(why) => {
                            tracing::info!("quiet for the idle time, but not done: {why}; waiting on");
                            last_message = Instant::now();
                        }
                    }
                }
            }
        }
    }
    if outcome.is_ok() {
        outcome = c.flush(&shutdown).await;
    }
    if outcome.is_ok() {
        outcome = c.land().await;
    } else if let Some(f) = c.in_flight.take() {
        // Stopping on an error: the batch in flight is not committed (it is read again).
        f.task.abort();
    }
    if outcome.is_ok() && !c.touched.is_empty() {
        // Merge what this run touched, so plain queries see one row per record too.
        if let Err(e) = c.sink.optimize(&c.touched).await {
            tracing::warn!("could not merge partitions after loading: {e}");
        }
    }
    c.summary.unknown_fields = c.unknown.iter().cloned().collect();
    c.summary.took_ms = started.elapsed().as_millis() as u64;
    outcome.map(|()| c.summary)
}

impl Consumer_ {
    async fn handle(
        &mut self,
        m: &BorrowedMessage<'_>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ConsumeError> {
        let partition = m.partition();
        let offset = m.offset();
        let payload = m.payload().unwrap_or_default();
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        self.summary.messages += 1;
        let mut first_name = None;
        let flat = {
            let batch = &mut self.batch;
            flatten_each(payload, self.sink.time_mode(), |row| {
                if let Some(p) = partition_of(row.timestamp.millis()) {
                    batch.partitions.insert(p);
                }
                if first_name.is_none() {
                    first_name = Some(row.transaction_name.clone());
                }
                row.encode(&mut batch.encoded);
            })
        };
        self.batch.note_offset(partition, offset);
        self.batch.bytes += payload.len();
        self.batch.messages += 1;
        let topic = self.settings.topic.clone();
        match flat {
            Err(e) => {
                self.summary.bad_messages += 1;
                let reason = e.to_string();
                tracing::warn!(partition, offset, key = %key, "message set aside: {reason}");
                self.events.send(Event::DeadLettered {
                    partition,
                    offset,
                    reason: reason.clone(),
                });
                self.batch.dead.push(DeadLetter {
                    scope: Scope::Message,
                    topic,
                    kafka_partition: partition,
                    kafka_offset: offset,
                    message_key: key,
                    record_index: -1,
                    reason,
                    payload: Blob(payload.to_vec()),
                });
            }
            Ok(f) => {
                self.summary.records += f.records as u64;
                self.note_drift(&f, partition, offset);
                for bad in f.bad_records {
                    self.summary.bad_records += 1;
                    tracing::warn!(partition, offset, key = %key, "record set aside: {}", bad.reason);
                    self.events.send(Event::DeadLettered {
                        partition,
                        offset,
                        reason: bad.reason.clone(),
                    });
                    self.batch.dead.push(DeadLetter {
                        scope: Scope::Record,
                        topic: topic.clone(),
                        kafka_partition: partition,
                        kafka_offset: offset,
                        message_key: key.clone(),
                        record_index: i32::try_from(bad.index).unwrap_or(i32::MAX),
                        reason: bad.reason,
                        payload: Blob(bad.raw.into_bytes()),
                    });
                }
                if let Some(name) = first_name {
                    *self.batch.per_transaction.entry(name).or_default() += f.good as u64;
                }
                self.batch.rows += f.good;
            }
        }
        if self.batch.rows >= self.settings.batch_rows {
            self.flush(shutdown).await?;
        }
        Ok(())
    }

    /// Hands the batch to ClickHouse in a task of its own (after the one before it has
    /// landed), so the next batch is read and flattened while this one is inserted.
    async fn flush(&mut self, shutdown: &watch::Receiver<bool>) -> Result<(), ConsumeError> {
        self.land().await?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.started = Some(Instant::now());
        let rows = bytes::Bytes::from(std::mem::take(&mut batch.encoded));
        let dead = std::mem::take(&mut batch.dead);
        let dead_count = dead.len();
        let sink = self.sink.clone();
        let events = self.events.clone();
        let max = self.opts.max_insert_attempts;
        let shutdown = shutdown.clone();
        let done = self.done.clone();
        let task = tokio::spawn(async move {
            let mut retries = 0;
            if !rows.is_empty() {
                retries += retrying(max, &shutdown, &events, || {
                    sink.insert_encoded(rows.clone())
                })
                .await?;
            }
            if !dead.is_empty() {
                retries +=
                    retrying(max, &shutdown, &events, || sink.insert_dead_letters(&dead)).await?;
            }
            let _ = done.try_send(());
            Ok(retries)
        });
        batch.dead_count = dead_count;
        self.in_flight = Some(InFlight { task, batch });
        Ok(())
    }

    /// Waits for the batch in flight, then commits its offsets and reports it.
    async fn land(&mut self) -> Result<(), ConsumeError> {
        let Some(InFlight { task, batch }) = self.in_flight.take() else {
            return Ok(());
        };
        let retries = task
            .await
            .map_err(|e| ConsumeError::Task(e.to_string()))??;
        self.commit(&batch.offsets);
        self.touched.extend(batch.partitions.iter().copied());
        self.summary.batches += 1;
        self.summary.rows_inserted += batch.rows as u64;
        self.summary.insert_retries += u64::from(retries);
        let took = batch.started.map(|t| t.elapsed()).unwrap_or_default();
        tracing::info!(
            rows = batch.rows,
            dead = batch.dead_count,
            ?took,
            "batch flushed"
        );
        self.events.send(Event::Flushed {
            rows: batch.rows,
            messages: batch.messages,
            bytes: batch.bytes,
            dead_letters: batch.dead_count,
            took,
            retries,
            offsets: batch
                .offsets
                .iter()
                .map(|(p, (a, b))| (*p, *a, *b))
                .collect(),
            per_transaction: batch.per_transaction.into_iter().collect(),
        });
        Ok(())
    }

    /// Schema drift: new fields the table lacks, and columns that stopped arriving. A
    /// column counts as stopped when a message of at least [`DRIFT_MIN_RECORDS`] records
    /// has it in none of them after earlier messages had it.
    fn note_drift(&mut self, f: &crate::flatten::Flattened, partition: i32, offset: i64) {
        let added: Vec<String> = f
            .unknown_fields
            .difference(&self.unknown)
            .cloned()
            .collect();
        let mut missing = Vec::new();
        if f.records >= DRIFT_MIN_RECORDS {
            let gone = self.seen_columns & !f.present_columns & !self.reported_missing;
            for (i, c) in crate::fields::COLUMNS.iter().enumerate() {
                if gone & (1 << i) != 0 && c.kind != crate::fields::Kind::Id {
                    missing.push(c.json.to_string());
                    self.reported_missing |= 1 << i;
                }
            }
        }
        self.seen_columns |= f.present_columns;
        // A column that is back may be reported again if it goes away again.
        self.reported_missing &= !f.present_columns;
        if added.is_empty() && missing.is_empty() {
            return;
        }
        let drift = crate::events::Drift {
            added,
            missing,
            partition,
            offset,
            since: jiff::Timestamp::now().to_string(),
        };
        tracing::warn!(
            partition,
            offset,
            "schema drift: new fields without a column: [{}]; fields no longer sent: [{}]",
            drift.added.join(", "),
            drift.missing.join(", ")
        );
        self.unknown.extend(drift.added.iter().cloned());
        self.summary.schema_drift.push(drift.clone());
        self.events.send(Event::SchemaDrift(drift));
    }

    /// Reports assignment changes and applies pause/resume to what is held.
    fn watch_assignment(&mut self, held: &mut Vec<i32>, paused: &mut bool) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let parts: Vec<i32> = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        let changed = parts != *held;
        if changed {
            tracing::info!("partitions held: {parts:?}");
            held.clone_from(&parts);
            self.events.send(Event::Assigned { partitions: parts });
        }
        let want = self.opts.pause.as_ref().is_some_and(|p| *p.borrow());
        if want != *paused || (want && changed) {
            let result = if want {
                self.consumer.pause(&assignment)
            } else {
                self.consumer.resume(&assignment)
            };
            match result {
                Ok(()) => {
                    *paused = want;
                    self.events.send(Event::Paused(want));
                }
                Err(e) => tracing::warn!(
                    "could not {} the consumer: {e}",
                    if want { "pause" } else { "resume" }
                ),
            }
        }
    }

    fn commit(&mut self, offsets: &BTreeMap<i32, (i64, i64)>) {
        let mut tpl = TopicPartitionList::new();
        for (p, (_, last)) in offsets {
            if let Err(e) =
                tpl.add_partition_offset(&self.settings.topic, *p, Offset::Offset(last + 1))
            {
                tracing::warn!("cannot commit partition {p}: {e}");
            }
        }
        // A failed commit (e.g. the partition moved to another consumer) only means these
        // messages are read again; the table's key makes that harmless.
        match self.consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                self.summary.commits += 1;
                self.summary.loaded_ms = self.started.elapsed().as_millis() as u64;
            }
            Err(e) => {
                tracing::warn!("offset commit failed (messages will be re-read, not doubled): {e}")
            }
        }
    }
}

/// Ok when every partition the consumer holds has been read to its high watermark; else
/// what is still unread or why it cannot be told (the broker is down). Blocking.
fn caught_up(consumer: &StreamConsumer, topic: &str) -> Result<(), String> {
    let positions = consumer.position().map_err(|e| e.to_string())?;
    for e in positions.elements() {
        let (low, high) = consumer
            .fetch_watermarks(topic, e.partition(), Duration::from_secs(2))
            .map_err(|err| format!("partition {}: {err}", e.partition()))?;
        // Nothing fetched yet on this partition: the group's committed offset says where
        // it stands (a run with nothing new to read), else the start.
        let at = match e.offset() {
            Offset::Offset(o) => o,
            _ => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(topic, e.partition());
                consumer
                    .committed_offsets(tpl, Duration::from_secs(2))
                    .map_err(|err| format!("partition {}: {err}", e.partition()))?
                    .elements()
                    .first()
                    .and_then(|c| match c.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(low)
            }
        };
        if at < high {
            return Err(format!(
                "partition {} read to {at} of {high}",
                e.partition()
            ));
        }
    }
    Ok(())
}

/// Runs an insert until it succeeds, with backoff; gives up after `max` attempts, or
/// after 3 once shutdown is asked for. Returns the retries it took.
async fn retrying<F, Fut>(
    max: Option<u32>,
    shutdown: &watch::Receiver<bool>,
    events: &Events,
    op: F,
) -> Result<u32, ConsumeError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), SinkError>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match op().await {
            Ok(()) => return Ok(attempt - 1),
            Err(e) => {
                if max.is_some_and(|max| attempt >= max) {
                    return Err(ConsumeError::Insert {
                        attempts: attempt,
                        last: e,
                    });
                }
                if *shutdown.borrow() && attempt >= 3 {
                    return Err(ConsumeError::ShutdownWithPending { last: e });
                }
                let wait = crate::retry::backoff(attempt, Duration::from_millis(100));
                tracing::warn!(attempt, ?wait, "insert failed, retrying: {e}");
                events.send(Event::InsertRetry {
                    attempt,
                    error: e.to_string(),
                });
                tokio::time::sleep(wait).await;
            }
        }
    }
}
