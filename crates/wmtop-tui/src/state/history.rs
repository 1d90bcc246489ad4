//! The per-second samples behind the sparklines: five minutes of them, oldest first.

use std::collections::VecDeque;

/// Samples kept for sparklines: five minutes at one per second.
pub const HISTORY: usize = 300;

/// Appends a sample, dropping the oldest beyond `cap`.
pub fn push_sample(v: &mut VecDeque<u64>, x: u64, cap: usize) {
    if v.len() == cap {
        v.pop_front();
    }
    v.push_back(x);
}
