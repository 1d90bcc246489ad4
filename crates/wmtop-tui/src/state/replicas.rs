//! The replicas' state, for a Distributed table: each replica as it last reported itself
//! (up or down, rows, delay, queue, read-only, last error), when that was, and the view's
//! selection. The status bar reads the summary: replicas up of all, and whether one is
//! stale or read-only.

use std::time::Instant;

use wmtop_core::clickhouse::cluster::ReplicaState;

/// The replicas, once the monitor found a Distributed table.
#[derive(Default)]
pub struct ReplicasState {
    pub rows: Vec<ReplicaState>,
    /// When they were last sampled; None: never (not a Distributed table, or not yet).
    pub at: Option<Instant>,
    pub selected: usize,
}

/// What the status bar says of the replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub up: usize,
    pub total: usize,
    /// Up, but stale (behind) or read-only.
    pub troubled: usize,
}

impl ReplicasState {
    /// A new sample; true when what is shown changed.
    pub fn on_sample(&mut self, rows: Vec<ReplicaState>) -> bool {
        let changed = self.at.is_none() || rows != self.rows;
        self.rows = rows;
        self.at = Some(Instant::now());
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        changed
    }

    /// Replicas up of all, and how many of those are stale or read-only; None before the
    /// first sample.
    pub fn summary(&self) -> Option<Summary> {
        self.at?;
        Some(Summary {
            up: self.rows.iter().filter(|r| r.up).count(),
            total: self.rows.len(),
            troubled: self.rows.iter().filter(|r| r.troubled()).count(),
        })
    }

    pub fn move_by(&mut self, by: isize) {
        let last = self.rows.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(by).min(last);
    }
}
