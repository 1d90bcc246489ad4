//! The pipeline run live for a front end, and the front end's handle on it ([`start`],
//! [`Monitor`]): the consumer as a long-lived background task, pausable and restartable
//! for a replay or a skip (`consumer`), reloads on demand and on a schedule (`reload`,
//! each waiting for its rows to land: `landing`), errands for the detail and dead-letter views (`tools`), lag samples and
//! ClickHouse counts kept fresh (`feeds`), and the loop that carries out commands
//! (`control`). Front ends send [`Command`]s and receive [`MonitorEvent`]s
//! (`protocol`) on a bounded channel that never blocks the pipeline: when the front end
//! falls behind, events are dropped and counted (`out`).

mod consumer;
mod control;
mod feeds;
mod landing;
mod out;
mod protocol;
mod reload;
mod tools;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Settings;
pub use crate::kafka::sampler::LagRow;
pub use landing::Landing;
use out::Out;
pub use protocol::{
    Command, Cycle, CycleVerdict, MonitorEvent, MonitorOptions, Stage, StageState, Trigger,
};

/// The front end's handle.
pub struct Monitor {
    commands: mpsc::Sender<Command>,
    dropped: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Monitor {
    /// Sends a command; false when the monitor has stopped.
    pub fn send(&self, c: Command) -> bool {
        self.commands.try_send(c).is_ok()
    }

    /// Events dropped because the front end fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Asks for a clean stop (flush, commit) and waits for it, at most `limit`.
    pub async fn shutdown(self, limit: Duration) {
        let _ = self.commands.send(Command::Shutdown).await;
        let _ = tokio::time::timeout(limit, self.task).await;
    }
}

/// Starts the live pipeline. `settings` must name the API and Keycloak to use (the
/// front end starts the simulator and points the settings at it when that is the
/// source). Events arrive on the returned receiver.
pub fn start(settings: Settings, opts: MonitorOptions) -> (Monitor, mpsc::Receiver<MonitorEvent>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(4096);
    let dropped = Arc::new(AtomicU64::new(0));
    let out = Out {
        tx: ev_tx,
        dropped: Arc::clone(&dropped),
        ops: opts.ops.clone(),
    };
    let task = tokio::spawn(control::control(settings, opts, cmd_rx, out));
    (
        Monitor {
            commands: cmd_tx,
            dropped,
            task,
        },
        ev_rx,
    )
}
