//! The batch-flushes pane's state: the newest flushes first (a thousand at most), the
//! run's totals, an insert being retried, and five minutes of rows per second.

use std::collections::VecDeque;
use std::time::Duration;

use super::history::{push_sample, HISTORY};

/// One flush, as the flushes pane lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct FlushRow {
    pub at: jiff::Timestamp,
    /// Rows written.
    pub rows: usize,
    /// Rows already stored with the same content (not written).
    pub unchanged: usize,
    /// Of the rows written, those over an hour the API revised.
    pub revised: usize,
    pub bytes: usize,
    pub took: Duration,
    pub offsets: Vec<(i32, i64, i64)>,
    pub retries: u32,
    pub dead_letters: usize,
}

/// Running totals of this run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub batches: u64,
    pub rows: u64,
    pub bytes: u64,
    pub retries: u64,
    pub dead_letters: u64,
    pub fetches: u64,
    pub published: u64,
}

const MAX_FLUSHES: usize = 1000;

/// The flushes pane.
#[derive(Default)]
pub struct FlushesState {
    pub rows: VecDeque<FlushRow>,
    pub totals: Totals,
    pub per_second: VecDeque<u64>,
    this_second: u64,
    /// An insert failing and being retried: attempt and error.
    pub retrying: Option<(u32, String)>,
    pub selected: usize,
    /// The last reload's cycle, as one line: what was asked, new, revised, unchanged.
    pub last_cycle: Option<String>,
}

impl FlushesState {
    pub fn on_flushed(&mut self, row: FlushRow) {
        self.retrying = None;
        let t = &mut self.totals;
        t.batches += 1;
        t.rows += row.rows as u64;
        t.bytes += row.bytes as u64;
        t.retries += u64::from(row.retries);
        t.dead_letters += row.dead_letters as u64;
        self.this_second += row.rows as u64;
        self.rows.push_front(row);
        self.rows.truncate(MAX_FLUSHES);
        // The selection stays on the flush it was on.
        if self.selected > 0 {
            self.selected = (self.selected + 1).min(self.rows.len() - 1);
        }
    }

    /// A flush within the last three seconds.
    pub fn recent(&self) -> bool {
        self.rows.front().is_some_and(|f| {
            jiff::Timestamp::now().duration_since(f.at) < jiff::SignedDuration::from_secs(3)
        })
    }

    /// Once a second: the sparkline moves on. True when it shows something.
    /// Adds this second's sample; true while any of the newest `span` is non-zero (the
    /// sparkline still moves).
    pub fn tick(&mut self, span: usize) -> bool {
        push_sample(&mut self.per_second, self.this_second, HISTORY);
        self.this_second = 0;
        self.per_second.iter().rev().take(span).any(|n| *n > 0)
    }

    /// The selected flush, tab-separated, for the clipboard.
    pub fn selected_text(&self) -> Option<String> {
        let f = self.rows.get(self.selected)?;
        Some(format!(
            "time\trows\tunchanged\tbytes\ttook_ms\toffsets\n{}\t{}\t{}\t{}\t{}\t{}",
            f.at,
            f.rows,
            f.unchanged,
            f.bytes,
            f.took.as_millis(),
            crate::text::offsets_full(&f.offsets)
        ))
    }
}
