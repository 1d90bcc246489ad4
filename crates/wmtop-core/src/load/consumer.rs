//! The consumer loop: waits (with a deadline) for ClickHouse and Kafka (`startup`),
//! reads the topic in the consumer group and, on each message, tick and landed batch,
//! takes the step due with the run's state (`session`): gathering batches
//! ([`batch`](super::batch)), landing them ([`land`](super::land): insert, then commit,
//! only after ClickHouse acknowledged), reporting schema drift (`drift`) and deciding how
//! the run ends ([`verdict`]). Every run ends with a verdict and a summary (`summary`):
//! done (read to the end, landed, committed, copies merged), interrupted (flushed and
//! committed first), gave up (with what it waited for) or failed (with the reason).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use tokio::sync::{mpsc, watch};

use super::batch::Batch;
use super::drift::DriftWatch;
use super::events::Events;
use super::rest::{News, Rest, RESTING_TICK};
use super::session::Session;
use super::startup;
pub use super::summary::ConsumeSummary;
use super::summary::{finish, interrupted, End};
use super::verdict::{self, Verdict, WaitedFor};
use crate::config::Settings;
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
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
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
        started,
        stuck: BTreeMap::new(),
    };
    let max_wait = settings.max_wait.0;
    let interval = settings.batch_interval.0;
    let busy_tick = (interval / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
    let mut next_tick = tokio::time::Instant::now() + busy_tick;
    let drained = interval.min(Duration::from_millis(250));
    let mut progress = verdict::Progress::new(max_wait);
    let mut held: Option<Vec<i32>> = None;
    let mut paused = false;
    let mut last_message = Instant::now();
    let mut unassigned_since = Some(Instant::now());
    // Caught up and settled for a while: fetching rests (partitions paused) until a look
    // at the watermarks shows something new, so an idle consumer does not poll the
    // broker many times a second.
    let mut rest = Rest::default();
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
                        break End::failed(KafkaOpError::Fault(f, settings.kafka_brokers.clone()));
                    }
                    if let Some(denied) = r.kafka.denied(&e) {
                        break End::failed(denied);
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
            _ = tokio::time::sleep_until(next_tick) => {
                // A resting consumer has nothing to flush and only looks for news.
                next_tick = tokio::time::Instant::now()
                    + if rest.resting { RESTING_TICK } else { busy_tick };
                // Due: the batch is T old, or the topic is drained (nothing new for a
                // moment), so a caught-up consumer does not sit on rows for T.
                let due = r.batch.started.is_some_and(|t| t.elapsed() >= interval)
                    || (!r.batch.is_empty() && last_message.elapsed() >= drained);
                if due {
                    if let Err(end) = r.flush(max_wait).await {
                        break end;
                    }
                }
                let before = (held.clone(), paused);
                let now_held = r.watch_assignment(&mut held, &mut paused, opts.pause.as_ref());
                if (held.clone(), paused) != before {
                    // A new assignment, or the user's pause or resume, sets every
                    // partition's state anew.
                    rest = Rest::default();
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
                    progress.rest();
                    continue;
                }
                if rest.resting {
                    match rest.news(opts.lag.as_ref(), &now_held) {
                        // Nothing new anywhere: no need to ask the broker.
                        Some(News::Nothing) => {
                            progress.rest();
                            continue;
                        }
                        Some(News::Held) => rest.follow(&r.consumer, false),
                        // New messages elsewhere, or no fresh sample: look as usual.
                        Some(News::Elsewhere) | None => {}
                    }
                }
                let Some(look) = progress.poll(&r.consumer, &r.kafka) else { continue };
                if let Some((silent, why)) = &look.broker_silent {
                    if *silent >= max_wait {
                        break End::gave_up_on_kafka(&settings.kafka_brokers, *silent, why.clone());
                    }
                    continue;
                }
                if let Some(end) = r.note_stuck(&look, opts.until_idle.is_some()) {
                    break end;
                }
                let settled_now = look.caught_up && r.in_flight.is_none() && r.batch.is_empty();
                if opts.until_idle.is_none() {
                    rest.follow(&r.consumer, settled_now && !r.unsettled);
                }
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
