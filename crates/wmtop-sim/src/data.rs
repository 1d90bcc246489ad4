//! The simulator's data: deterministic transactions and their hourly records, every field
//! of contract section 3 (except `ingestion_time`), mutually consistent.
//!
//! Rules the records follow (checked by the tests on every record):
//! - counts: `success_count = total_count - error_count`, rates are percents of `total_count`;
//!   `sum_response_time = avg_response_time * total_count`; `total_data_points` is 60.
//! - percentiles come from a log-normal latency model around `avg_response_time` and are
//!   strictly increasing; `response_breach_count` is the share of requests slower than
//!   `response_slo` read off that model and clamped between the percentiles the threshold
//!   falls between (threshold above `percentile_99` ⇒ at most 1% of requests breach).
//! - a budget's allocated count is `floor(total * allocated_percent / 100)`, consumed count
//!   the errors (or breaches), left count `allocated - consumed` (may be negative),
//!   consumed percent `consumed / allocated * 100`; **when nothing is allocated, the consumed
//!   percent is 0 if nothing was consumed and 100 otherwise** (the budget counts as exhausted);
//!   left percent is `100 - consumed percent`.
//! - health from a consumed percent: below 50 HEALTHY/GREEN, below 100 WARNING/AMBER, else
//!   UNHEALTHY/RED; a budget is breached at 100% consumed or more.
//! - floats are rounded to 4 decimals.

use std::collections::HashSet;

use serde::Serialize;

use super::rng::{hash_words, SplitMix64};
use super::SimConfig;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The records' timezone.
pub const TIMEZONE: &str = "Asia/Kolkata";

/// One transaction (service endpoint) and its hourly records, ordered by time.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimTransaction {
    /// `transactionName`, e.g. "GET /api/orders/{id}"; unique.
    #[serde(rename = "transactionName")]
    pub name: String,
    /// `transactionId`: 100000 + index.
    pub transaction_id: u64,
    /// `applicationId`, from the configuration.
    pub application_id: u64,
    /// `applicationName`, from the configuration.
    pub application_name: String,
    /// A short slug of the name.
    pub alias: String,
    /// The hourly records, `transactionSeries` on the wire.
    #[serde(rename = "transactionSeries")]
    pub records: Vec<SimRecord>,
}

/// One hourly record. Identifiers sit on the transaction; only the records of odd-indexed
/// transactions repeat `transactionName` and `transactionId` (the other identifiers are
/// `None` in every record and left off the wire).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,

    /// The hour's start, epoch milliseconds.
    pub timestamp: i64,
    /// The hour's start in `timezone`, "YYYY-MM-DD HH:MM:SS".
    pub timestamp_str: String,
    /// Same as `timestamp`.
    pub key: i64,

    pub timezone: String,
    pub no_data_found: bool,
    pub index_type: String,
    pub sre_product: String,

    pub sum_response_time: f64,
    pub avg_response_time: f64,
    pub total_count: i64,
    pub success_count: i64,
    pub error_count: i64,
    pub success_rate: f64,
    pub error_rate: f64,
    pub total_data_points: i64,

    pub short_target_slo: f64,
    pub eb_allocated_percent: f64,
    pub eb_allocated_count: i64,
    pub eb_consumed_percent: f64,
    pub eb_consumed_count: i64,
    pub eb_actual_consumed_percent: f64,
    pub eb_left_percent: f64,
    pub eb_left_count: i64,

    pub aspirational_slo: f64,
    pub aspirational_eb_allocated_percent: f64,
    pub aspirational_eb_allocated_count: i64,
    pub aspirational_eb_consumed_percent: f64,
    pub aspirational_eb_consumed_count: i64,
    pub aspirational_eb_actual_consumed_percent: f64,
    pub aspirational_eb_left_percent: f64,
    pub aspirational_eb_left_count: i64,

    pub response_breach_count: i64,
    pub response_error_rate: f64,
    pub response_success_rate: f64,
    pub response_slo: f64,
    pub response_target_percent: f64,
    pub response_allocated_percent: f64,
    pub response_allocated_count: i64,
    pub response_consumed_percent: f64,
    pub response_consumed_count: i64,
    pub response_actual_consumed_percent: f64,
    pub response_left_percent: f64,
    pub response_left_count: i64,

    pub aspirational_response_slo: f64,
    pub aspirational_response_target_percent: f64,
    pub aspirational_response_allocated_percent: f64,
    pub aspirational_response_allocated_count: i64,
    pub aspirational_response_consumed_percent: f64,
    pub aspirational_response_consumed_count: i64,
    pub aspirational_response_actual_consumed_percent: f64,
    pub aspirational_response_left_percent: f64,
    pub aspirational_response_left_count: i64,

    pub timeliness_consumed_percent: f64,
    pub aspirational_timeliness_consumed_percent: f64,

    pub timeliness_health: String,
    pub response_health: String,
    pub eb_health: String,
    pub aspirational_response_health: String,
    pub aspirational_eb_health: String,

    pub timeliness_severity: String,
    pub response_severity: String,
    pub eb_severity: String,
    pub aspirational_response_severity: String,
    pub aspirational_eb_severity: String,

    pub eb_breached: bool,
    pub response_breached: bool,
    pub eb_or_response_breached: bool,

    #[serde(rename = "percentile25")]
    pub percentile_25: f64,
    #[serde(rename = "percentile50")]
    pub percentile_50: f64,
    #[serde(rename = "percentile75")]
    pub percentile_75: f64,
    #[serde(rename = "percentile80")]
    pub percentile_80: f64,
    #[serde(rename = "percentile85")]
    pub percentile_85: f64,
    #[serde(rename = "percentile90")]
    pub percentile_90: f64,
    #[serde(rename = "percentile95")]
    pub percentile_95: f64,
    #[serde(rename = "percentile99")]
    pub percentile_99: f64,
}

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
fn breaches(total: i64, threshold: f64, median: f64, sigma: f64, pct: &[f64; 8]) -> i64 {
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

/// What a transaction is like: fixed for all its hours.
struct Profile {
    always_on: bool,
    traffic_prob: f64,
    base_volume: f64,
    error_level: f64,
    spiky: bool,
    base_latency: f64,
    sigma: f64,
    slo: f64,
    response_target: f64,
    response_slo: f64,
    aspirational_response_slo: f64,
    phase: f64,
}

impl Profile {
    fn draw(rng: &mut SplitMix64) -> Self {
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

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const RESOURCES: [&str; 16] = [
    "orders",
    "users",
    "payments",
    "products",
    "cart",
    "inventory",
    "accounts",
    "sessions",
    "invoices",
    "shipments",
    "reviews",
    "search",
    "notifications",
    "reports",
    "customers",
    "refunds",
];

/// A unique name for transaction `i`.
fn transaction_name(i: usize, rng: &mut SplitMix64, used: &mut HashSet<String>) -> String {
    let method = METHODS[rng.index(METHODS.len())];
    let res = RESOURCES[rng.index(RESOURCES.len())];
    let sub = RESOURCES[rng.index(RESOURCES.len())];
    let path = match rng.index(6) {
        0 => format!("/api/{res}"),
        1 => format!("/api/{res}/{{id}}"),
        2 => format!("/api/v2/{res}"),
        3 => format!("/api/{res}/{{id}}/{sub}"),
        _ => format!("/api/endpoint{}", i + 1),
    };
    let candidate = format!("{method} {path}");
    // Collisions fall back to the endpoint form, which is unique to this index.
    let name = if used.contains(&candidate) {
        format!("{method} /api/endpoint{}", i + 1)
    } else {
        candidate
    };
    used.insert(name.clone());
    name
}

/// "GET /api/orders/{id}" -> "get-orders-id".
fn alias_of(name: &str) -> String {
    let mut out = String::new();
    for part in name.split([' ', '/']) {
        let part: String = part
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if part.is_empty() || part == "api" {
            continue;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&part);
    }
    out
}

/// "YYYY-MM-DD HH:MM:SS" of `ms` in the records' timezone.
struct HourFormatter {
    tz: jiff::tz::TimeZone,
}

impl HourFormatter {
    fn new() -> Self {
        // Asia/Kolkata has been UTC+05:30 without DST since 1945; the fixed offset is the
        // fallback when the system has no timezone database.
        let tz = jiff::tz::TimeZone::get(TIMEZONE).unwrap_or_else(|_| {
            jiff::tz::Offset::from_seconds(19_800)
                .map(jiff::tz::TimeZone::fixed)
                .unwrap_or(jiff::tz::TimeZone::UTC)
        });
        Self { tz }
    }

    fn format(&self, ms: i64) -> String {
        match jiff::Timestamp::from_millisecond(ms) {
            Ok(ts) => ts
                .to_zoned(self.tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            Err(_) => String::new(),
        }
    }
}

/// Inputs of one hourly record.
struct Hour {
    timestamp: i64,
    total: i64,
    errors: i64,
    avg: f64,
}

/// One error or response budget, computed from its allocated percent and consumed count.
struct Budget {
    allocated_percent: f64,
    allocated: i64,
    consumed: i64,
    consumed_percent: f64,
    actual_consumed_percent: f64,
    left_percent: f64,
    left: i64,
}

impl Budget {
    fn new(total: i64, allocated_percent: f64, consumed: i64) -> Self {
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

fn record(p: &Profile, h: &Hour, ids: Option<(&str, u64)>, fmt: &HourFormatter) -> SimRecord {
    let total = h.total;
    let errors = h.errors;
    let success = total - errors;
    let avg = round4(h.avg);
    let median = avg / (p.sigma * p.sigma / 2.0).exp();
    let mut pct = [0.0; 8];
    for (slot, (z, _)) in pct.iter_mut().zip(PERCENTILES.iter()) {
        *slot = round4(median * (p.sigma * z).exp());
    }

    let slo = p.slo;
    let aspirational_slo = round4((slo + 100.0) / 2.0);
    let eb = Budget::new(total, 100.0 - slo, errors);
    let aeb = Budget::new(total, 100.0 - aspirational_slo, errors);

    let target = p.response_target;
    let aspirational_target = round4((target + 100.0) / 2.0);
    let breach = breaches(total, p.response_slo, median, p.sigma, &pct);
    let abreach = breaches(total, p.aspirational_response_slo, median, p.sigma, &pct);
    let rb = Budget::new(total, 100.0 - target, breach);
    let arb = Budget::new(total, 100.0 - aspirational_target, abreach);
    let response_error_rate = rb.actual_consumed_percent;

    let timeliness = eb.consumed_percent.max(rb.consumed_percent);
    let aspirational_timeliness = aeb.consumed_percent.max(arb.consumed_percent);
    let h_time = health(timeliness);
    let h_resp = health(rb.consumed_percent);
    let h_eb = health(eb.consumed_percent);
    let h_aresp = health(arb.consumed_percent);
    let h_aeb = health(aeb.consumed_percent);
    let eb_breached = eb.consumed_percent >= 100.0;
    let response_breached = rb.consumed_percent >= 100.0;

    SimRecord {
        transaction_name: ids.map(|(n, _)| n.to_string()),
        transaction_id: ids.map(|(_, id)| id),
        application_id: None,
        application_name: None,
        alias: None,
        timestamp: h.timestamp,
        timestamp_str: fmt.format(h.timestamp),
        key: h.timestamp,
        timezone: TIMEZONE.to_string(),
        no_data_found: false,
        index_type: "HOURLY".to_string(),
        sre_product: "Watermelon".to_string(),
        sum_response_time: round4(avg * total as f64),
        avg_response_time: avg,
        total_count: total,
        success_count: success,
        error_count: errors,
        success_rate: round4(success as f64 / total as f64 * 100.0),
        error_rate: round4(errors as f64 / total as f64 * 100.0),
        total_data_points: 60,
        short_target_slo: slo,
        eb_allocated_percent: eb.allocated_percent,
        eb_allocated_count: eb.allocated,
        eb_consumed_percent: eb.consumed_percent,
        eb_consumed_count: eb.consumed,
        eb_actual_consumed_percent: eb.actual_consumed_percent,
        eb_left_percent: eb.left_percent,
        eb_left_count: eb.left,
        aspirational_slo,
        aspirational_eb_allocated_percent: aeb.allocated_percent,
        aspirational_eb_allocated_count: aeb.allocated,
        aspirational_eb_consumed_percent: aeb.consumed_percent,
        aspirational_eb_consumed_count: aeb.consumed,
        aspirational_eb_actual_consumed_percent: aeb.actual_consumed_percent,
        aspirational_eb_left_percent: aeb.left_percent,
        aspirational_eb_left_count: aeb.left,
        response_breach_count: breach,
        response_error_rate,
        response_success_rate: round4(100.0 - response_error_rate),
        response_slo: p.response_slo,
        response_target_percent: target,
        response_allocated_percent: rb.allocated_percent,
        response_allocated_count: rb.allocated,
        response_consumed_percent: rb.consumed_percent,
        response_consumed_count: rb.consumed,
        response_actual_consumed_percent: rb.actual_consumed_percent,
        response_left_percent: rb.left_percent,
        response_left_count: rb.left,
        aspirational_response_slo: p.aspirational_response_slo,
        aspirational_response_target_percent: aspirational_target,
        aspirational_response_allocated_percent: arb.allocated_percent,
        aspirational_response_allocated_count: arb.allocated,
        aspirational_response_consumed_percent: arb.consumed_percent,
        aspirational_response_consumed_count: arb.consumed,
        aspirational_response_actual_consumed_percent: arb.actual_consumed_percent,
        aspirational_response_left_percent: arb.left_percent,
        aspirational_response_left_count: arb.left,
        timeliness_consumed_percent: timeliness,
        aspirational_timeliness_consumed_percent: aspirational_timeliness,
        timeliness_health: h_time.to_string(),
        response_health: h_resp.to_string(),
        eb_health: h_eb.to_string(),
        aspirational_response_health: h_aresp.to_string(),
        aspirational_eb_health: h_aeb.to_string(),
        timeliness_severity: severity(h_time).to_string(),
        response_severity: severity(h_resp).to_string(),
        eb_severity: severity(h_eb).to_string(),
        aspirational_response_severity: severity(h_aresp).to_string(),
        aspirational_eb_severity: severity(h_aeb).to_string(),
        eb_breached,
        response_breached,
        eb_or_response_breached: eb_breached || response_breached,
        percentile_25: pct[0],
        percentile_50: pct[1],
        percentile_75: pct[2],
        percentile_80: pct[3],
        percentile_85: pct[4],
        percentile_90: pct[5],
        percentile_95: pct[6],
        percentile_99: pct[7],
    }
}

/// The hours transaction `p` has traffic in, and each hour's counts and latency.
fn hours_of(p: &Profile, cfg: &SimConfig, rng: &mut SplitMix64) -> Vec<Hour> {
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
        let noise_volume = rng.range(0.8, 1.2);
        let noise_errors = rng.range(0.5, 1.5);
        let spike = p.spiky && rng.chance(0.04);
        let spike_factor = rng.range(5.0, 25.0);
        let round_up = rng.next_f64();
        let noise_latency = rng.range(0.9, 1.1);
        let latency_spike = rng.chance(0.02);
        let latency_spike_factor = rng.range(1.5, 3.0);
        if !on {
            continue;
        }
        let timestamp = cfg.start_ms + h as i64 * HOUR_MS;
        // Local (UTC+05:30) hour of day, for the day/night cycle peaking in the afternoon.
        let local_hour = ((timestamp + 19_800_000).rem_euclid(24 * HOUR_MS) / HOUR_MS) as f64;
        let angle = 2.0 * std::f64::consts::PI * (local_hour - 9.0 - p.phase) / 24.0;
        let load = 0.55 + 0.45 * angle.sin(); // 0.1 ..= 1.0
        let total = ((p.base_volume * load * noise_volume).round() as i64).max(1);
        let mut rate = p.error_level * noise_errors;
        if spike {
            rate *= spike_factor;
        }
        let expected = total as f64 * rate.min(0.5);
        let mut errors = expected.floor() as i64;
        if round_up < expected - expected.floor() {
            errors += 1;
        }
        let errors = errors.clamp(0, total);
        let mut avg = p.base_latency * (0.85 + 0.3 * load) * noise_latency;
        if latency_spike {
            avg *= latency_spike_factor;
        }
        out.push(Hour {
            timestamp,
            total,
            errors,
            avg,
        });
    }
    out
}

/// The data the API serves for the configured window (before any fault is applied):
/// deterministic from the seed.
pub fn dataset(cfg: &SimConfig) -> Vec<SimTransaction> {
    let fmt = HourFormatter::new();
    let mut names = HashSet::new();
    let mut name_rng = SplitMix64::new(hash_words(&[cfg.seed, 0x6e61_6d65]));
    (0..cfg.transactions)
        .map(|i| {
            let name = transaction_name(i, &mut name_rng, &mut names);
            let mut rng = SplitMix64::new(hash_words(&[cfg.seed, i as u64, 0x7478]));
            let profile = Profile::draw(&mut rng);
            let transaction_id = 100_000 + i as u64;
            let ids = (i % 2 == 1).then_some((name.as_str(), transaction_id));
            let records = hours_of(&profile, cfg, &mut rng)
                .iter()
                .map(|h| record(&profile, h, ids, &fmt))
                .collect();
            SimTransaction {
                alias: alias_of(&name),
                name,
                transaction_id,
                application_id: cfg.application_id,
                application_name: cfg.application_name.clone(),
                records,
            }
        })
        .collect()
}
