//! The arithmetic of the records' budgets and latencies: an error or response budget from
//! its allocated percent and what was consumed ([`Budget`]), health and severity from a
//! consumed percent, the percentiles' place in the log-normal latency model and the
//! requests slower than a threshold read off it, and rounding to 4 decimals.

/// The percentiles' standard-normal quantiles and the share of requests above each.
pub(crate) const PERCENTILES: [(f64, f64); 8] = [
    (-0.674_489_750_196_081_7, 0.75),
    (0.0, 0.50),
    (0.674_489_750_196_081_7, 0.25),
    (0.841_621_233_572_914_3, 0.20),
    (1.036_433_389_493_789_6, 0.15),
    (1.281_551_565_544_600_5, 0.10),
    (1.644_853_626_951_472_2, 0.05),
    (2.326_347_874_040_841, 0.01),
];

/// Rounds to 4 decimals.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// `floor(total * percent / 100)` computed exactly for a percent with at most 4 decimals.
pub fn allocated_count(total: i64, percent: f64) -> i64 {
    let scaled = (percent * 10_000.0).round() as i64; // percent in units of 1e-4
    total.saturating_mul(scaled) / 1_000_000
}

/// Consumed percent of a budget; 0 when nothing is allocated nor consumed, 100 when nothing
/// is allocated but something was consumed.
pub fn consumed_percent(consumed: i64, allocated: i64) -> f64 {
    if allocated <= 0 {
        if consumed > 0 {
            100.0
        } else {
            0.0
        }
    } else {
        round4(consumed as f64 / allocated as f64 * 100.0)
    }
}

/// Health for a consumed percent.
pub fn health(consumed_percent: f64) -> &'static str {
    if consumed_percent < 50.0 {
        "HEALTHY"
    } else if consumed_percent < 100.0 {
        "WARNING"
    } else {
        "UNHEALTHY"
    }
}

/// The colour for a health.
pub fn severity(health: &str) -> &'static str {
    match health {
        "HEALTHY" => "GREEN",
        "WARNING" => "AMBER",
        _ => "RED",
    }
}

/// The standard normal survival function 1 - Φ(z) (Abramowitz-Stegun 7.1.26, |error| < 1e-7).
fn normal_sf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    let upper = 0.5 * erfc;
    if z >= 0.0 {
        upper
    } else {
        1.0 - upper
    }
}

/// Requests slower than `threshold` out of `total`, for log-normal latencies with median
/// `median` and shape `sigma`, kept between the shares of the percentiles around the threshold.
pub(super) fn breaches(total: i64, threshold: f64, median: f64, sigma: f64, pct: &[f64; 8]) -> i64 {
    let mut hi: f64 = 1.0;
    let mut lo: f64 = 0.0;
    for (p, (_, tail)) in pct.iter().zip(PERCENTILES.iter()) {
        if *p <= threshold {
            hi = hi.min(*tail);
        }
        if *p >= threshold {
            lo = lo.max(*tail);
        }
    }
    let z = (threshold / median).ln() / sigma;
    let share = normal_sf(z).clamp(lo, hi.max(lo));
    ((share * total as f64).round() as i64).clamp(0, total)
}

/// One error or response budget, computed from its allocated percent and consumed count.
pub(super) struct Budget {
    pub(super) allocated_percent: f64,
    pub(super) allocated: i64,
    pub(super) consumed: i64,
    pub(super) consumed_percent: f64,
    pub(super) actual_consumed_percent: f64,
    pub(super) left_percent: f64,
    pub(super) left: i64,
}

impl Budget {
    pub(super) fn new(total: i64, allocated_percent: f64, consumed: i64) -> Self {
        let allocated_percent = round4(allocated_percent);
        let allocated = allocated_count(total, allocated_percent);
        let consumed_pct = consumed_percent(consumed, allocated);
        Self {
            allocated_percent,
            allocated,
            consumed,
            consumed_percent: consumed_pct,
            actual_consumed_percent: round4(consumed as f64 / total as f64 * 100.0),
            left_percent: round4(100.0 - consumed_pct),
            left: allocated - consumed,
        }
    }
}
