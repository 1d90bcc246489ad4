//! The figures the monitor keeps fresh without being asked: the one lag sampler's samples
//! passed on to the front end and /metrics, rows stored and distinct records per
//! transaction re-read from ClickHouse after flushes and now and then, and, for a
//! Distributed table, each replica's state.

use std::time::Duration;

use tokio::sync::watch;

use super::out::Out;
use super::protocol::{MonitorEvent, Stage, StageState};
use crate::clickhouse::Ch;
use crate::config::Settings;
use crate::kafka::sampler::LagSample;

/// The lag sampler's samples, to the front end and /metrics.
pub(super) async fn forward_lag(mut samples: watch::Receiver<Option<LagSample>>, out: Out) {
    while samples.changed().await.is_ok() {
        let Some(sample) = samples.borrow_and_update().clone() else {
            continue;
        };
        if let Some(ops) = &out.ops {
            ops.on_sample(&sample);
        }
        match &sample.rows {
            Ok(_) => out.stage(Stage::Kafka, StageState::Ok, None),
            Err(e) => out.stage(Stage::Kafka, StageState::Down, Some(e.clone())),
        }
        out.send(MonitorEvent::Lag(sample.rows));
    }
}

/// Re-reads rows stored and distinct records per transaction after flushes (at most
/// every 2 s) and every 15 s anyway, so rows written by anyone else show too.
pub(super) async fn refresh_counts(
    settings: Settings,
    out: Out,
    mut dirty: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ch: Option<Ch> = None;
    // Count once at start, then after flushes.
    dirty.mark_changed();
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            changed = dirty.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
        }
        if ch.is_none() {
            match Ch::connect(&settings).await {
                Ok(c) => ch = Some(c),
                Err(e) => out.stage(Stage::ClickHouse, StageState::Down, Some(e.to_string())),
            }
        }
        if let Some(c) = &ch {
            match c.stored_per_transaction().await {
                Ok(counts) => out.send(MonitorEvent::Counts(counts)),
                Err(e) => {
                    out.stage(Stage::ClickHouse, StageState::Down, Some(e.to_string()));
                    ch = None;
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// How often the replicas are asked how they are.
const REPLICAS_EVERY: Duration = Duration::from_secs(5);

/// How often wmtop looks again for a Distributed table (it may not be there yet).
const FIND_REPLICAS_EVERY: Duration = Duration::from_secs(30);

/// For a Distributed table: each replica's state every few seconds, to the front end.
/// Looks for one now and then while the table is not one (or not there yet).
pub(super) async fn watch_replicas(settings: Settings, out: Out, mut stop: watch::Receiver<bool>) {
    let mut watch = None;
    loop {
        let wait = match &mut watch {
            None => match crate::clickhouse::cluster::ReplicaWatch::find(&settings).await {
                Ok(found) => {
                    watch = found;
                    if watch.is_some() {
                        continue;
                    }
                    FIND_REPLICAS_EVERY
                }
                Err(e) => {
                    tracing::debug!("looking for the table's replicas: {e}");
                    FIND_REPLICAS_EVERY
                }
            },
            Some(w) => {
                out.send(MonitorEvent::Replicas(w.sample().await));
                REPLICAS_EVERY
            }
        };
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
