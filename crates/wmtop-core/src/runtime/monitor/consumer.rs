//! The consumer as a long-lived background task: run again with the one backoff after it
//! ends with an error (the error shown on its stage), stopped and started again around a
//! replay or a skip; and its events forwarded to the front end and /metrics.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::landing::Landing;
use super::out::Out;
use super::protocol::{MonitorEvent, Stage, StageState};
use crate::config::Settings;
use crate::kafka::sampler::LagSample;
use crate::load::events::{Event, Events};
use crate::load::{self, ConsumeOptions, Verdict};
use crate::net::retry;

/// The consumer running as a task, and how to stop it.
pub(super) struct ConsumerTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Stops the consumer (it flushes and commits first) and waits for it.
pub(super) async fn stop_consumer(c: ConsumerTask) {
    let _ = c.stop.send(true);
    let _ = c.task.await;
}

/// Consumer events go to the front end and /metrics, into the landing tally, and mark
/// the counts as stale.
pub(super) fn forward_consumer_events(
    out: Out,
    counts_dirty: watch::Sender<bool>,
    landing: watch::Sender<Landing>,
) -> Events {
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let Some(ops) = &out.ops {
                ops.observe(&e);
            }
            landing.send_if_modified(|l| l.observe(&e));
            match &e {
                Event::Flushed { .. } => {
                    out.stage(Stage::ClickHouse, StageState::Ok, None);
                    out.stage(Stage::Kafka, StageState::Ok, None);
                    let _ = counts_dirty.send(true);
                }
                Event::Settled(_) => {
                    let _ = counts_dirty.send(true);
                    crate::runtime::memory::give_back();
                }
                Event::InsertRetry { attempt, error } => {
                    out.stage(
                        Stage::ClickHouse,
                        StageState::Retrying(*attempt),
                        Some(error.clone()),
                    );
                }
                _ => {}
            }
            out.send(MonitorEvent::Pipeline(e));
        }
    });
    Events::new(tx)
}

/// The consumer, run again after it ends with an error (the error shown on its stage).
pub(super) fn spawn_consumer(
    settings: &Settings,
    pause: watch::Receiver<bool>,
    lag: watch::Receiver<Option<LagSample>>,
    events: Events,
    out: Out,
) -> ConsumerTask {
    let (stop_tx, mut stop) = watch::channel(false);
    let settings = settings.clone();
    let task = tokio::spawn(async move {
        let mut attempt = 0u32;
        let mut waits = retry::delays(Duration::from_secs(1));
        out.send(MonitorEvent::ConsumerRunning(true));
        while !*stop.borrow() {
            let opts = ConsumeOptions {
                until_idle: None,
                pause: Some(pause.clone()),
                lag: Some(lag.clone()),
            };
            let summary = load::run(&settings, opts, stop.clone(), events.clone()).await;
            if matches!(summary.verdict, Verdict::Done | Verdict::Interrupted) {
                break;
            }
            attempt += 1;
            let stage = match summary.waited_for.as_ref().map(|w| w.what) {
                Some("clickhouse") => Stage::ClickHouse,
                Some(_) => Stage::Kafka,
                None if summary
                    .error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("ClickHouse")) =>
                {
                    Stage::ClickHouse
                }
                None => Stage::Kafka,
            };
            let state = if summary.verdict == Verdict::Failed {
                StageState::Down
            } else {
                StageState::Retrying(attempt)
            };
            out.stage(stage, state, summary.error.clone());
            let wait = waits.next().unwrap_or(retry::MAX_DELAY);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|v| *v) => {}
            }
        }
        out.send(MonitorEvent::ConsumerRunning(false));
    });
    ConsumerTask {
        stop: stop_tx,
        task,
    }
}
