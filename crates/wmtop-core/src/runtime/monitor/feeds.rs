//! The figures the monitor keeps fresh without being asked: the one lag sampler's samples
//! passed on to the front end and /metrics, and rows stored and distinct records per
//! transaction re-read from ClickHouse after flushes and now and then.

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
