//! The dead-letter view's state: messages the broker does not serve (blocking a
//! partition; they can be skipped) and the messages and records set aside with their
//! reasons (they can be re-driven), one list with a selection.

use wmtop_core::clickhouse::DeadLetterEntry;
use wmtop_core::load::events::Stuck;

/// One line of the list.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'a> {
    /// A message the broker does not serve: the partition waits on it.
    Unserved(&'a Stuck),
    /// A message or record set aside.
    SetAside(&'a DeadLetterEntry),
}

/// The dead-letter view.
#[derive(Default)]
pub struct DeadLettersState {
    /// Messages the broker does not serve, as the consumer last reported them.
    pub unserved: Vec<Stuck>,
    /// The set-aside listing; None while it is read.
    pub listed: Option<Result<Vec<DeadLetterEntry>, String>>,
    /// A re-drive ran: the listing is read again when it lands.
    pub loading: bool,
    pub selected: usize,
}

impl DeadLettersState {
    pub fn open(&mut self) {
        self.listed = None;
        self.selected = 0;
    }

    /// Closing drops the listing: nothing read for the view is kept.
    pub fn close(&mut self) {
        self.listed = None;
        self.loading = false;
    }

    pub fn on_listed(&mut self, list: Result<Vec<DeadLetterEntry>, String>) {
        self.listed = Some(list);
        self.loading = false;
        self.selected = self.selected.min(self.len().saturating_sub(1));
    }

    pub fn entries(&self) -> Vec<Entry<'_>> {
        let set_aside = match &self.listed {
            Some(Ok(l)) => l.as_slice(),
            _ => &[],
        };
        self.unserved
            .iter()
            .map(Entry::Unserved)
            .chain(set_aside.iter().map(Entry::SetAside))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn move_by(&mut self, delta: isize) {
        let n = self.len();
        self.selected =
            (self.selected as isize + delta).clamp(0, n.saturating_sub(1) as isize) as usize;
    }

    /// Whole messages set aside (what a re-drive publishes again).
    pub fn set_aside_messages(&self) -> usize {
        self.entries()
            .iter()
            .filter(|e| matches!(e, Entry::SetAside(_)))
            .count()
    }

    /// The selected message the broker does not serve, if that is what is selected.
    pub fn selected_stuck(&self) -> Option<(i32, i64)> {
        match self.entries().get(self.selected)? {
            Entry::Unserved(s) => Some((s.partition, s.offset)),
            Entry::SetAside(_) => None,
        }
    }

    /// The selected entry as text: where it is, why, and its payload preview.
    pub fn selected_text(&self) -> Option<String> {
        Some(match self.entries().get(self.selected)? {
            Entry::Unserved(s) => format!(
                "partition {} offset {}: not served by the broker (high watermark {})",
                s.partition, s.offset, s.high
            ),
            Entry::SetAside(e) => format!(
                "partition {} offset {} record {}: {}\n{}",
                e.kafka_partition, e.kafka_offset, e.record_index, e.reason, e.payload_preview
            ),
        })
    }
}
