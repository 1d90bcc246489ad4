//! The monitor's one way out: events to the front end with `try_send` on a bounded
//! channel (an event the front end has no room for is dropped and counted), and each
//! stage's state also to /health and /metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::protocol::{MonitorEvent, Stage, StageState};
use crate::runtime::ops::Ops;

/// Where the monitor's tasks send what they have to tell.
#[derive(Clone)]
pub(super) struct Out {
    pub(super) tx: mpsc::Sender<MonitorEvent>,
    pub(super) dropped: Arc<AtomicU64>,
    pub(super) ops: Option<Arc<Ops>>,
}

impl Out {
    /// Sends an event; counts it as dropped when the front end is behind.
    pub(super) fn send(&self, e: MonitorEvent) {
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reports a stage's state to the front end and to /health and /metrics.
    pub(super) fn stage(&self, stage: Stage, state: StageState, error: Option<String>) {
        if let Some(ops) = &self.ops {
            match state {
                StageState::Ok => ops.connected(stage.ops_name()),
                StageState::Retrying(_) | StageState::Down => ops.error(stage.ops_name()),
                StageState::Unknown => {}
            }
        }
        if let Some(e) = &error {
            tracing::warn!("{}: {e}", stage.name());
        }
        self.send(MonitorEvent::Stage {
            stage,
            state,
            error,
        });
    }
}
