//! Schema drift: record fields the table has no column for starting to arrive, and
//! columns that used to arrive and stopped, each reported once with where and when it
//! was first seen.

use std::collections::BTreeSet;

use crate::load::events::Drift;
use crate::record::columns::{Kind, COLUMNS};
use crate::record::flatten::Flattened;

/// Records a message needs before a column absent from all of them counts as drift.
const DRIFT_MIN_RECORDS: usize = 5;

/// What has been seen so far.
#[derive(Default)]
pub struct DriftWatch {
    pub unknown: BTreeSet<String>,
    seen_columns: u128,
    reported_missing: u128,
}

impl DriftWatch {
    /// A new finding in this message, if any. A column counts as stopped when a message
    /// of at least [`DRIFT_MIN_RECORDS`] records has it in none of them after earlier
    /// messages had it.
    pub fn note(&mut self, f: &Flattened, partition: i32, offset: i64) -> Option<Drift> {
        let added: Vec<String> = f
            .unknown_fields
            .difference(&self.unknown)
            .cloned()
            .collect();
        let mut missing = Vec::new();
        if f.records >= DRIFT_MIN_RECORDS {
            let gone = self.seen_columns & !f.present_columns & !self.reported_missing;
            for (i, c) in COLUMNS.iter().enumerate() {
                if gone & (1 << i) != 0 && c.kind != Kind::Id {
                    missing.push(c.json.to_string());
                    self.reported_missing |= 1 << i;
                }
            }
        }
        self.seen_columns |= f.present_columns;
        // A column that is back may be reported again if it goes away again.
        self.reported_missing &= !f.present_columns;
        if added.is_empty() && missing.is_empty() {
            return None;
        }
        self.unknown.extend(added.iter().cloned());
        Some(Drift {
            added,
            missing,
            partition,
            offset,
            since: jiff::Timestamp::now().to_string(),
        })
    }
}
