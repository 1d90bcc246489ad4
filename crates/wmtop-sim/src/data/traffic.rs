//! What a transaction is like and the traffic it has: a profile drawn once from the seed
//! (volume, error level, latency, SLOs, phase of its day), and from it the hours with
//! traffic, each hour's request and error counts and average latency, following a
//! day/night cycle in the records' timezone with occasional spikes.

use crate::config::{SimConfig, HOUR_MS};
use crate::rng::{hash_words, SplitMix64};

/// What a transaction is like: fixed for all its hours.
pub(super) struct Profile {
    always_on: bool,
    traffic_prob: f64,
    base_volume: f64,
    error_level: f64,
    spiky: bool,
    base_latency: f64,
    pub(super) sigma: f64,
    pub(super) slo: f64,
    pub(super) response_target: f64,
    pub(super) response_slo: f64,
    pub(super) aspirational_response_slo: f64,
    phase: f64,
}

impl Profile {
    pub(super) fn draw(rng: &mut SplitMix64) -> Self {
        let always_on = rng.chance(0.4);
        let traffic_prob = rng.range(0.05, 0.9);
        let base_volume = rng.log_range(50.0, 50_000.0);
        let error_level = rng.log_range(0.0005, 0.03);
        let spiky = rng.chance(0.3);
        let base_latency = rng.log_range(20.0, 800.0);
        let sigma = rng.range(0.25, 0.7);
        // Most teams pick an SLO their service can meet (a budget at least twice the usual
        // error level); the rest pick at random, and some of those live over budget.
        let fitting = [99.9, 99.5, 99.0]
            .into_iter()
            .find(|slo| (100.0 - slo) / 100.0 >= 2.0 * error_level)
            .unwrap_or(99.0);
        let slo = if rng.chance(0.75) {
            fitting
        } else {
            [99.0, 99.5, 99.9][rng.index(3)]
        };
        let response_target = [95.0, 99.0][rng.index(2)];
        // The threshold sits at a z-score around the target's quantile, so some transactions
        // keep within their response budget and some do not.
        let z = if response_target >= 99.0 {
            rng.range(1.9, 3.2)
        } else {
            rng.range(1.3, 2.6)
        };
        let median = base_latency / (sigma * sigma / 2.0).exp();
        let response_slo = (median * (sigma * z).exp()).round().max(2.0);
        let aspirational_response_slo = (response_slo * 0.8).round().max(1.0);
        let phase = rng.range(-2.0, 2.0);
        Self {
            always_on,
            traffic_prob,
            base_volume,
            error_level,
            spiky,
            base_latency,
            sigma,
            slo,
            response_target,
            response_slo,
            aspirational_response_slo,
            phase,
        }
    }
}

/// Inputs of one hourly record.
pub(super) struct Hour {
    pub(super) timestamp: i64,
    pub(super) total: i64,
    pub(super) errors: i64,
    pub(super) avg: f64,
}

/// One hour's random draws, in the order the hours are drawn.
struct Draws {
    noise_volume: f64,
    noise_errors: f64,
    spike: bool,
    spike_factor: f64,
    round_up: f64,
    noise_latency: f64,
    latency_spike: bool,
    latency_spike_factor: f64,
}

impl Draws {
    fn draw(p: &Profile, rng: &mut SplitMix64) -> Draws {
        Draws {
            noise_volume: rng.range(0.8, 1.2),
            noise_errors: rng.range(0.5, 1.5),
            spike: p.spiky && rng.chance(0.04),
            spike_factor: rng.range(5.0, 25.0),
            round_up: rng.next_f64(),
            noise_latency: rng.range(0.9, 1.1),
            latency_spike: rng.chance(0.02),
            latency_spike_factor: rng.range(1.5, 3.0),
        }
    }
}

/// The hours transaction `p` has traffic in, and each hour's counts and latency.
pub(super) fn hours_of(p: &Profile, cfg: &SimConfig, rng: &mut SplitMix64) -> Vec<Hour> {
    let n = cfg.hours;
    let mut active: Vec<bool> = (0..n)
        .map(|_| p.always_on || rng.chance(p.traffic_prob))
        .collect();
    if n > 0 && !active.iter().any(|a| *a) {
        let h = rng.index(n);
        active[h] = true;
    }
    let mut out = Vec::new();
    for (h, on) in active.iter().enumerate() {
        // Draw every hour's noise even when idle, so an hour's values do not depend on
        // which other hours had traffic.
        let d = Draws::draw(p, rng);
        if *on {
            out.push(hour(p, cfg.start_ms + h as i64 * HOUR_MS, &d));
        }
    }
    out
}

/// One hour of a live API: drawn from the hour itself (so any window gives the same
/// hours), and, while the hour may still be revised, moved by `revision`.
pub(super) fn live_hour(
    p: &Profile,
    words: [u64; 2],
    timestamp: i64,
    revision: Option<u64>,
) -> Option<Hour> {
    let mut rng = SplitMix64::new(hash_words(&[
        words[0],
        words[1],
        timestamp as u64,
        0x6c69_7665,
    ]));
    if !(p.always_on || rng.chance(p.traffic_prob)) {
        return None;
    }
    let mut d = Draws::draw(p, &mut rng);
    if let Some(r) = revision {
        // Still being counted: the API's figures for the hour move between requests.
        let mut rev = SplitMix64::new(hash_words(&[words[0], words[1], timestamp as u64, r]));
        d.noise_volume *= rev.range(0.85, 1.15);
        d.round_up = rev.next_f64();
        d.noise_latency *= rev.range(0.95, 1.05);
    }
    Some(hour(p, timestamp, &d))
}

/// An hour's counts and latency from its draws.
fn hour(p: &Profile, timestamp: i64, d: &Draws) -> Hour {
    // Local (UTC+05:30) hour of day, for the day/night cycle peaking in the afternoon.
    let local_hour = ((timestamp + 19_800_000).rem_euclid(24 * HOUR_MS) / HOUR_MS) as f64;
    let angle = 2.0 * std::f64::consts::PI * (local_hour - 9.0 - p.phase) / 24.0;
    let load = 0.55 + 0.45 * angle.sin(); // 0.1 ..= 1.0
    let total = ((p.base_volume * load * d.noise_volume).round() as i64).max(1);
    let mut rate = p.error_level * d.noise_errors;
    if d.spike {
        rate *= d.spike_factor;
    }
    let expected = total as f64 * rate.min(0.5);
    let mut errors = expected.floor() as i64;
    if d.round_up < expected - expected.floor() {
        errors += 1;
    }
    let errors = errors.clamp(0, total);
    let mut avg = p.base_latency * (0.85 + 0.3 * load) * d.noise_latency;
    if d.latency_spike {
        avg *= d.latency_spike_factor;
    }
    Hour {
        timestamp,
        total,
        errors,
        avg,
    }
}
