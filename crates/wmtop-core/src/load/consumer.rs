//! The consumer: waits (with a deadline) for ClickHouse and Kafka, reads the topic in
//! the consumer group, gathers batches ([`batch`]), lands them ([`land`]: insert, then
//! commit, only after ClickHouse acknowledged), reports schema drift ([`drift`]) and
//! decides how the run ends ([`verdict`]). Every run ends with a verdict and a summary:
//! done (read to the end, landed, committed, copies merged), interrupted (flushed and
//! committed first), gave up (with what it waited for) or failed (with the reason).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::batch::Batch;
use super::drift;
use super::land::{self, InFlight};
use super::verdict::{self, Verdict, WaitedFor};
use crate::clickhouse::{Ch, ChError, Loader, Settled};
use crate::config::redact::mask_url;
use crate::config::Settings;
use crate::kafka::{GroupConsumer, Kafka, KafkaOpError};
use crate::load::events::{Event, Events, Stuck};
use crate::net::retry::{wait_for, WaitError};

/// How a consume run is driven.
#[derive(Clone, Debug, Default)]
pub struct ConsumeOptions {
    /// Stop once the topic has been quiet this long and everything held is read.
    pub until_idle: Option<Duration>,
    /// While this holds true, the consumer's partitions are paused (nothing is read;
    /// the group membership is kept).
    pub pause: Option<watch::Receiver<bool>>,
}

/// What a consume run did, and how it ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumeSummary {
    pub verdict: Verdict,
    /// Stopped by a signal or the user (flushed and committed first).
    pub interrupted: bool,
    /// When it gave up or failed: what it was waiting for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_for: Option<WaitedFor>,
    /// When it gave up or failed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub messages: u64,
    /// Records in the messages read.
    pub records: u64,
    /// Rows written to ClickHouse.
    pub rows_inserted: u64,
    /// Rows not written: their hour was stored with the same content (or a newer one).
    pub rows_unchanged: u64,
    /// Rows written over an hour stored with other content (merged away after).
    pub rows_replaced: u64,
    pub batches: u64,
    pub bad_messages: u64,
    /// Records set aside (each with its reason in the dead-letter table).
    pub bad_records: u64,
    pub insert_retries: u64,
    pub commits: u64,
    /// Messages the broker did not serve (each blocks its partition until skipped).
    pub stuck: Vec<Stuck>,
    /// The merge after the load: months merged, copies left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled: Option<Settled>,
    /// From the start of the run to the last commit.
    pub loaded_ms: u64,
    /// Record fields the table has no column for.
    pub unknown_fields: Vec<String>,
    /// Each drift found: fields added or gone, and since when.
    pub schema_drift: Vec<crate::load::events::Drift>,
    pub took_ms: u64,
    pub clickhouse_version: String,
    pub table: String,
}

/// How the loop ended, before the summary is made.
struct End {
    verdict: Verdict,
    waited_for: Option<WaitedFor>,
    error: Option<String>,
}

impl End {
    fn done() -> End {
        End {
            verdict: Verdict::Done,
            waited_for: None,
            error: None,
        }
    }

    fn from_clickhouse(e: WaitError<ChError>, url: &str) -> End {
        match e {
            WaitError::Stopped => End {
                verdict: Verdict::Interrupted,
                waited_for: None,
                error: None,
            },
            WaitError::Permanent(e) => End {
                verdict: Verdict::Failed,
                waited_for: None,
                error: Some(e.to_string()),
            },
            WaitError::GaveUp { waited, last } => End {
                verdict: Verdict::GaveUp,
                waited_for: Some(WaitedFor {
                    what: "clickhouse",
                    server: url.to_string(),
                    partition: None,
                    offset: None,
                    high: None,
                    size: None,
                    waited_s: waited.as_secs(),
                    reason: last.to_string(),
                }),
                error: Some(last.to_string()),
            },
        }
    }

    fn from_kafka(e: WaitError<KafkaOpError>, brokers: &str) -> End {
        match e {
            WaitError::Stopped => End {
                verdict: Verdict::Interrupted,
                waited_for: None,
                error: None,
            },
            WaitError::Permanent(e) => End {
                verdict: Verdict::Failed,
                waited_for: None,
                error: Some(e.to_string()),
            },
            WaitError::GaveUp { waited, last } => {
                End::gave_up_on_kafka(brokers, waited, last.to_string())
            }
        }
    }

    fn gave_up_on_kafka(brokers: &str, waited: Duration, reason: String) -> End {
        End {
            verdict: Verdict::GaveUp,
            waited_for: Some(WaitedFor {
                what: "kafka",
                server: brokers.to_string(),
                partition: None,
                offset: None,
                high: None,
                size: None,
                waited_s: waited.as_secs(),
                reason: reason.clone(),
            }),
            error: Some(format!(
                "Kafka at {brokers} did not answer for {}s: {reason}",
                waited.as_secs()
            )),
        }
    }
}

/// Waits for ClickHouse (creating what loading needs) and for Kafka (the topic).
async fn start(settings: &Settings, stop: &watch::Receiver<bool>) -> Result<(Loader, Kafka), End> {
    let deadline = Some(settings.max_wait.0);
    let url = mask_url(&settings.clickhouse_url);
    let loader = wait_for(&format!("ClickHouse at {url}"), deadline, stop, || async {
        let ch = Ch::connect(settings).await?;
        Loader::prepare(ch, &settings.clickhouse_user).await
    })
    .await
    .map_err(|e| End::from_clickhouse(e, &url))?;
    let kafka = Kafka::new(settings);
    kafka
        .ready_until(stop)
        .await
        .map_err(|e| End::from_kafka(e, &settings.kafka_brokers))?;
    Ok((loader, kafka))
}

struct Run<'a> {
    settings: &'a Settings,
    loader: Loader,
    kafka: Kafka,
    consumer: Arc<GroupConsumer>,
    events: Events,
    batch: Batch,
    summary: ConsumeSummary,
    drift: drift::DriftWatch,
    /// Months written to since the last settle.
    months: BTreeSet<u32>,
    /// A batch landed since the last settle (the load is not reported done yet).
    unsettled: bool,
    in_flight: Option<InFlight>,
    /// Told when the batch in flight is done, so its commit does not wait for the next.
    done: mpsc::Sender<()>,
    started: Instant,
    /// Partitions reported stuck, at which offset.
    stuck: BTreeMap<i32, i64>,
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
    let (loader, kafka) = match start(settings, &stop).await {
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
            let end = End {
                verdict: Verdict::Failed,
                waited_for: None,
                error: Some(e.to_string()),
            };
            return finish(summary, end, started);
        }
    };
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut r = Run {
        settings,
        loader,
        kafka,
        consumer: Arc::clone(&consumer),
        events,
        batch: Batch::default(),
        summary,
        drift: drift::DriftWatch::default(),
        months: BTreeSet::new(),
        unsettled: false,
        in_flight: None,
        done: done_tx,
        started,
        stuck: BTreeMap::new(),
    };
    let max_wait = settings.max_wait.0;
    let interval = settings.batch_interval.0;
    let mut tick = tokio::time::interval(
        (interval / 4).clamp(Duration::from_millis(20), Duration::from_millis(250)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drained = interval.min(Duration::from_millis(250));
    let mut progress = verdict::Progress::new(max_wait);
    let mut held: Option<Vec<i32>> = None;
    let mut paused = false;
    let mut last_message = Instant::now();
    let mut unassigned_since = Some(Instant::now());
    // Orphaned partitions on the local broker (see kafka::quirks): when the held set
    // last changed, and when this consumer last re-joined.
    let mut held_since = Instant::now();
    let mut last_rejoin: Option<Instant> = None;
    let topic_name = settings.topic.clone();
    let end: End = loop {
        if *stop.borrow() {
            break interrupted();
        }
        tokio::select! {
            _ = stop.changed() => break interrupted(),
            msg = consumer.recv() => match msg {
                Ok(m) => {
                    r.take(&m);
                    last_message = Instant::now();
                    if r.batch.rows.len() >= settings.batch_rows {
                        if let Err(end) = r.flush(max_wait).await {
                            break end;
                        }
                    }
                }
                Err(e) => {
                    if let Some(f) = r.kafka.fault() {
                        break End {
                            verdict: Verdict::Failed,
                            waited_for: None,
                            error: Some(KafkaOpError::Fault(f, settings.kafka_brokers.clone()).to_string()),
                        };
                    }
                    tracing::debug!("Kafka: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            Some(()) = done_rx.recv() => {
                let retried = r.summary.insert_retries;
                if let Err(end) = r.land().await {
                    break end;
                }
                if r.summary.insert_retries > retried {
                    // Time spent retrying an insert is neither idle nor stuck.
                    last_message = Instant::now();
                    progress.reset_clocks();
                }
            }
            _ = tick.tick() => {
                // Due: the batch is T old, or the topic is drained (nothing new for a
                // moment), so a caught-up consumer does not sit on rows for T.
                let due = r.batch.started.is_some_and(|t| t.elapsed() >= interval)
                    || (!r.batch.is_empty() && last_message.elapsed() >= drained);
                if due {
                    if let Err(end) = r.flush(max_wait).await {
                        break end;
                    }
                }
                let before = held.clone();
                let now_held = r.watch_assignment(&mut held, &mut paused, opts.pause.as_ref());
                if held != before {
                    held_since = Instant::now();
                }
                if now_held.is_empty() {
                    let since = *unassigned_since.get_or_insert_with(Instant::now);
                    if opts.until_idle.is_some() && since.elapsed() >= max_wait {
                        break End {
                            verdict: Verdict::GaveUp,
                            waited_for: Some(WaitedFor {
                                what: "assignment",
                                server: settings.kafka_brokers.clone(),
                                partition: None,
                                offset: None,
                                high: None,
                                size: None,
                                waited_s: since.elapsed().as_secs(),
                                reason: format!("no partition of {} was assigned to this consumer; is another consumer in group {} holding them all?", settings.topic, settings.group),
                            }),
                            error: Some(format!("no partition assigned within {}s", max_wait.as_secs())),
                        };
                    }
                    continue;
                }
                unassigned_since = None;
                if paused {
                    progress.reset_clocks();
                    continue;
                }
                let Some(look) = progress.poll(&r.consumer, &topic_name) else { continue };
                if let Some((silent, why)) = &look.broker_silent {
                    if *silent >= max_wait {
                        break End::gave_up_on_kafka(&settings.kafka_brokers, *silent, why.clone());
                    }
                    continue;
                }
                if let Some(end) = r.note_stuck(&look, opts.until_idle.is_some()) {
                    break end;
                }
                let orphaned = r.kafka.quirks().orphaned(r.kafka.group_view(), &now_held, &look.partitions);
                if !orphaned.is_empty()
                    && held_since.elapsed() >= Duration::from_secs(5)
                    && last_rejoin.is_none_or(|t| t.elapsed() >= Duration::from_secs(45))
                {
                    tracing::warn!(
                        "partitions {orphaned:?} are held by nobody: the broker says this consumer leads a group of one; re-joining so that they are assigned"
                    );
                    if let Err(end) = r.flush(max_wait).await {
                        break end;
                    }
                    if let Err(end) = r.land().await {
                        break end;
                    }
                    r.consumer.unsubscribe();
                    if let Err(e) = r.consumer.subscribe(&[topic_name.as_str()]) {
                        tracing::warn!("re-subscribing failed: {e}");
                    }
                    last_rejoin = Some(Instant::now());
                    held_since = Instant::now();
                    last_message = Instant::now();
                    continue;
                }
                let settled_now = look.caught_up && r.in_flight.is_none() && r.batch.is_empty();
                if settled_now && r.unsettled && opts.until_idle.is_none() {
                    if let Err(end) = r.settle().await {
                        break end;
                    }
                }
                if settled_now && opts.until_idle.is_some_and(|idle| last_message.elapsed() >= idle) {
                    break End::done();
                }
            }
        }
    };
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
    if end.verdict == Verdict::Done && r.unsettled {
        if let Err(e) = r.settle().await {
            end = e;
        }
    }
    r.summary.unknown_fields = r.drift.unknown.iter().cloned().collect();
    finish(r.summary, end, started)
}

fn interrupted() -> End {
    End {
        verdict: Verdict::Interrupted,
        waited_for: None,
        error: None,
    }
}

fn finish(mut summary: ConsumeSummary, end: End, started: Instant) -> ConsumeSummary {
    summary.interrupted = end.verdict == Verdict::Interrupted;
    summary.verdict = end.verdict;
    summary.waited_for = end.waited_for;
    summary.error = end.error;
    summary.took_ms = started.elapsed().as_millis() as u64;
    if let Some(e) = &summary.error {
        tracing::error!("consume: {e}");
    }
    summary
}

impl Run<'_> {
    fn take(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) {
        use rdkafka::Message;
        let (partition, offset) = (m.partition(), m.offset());
        let taken = self.batch.take(&self.loader.plan, &self.settings.topic, m);
        self.summary.messages += 1;
        match &taken.outcome {
            Err(e) => {
                self.summary.bad_messages += 1;
                tracing::warn!(partition, offset, transaction = %taken.transaction, "message set aside: {e}");
                self.events.send(Event::DeadLettered {
                    partition,
                    offset,
                    transaction: taken.transaction.clone(),
                    whole_message: true,
                    reason: e.to_string(),
                });
            }
            Ok(f) => {
                self.summary.records += f.records as u64;
                for bad in &f.bad_records {
                    self.summary.bad_records += 1;
                    tracing::warn!(partition, offset, transaction = %taken.transaction, "record set aside: {}", bad.reason);
                    self.events.send(Event::DeadLettered {
                        partition,
                        offset,
                        transaction: taken.transaction.clone(),
                        whole_message: false,
                        reason: bad.reason.clone(),
                    });
                }
                if let Some(d) = self.drift.note(f, partition, offset) {
                    tracing::warn!(
                        partition,
                        offset,
                        "schema drift: new fields without a column: [{}]; fields no longer sent: [{}]",
                        d.added.join(", "),
                        d.missing.join(", ")
                    );
                    self.summary.schema_drift.push(d.clone());
                    self.events.send(Event::SchemaDrift(d));
                }
            }
        }
        if self.stuck.get(&partition).is_some_and(|o| offset >= *o) {
            self.stuck.remove(&partition);
            self.events.send(Event::Unstuck { partition });
        }
    }

    /// Hands the batch to ClickHouse (after the one before it has landed), so the next
    /// batch is read while this one is inserted.
    async fn flush(&mut self, max_wait: Duration) -> Result<(), End> {
        self.land().await?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.in_flight = Some(land::send(
            &self.loader,
            batch,
            max_wait,
            &self.events,
            &self.done,
        ));
        Ok(())
    }

    /// Waits for the batch in flight, then commits its offsets and reports it.
    async fn land(&mut self) -> Result<(), End> {
        let Some(InFlight { task, batch, sent }) = self.in_flight.take() else {
            return Ok(());
        };
        let url = self.loader.ch.url.clone();
        let landed = task
            .await
            .map_err(|e| End {
                verdict: Verdict::Failed,
                waited_for: None,
                error: Some(format!(
                    "the insert task failed (offsets not committed, nothing lost): {e}"
                )),
            })?
            .map_err(|e| End::from_clickhouse(e, &url))?;
        if land::commit(&self.consumer, &self.settings.topic, &batch) {
            self.summary.commits += 1;
            self.summary.loaded_ms = self.started.elapsed().as_millis() as u64;
        }
        self.months.extend(landed.inserted.months.iter().copied());
        self.unsettled = true;
        self.summary.batches += 1;
        self.summary.rows_inserted += landed.inserted.rows as u64;
        self.summary.rows_unchanged += landed.inserted.unchanged as u64;
        self.summary.rows_replaced += landed.inserted.replaced as u64;
        self.summary.insert_retries += u64::from(landed.retries);
        let took = sent.elapsed();
        tracing::info!(
            rows = landed.inserted.rows,
            unchanged = landed.inserted.unchanged,
            dead = landed.dead_new,
            ?took,
            "batch landed"
        );
        self.events.send(land::flushed(batch, &landed, took));
        Ok(())
    }

    /// Merges the months written to that hold copies, checks none is left, and reports
    /// the load done.
    async fn settle(&mut self) -> Result<(), End> {
        self.unsettled = false;
        let months = std::mem::take(&mut self.months);
        self.events.send(Event::Settling {
            months: months.iter().copied().collect(),
        });
        let url = self.loader.ch.url.clone();
        let settled = self
            .loader
            .settle(&months, self.settings.max_wait.0)
            .await
            .map_err(|e| End::from_clickhouse(WaitError::Permanent(e), &url))?;
        if settled.copies_left > 0 {
            tracing::warn!(
                "{} stored copies are left in months {:?} (the table does not merge them away)",
                settled.copies_left,
                months
            );
        } else if !settled.merged.is_empty() {
            tracing::info!("merged months {:?}: no copy left", settled.merged);
        }
        self.events.send(Event::Settled(settled.clone()));
        let total = self.summary.settled.get_or_insert_with(Settled::default);
        total.merged.extend(settled.merged);
        total.copies_left = settled.copies_left;
        total.took_ms += settled.took_ms;
        Ok(())
    }

    /// Reports messages the broker does not serve; ends a run that waits to be done.
    fn note_stuck(&mut self, look: &verdict::Look, ending: bool) -> Option<End> {
        for s in &look.stuck {
            if self.stuck.get(&s.partition) == Some(&s.offset) {
                continue;
            }
            tracing::error!(
                "partition {} is blocked: the broker has not served the message at offset {} (high watermark {}) for {}s; \
                 skip it with `wmtop dead-letters --skip {}:{}`",
                s.partition, s.offset, s.high, s.waited_s, s.partition, s.offset
            );
            self.stuck.insert(s.partition, s.offset);
            self.summary.stuck.push(s.clone());
            self.events.send(Event::Stuck(s.clone()));
        }
        let first = look.stuck.first()?;
        if !ending {
            return None;
        }
        Some(End {
            verdict: Verdict::GaveUp,
            waited_for: Some(WaitedFor {
                what: "message",
                server: self.settings.kafka_brokers.clone(),
                partition: Some(first.partition),
                offset: Some(first.offset),
                high: Some(first.high),
                size: first.size,
                waited_s: first.waited_s,
                reason: format!(
                    "the broker has not served partition {} offset {} for {}s; `wmtop dead-letters --skip {}:{}` sets it aside and moves the group past it",
                    first.partition, first.offset, first.waited_s, first.partition, first.offset
                ),
            }),
            error: Some(format!(
                "partition {} is blocked at offset {}: the broker does not serve that message",
                first.partition, first.offset
            )),
        })
    }

    /// Reports assignment changes and applies pause/resume to what is held; returns
    /// the partitions held.
    fn watch_assignment(
        &mut self,
        held: &mut Option<Vec<i32>>,
        paused: &mut bool,
        pause: Option<&watch::Receiver<bool>>,
    ) -> Vec<i32> {
        let Ok(assignment) = self.consumer.assignment() else {
            return held.clone().unwrap_or_default();
        };
        let parts: Vec<i32> = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        let changed = held.as_ref() != Some(&parts);
        if changed {
            tracing::info!("partitions held: {parts:?}");
            *held = Some(parts.clone());
            self.events.send(Event::Assigned {
                partitions: parts.clone(),
            });
        }
        let want = pause.is_some_and(|p| *p.borrow());
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
        parts
    }
}
