//! The consumer-lag pane's state: the last sample per partition (with its holder and
//! replicas), when it was taken (or why it failed: then the figures are not current and
//! say so), which partitions this wmtop's consumer holds, and five minutes of total lag
//! for the sparkline.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use wmtop_core::runtime::monitor::LagRow;

use super::history::{push_sample, HISTORY};

/// A sample older than this is shown with its age.
pub const LATE_AFTER: Duration = Duration::from_secs(5);

/// The lag pane.
#[derive(Default)]
pub struct LagState {
    pub rows: Vec<LagRow>,
    /// When the lag was last sampled; None: never, or the last sample failed.
    pub at: Option<Instant>,
    /// Why the last sample failed.
    pub error: Option<String>,
    pub history: VecDeque<u64>,
    /// Partitions this wmtop's consumer holds.
    pub assigned: Vec<i32>,
    pub selected: usize,
}

impl LagState {
    /// A sample, or why there is none; true when what is shown changed.
    pub fn on_sample(&mut self, sample: Result<Vec<LagRow>, String>) -> bool {
        match sample {
            Ok(rows) => {
                let changed = self.at.is_none() || rows != self.rows;
                self.rows = rows;
                self.at = Some(Instant::now());
                self.error = None;
                changed
            }
            Err(e) => {
                let changed = self.at.is_some() || self.error.as_ref() != Some(&e);
                self.at = None;
                self.error = Some(e);
                changed
            }
        }
    }

    /// How old the last sample is, once it is older than samples normally get (one
    /// every one or two seconds): the pane then says so.
    pub fn late(&self) -> Option<Duration> {
        self.at
            .map(|at| at.elapsed())
            .filter(|age| *age >= LATE_AFTER)
    }

    /// Total lag, if every partition's is known and the sample is current.
    pub fn total(&self) -> Option<u64> {
        if self.at.is_none() || self.rows.is_empty() {
            return None;
        }
        self.rows
            .iter()
            .map(|l| l.lag.lag.and_then(|n| u64::try_from(n).ok()))
            .sum()
    }

    /// Partitions with fewer replicas in sync than assigned, and partitions with no
    /// leader, in the last sample (none when it is not current).
    pub fn replica_trouble(&self) -> (usize, usize) {
        if self.at.is_none() {
            return (0, 0);
        }
        let known = self.rows.iter().filter_map(|r| r.replicas.as_ref());
        known.fold((0, 0), |(under, none), r| match r.leader {
            None => (under, none + 1),
            Some(_) if r.under_replicated() => (under + 1, none),
            Some(_) => (under, none),
        })
    }

    /// Once a second: the sparkline moves on. True when it shows something.
    /// Adds this second's sample; true while any of the newest `span` is non-zero (the
    /// sparkline still moves).
    pub fn tick(&mut self, span: usize) -> bool {
        if let Some(l) = self.total() {
            push_sample(&mut self.history, l, HISTORY);
        }
        self.history.iter().rev().take(span).any(|n| *n > 0)
    }

    /// The selected partition's row, tab-separated, for the clipboard.
    pub fn selected_text(&self) -> Option<String> {
        let l = self.rows.get(self.selected)?;
        Some(format!(
            "partition\tcommitted\thigh\tlag\n{}\t{}\t{}\t{}",
            l.lag.partition,
            l.lag.committed.map_or("none".into(), |c| c.to_string()),
            l.lag.high,
            l.lag.lag.map_or("unknown".into(), |n| n.to_string())
        ))
    }
}
