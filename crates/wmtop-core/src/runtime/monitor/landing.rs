//! What the consumer has landed, as a running tally a reload waits on: the offsets
//! committed per partition, the rows written (new or over a revised hour), left
//! unchanged and set aside, and whether a settle has followed the last flush. A cycle
//! ends once its messages are committed and settled; its figures are the tally's growth.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use crate::load::events::Event;

/// The consumer's landings so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Landing {
    /// The next offset to read, per partition, as committed after a flush.
    pub committed: BTreeMap<i32, i64>,
    /// Rows written.
    pub rows: u64,
    /// Of those, rows over an hour stored with other content (the API revised it).
    pub revised: u64,
    /// Rows not written: stored with the same content already.
    pub unchanged: u64,
    /// Messages and records set aside.
    pub set_aside: u64,
    /// A batch landed and no settle has followed yet.
    pub unsettled: bool,
}

impl Landing {
    /// Takes in a consumer event; true when it changed the tally.
    pub(super) fn observe(&mut self, e: &Event) -> bool {
        match e {
            Event::Flushed {
                rows,
                unchanged,
                replaced,
                dead_letters,
                offsets,
                ..
            } => {
                for &(p, _, last) in offsets {
                    let next = self.committed.entry(p).or_insert(last + 1);
                    *next = (*next).max(last + 1);
                }
                self.rows += *rows as u64;
                self.revised += *replaced as u64;
                self.unchanged += *unchanged as u64;
                self.set_aside += *dead_letters as u64;
                self.unsettled = true;
                true
            }
            Event::Settled(_) => {
                let was = self.unsettled;
                self.unsettled = false;
                was
            }
            _ => false,
        }
    }

    /// Every message up to `last` (per partition) is committed and settled.
    pub fn covers(&self, last: &BTreeMap<i32, i64>) -> bool {
        !self.unsettled
            && last
                .iter()
                .all(|(p, off)| self.committed.get(p).is_some_and(|next| next > off))
    }

    /// The rows landed since `before`: (new, revised, unchanged, set aside).
    pub fn since(&self, before: &Landing) -> (u64, u64, u64, u64) {
        let rows = self.rows.saturating_sub(before.rows);
        let revised = self.revised.saturating_sub(before.revised);
        (
            rows.saturating_sub(revised),
            revised,
            self.unchanged.saturating_sub(before.unchanged),
            self.set_aside.saturating_sub(before.set_aside),
        )
    }
}

/// Waits until `last` is landed. The clock restarts whenever the consumer lands
/// something, so a long backlog being worked through is not given up on; `limit` without
/// any landing is.
pub(super) async fn wait_landed(
    landing: &mut watch::Receiver<Landing>,
    last: &BTreeMap<i32, i64>,
    limit: Duration,
) -> Result<(), String> {
    loop {
        if landing.borrow_and_update().covers(last) {
            return Ok(());
        }
        match tokio::time::timeout(limit, landing.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("the consumer stopped".into()),
            Err(_) => {
                return Err(format!(
                    "the consumer landed nothing for {}s while the messages just published waited (is it paused, or is ClickHouse down?)",
                    limit.as_secs()
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flushed(
        rows: usize,
        replaced: usize,
        unchanged: usize,
        offsets: Vec<(i32, i64, i64)>,
    ) -> Event {
        Event::Flushed {
            rows,
            unchanged,
            replaced,
            messages: offsets.len(),
            bytes: 0,
            dead_letters: 0,
            took: Duration::ZERO,
            retries: 0,
            offsets,
            per_transaction: vec![],
        }
    }

    #[test]
    fn a_cycle_is_landed_once_its_offsets_are_committed_and_settled() {
        let mut l = Landing::default();
        let before = l.clone();
        let last = BTreeMap::from([(0, 4), (1, 9)]);
        assert!(!l.covers(&last));
        assert!(l.observe(&flushed(10, 3, 5, vec![(0, 0, 4)])));
        assert!(!l.covers(&last), "partition 1 is not committed yet");
        l.observe(&flushed(2, 0, 0, vec![(1, 5, 9)]));
        assert!(!l.covers(&last), "not settled yet");
        assert!(l.observe(&Event::Settled(Default::default())));
        assert!(l.covers(&last));
        assert_eq!(l.since(&before), (9, 3, 5, 0));
        // A later flush of an older offset (a replay) does not move a partition back.
        l.observe(&flushed(1, 0, 0, vec![(1, 0, 0)]));
        assert_eq!(l.committed[&1], 10);
    }
}
