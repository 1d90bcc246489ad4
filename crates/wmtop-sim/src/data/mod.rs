//! The simulator's data: deterministic transactions and their hourly records, every field
//! of contract section 3 (except `ingestion_time`), mutually consistent. This file owns
//! the record types and assembles them; names, traffic and budget arithmetic are in
//! [`names`], [`traffic`] and [`budget`].
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

pub(crate) mod budget;
mod names;
mod traffic;

use std::collections::HashSet;

use serde::Serialize;

use crate::config::SimConfig;
use crate::config::HOUR_MS;
use crate::rng::{hash_words, SplitMix64};
use budget::{breaches, health, round4, severity, Budget, PERCENTILES};
use names::{alias_of, transaction_name};
use traffic::{hours_of, live_hour, Hour, Profile};

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

/// What one hour's record is computed from: the figures and budgets of transaction `p`
/// for hour `h`.
struct Derived {
    total: i64,
    errors: i64,
    success: i64,
    avg: f64,
    pct: [f64; 8],
    slo: f64,
    aspirational_slo: f64,
    eb: Budget,
    aeb: Budget,
    target: f64,
    aspirational_target: f64,
    breach: i64,
    rb: Budget,
    arb: Budget,
    response_error_rate: f64,
    timeliness: f64,
    aspirational_timeliness: f64,
    h_time: &'static str,
    h_resp: &'static str,
    h_eb: &'static str,
    h_aresp: &'static str,
    h_aeb: &'static str,
    eb_breached: bool,
    response_breached: bool,
}

fn derive(p: &Profile, h: &Hour) -> Derived {
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

    Derived {
        total,
        errors,
        success,
        avg,
        pct,
        slo,
        aspirational_slo,
        eb,
        aeb,
        target,
        aspirational_target,
        breach,
        rb,
        arb,
        response_error_rate,
        timeliness,
        aspirational_timeliness,
        h_time,
        h_resp,
        h_eb,
        h_aresp,
        h_aeb,
        eb_breached,
        response_breached,
    }
}

/// One hourly record of transaction `p` for hour `h`, with its identifiers when the
/// transaction repeats them on its records.
fn record(p: &Profile, h: &Hour, ids: Option<(&str, u64)>, fmt: &HourFormatter) -> SimRecord {
    let d = derive(p, h);
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
        sum_response_time: round4(d.avg * d.total as f64),
        avg_response_time: d.avg,
        total_count: d.total,
        success_count: d.success,
        error_count: d.errors,
        success_rate: round4(d.success as f64 / d.total as f64 * 100.0),
        error_rate: round4(d.errors as f64 / d.total as f64 * 100.0),
        total_data_points: 60,
        short_target_slo: d.slo,
        eb_allocated_percent: d.eb.allocated_percent,
        eb_allocated_count: d.eb.allocated,
        eb_consumed_percent: d.eb.consumed_percent,
        eb_consumed_count: d.eb.consumed,
        eb_actual_consumed_percent: d.eb.actual_consumed_percent,
        eb_left_percent: d.eb.left_percent,
        eb_left_count: d.eb.left,
        aspirational_slo: d.aspirational_slo,
        aspirational_eb_allocated_percent: d.aeb.allocated_percent,
        aspirational_eb_allocated_count: d.aeb.allocated,
        aspirational_eb_consumed_percent: d.aeb.consumed_percent,
        aspirational_eb_consumed_count: d.aeb.consumed,
        aspirational_eb_actual_consumed_percent: d.aeb.actual_consumed_percent,
        aspirational_eb_left_percent: d.aeb.left_percent,
        aspirational_eb_left_count: d.aeb.left,
        response_breach_count: d.breach,
        response_error_rate: d.response_error_rate,
        response_success_rate: round4(100.0 - d.response_error_rate),
        response_slo: p.response_slo,
        response_target_percent: d.target,
        response_allocated_percent: d.rb.allocated_percent,
        response_allocated_count: d.rb.allocated,
        response_consumed_percent: d.rb.consumed_percent,
        response_consumed_count: d.rb.consumed,
        response_actual_consumed_percent: d.rb.actual_consumed_percent,
        response_left_percent: d.rb.left_percent,
        response_left_count: d.rb.left,
        aspirational_response_slo: p.aspirational_response_slo,
        aspirational_response_target_percent: d.aspirational_target,
        aspirational_response_allocated_percent: d.arb.allocated_percent,
        aspirational_response_allocated_count: d.arb.allocated,
        aspirational_response_consumed_percent: d.arb.consumed_percent,
        aspirational_response_consumed_count: d.arb.consumed,
        aspirational_response_actual_consumed_percent: d.arb.actual_consumed_percent,
        aspirational_response_left_percent: d.arb.left_percent,
        aspirational_response_left_count: d.arb.left,
        timeliness_consumed_percent: d.timeliness,
        aspirational_timeliness_consumed_percent: d.aspirational_timeliness,
        timeliness_health: d.h_time.to_string(),
        response_health: d.h_resp.to_string(),
        eb_health: d.h_eb.to_string(),
        aspirational_response_health: d.h_aresp.to_string(),
        aspirational_eb_health: d.h_aeb.to_string(),
        timeliness_severity: severity(d.h_time).to_string(),
        response_severity: severity(d.h_resp).to_string(),
        eb_severity: severity(d.h_eb).to_string(),
        aspirational_response_severity: severity(d.h_aresp).to_string(),
        aspirational_eb_severity: severity(d.h_aeb).to_string(),
        eb_breached: d.eb_breached,
        response_breached: d.response_breached,
        eb_or_response_breached: d.eb_breached || d.response_breached,
        percentile_25: d.pct[0],
        percentile_50: d.pct[1],
        percentile_75: d.pct[2],
        percentile_80: d.pct[3],
        percentile_85: d.pct[4],
        percentile_90: d.pct[5],
        percentile_95: d.pct[6],
        percentile_99: d.pct[7],
    }
}

/// The data the API serves for the configured window (before any fault is applied):
/// deterministic from the seed.
pub fn dataset(cfg: &SimConfig) -> Vec<SimTransaction> {
    transactions(cfg, |_, profile, rng| hours_of(profile, cfg, rng))
}

/// What a live API's clock reads at one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveView {
    /// The first hour it has data for.
    pub first_ms: i64,
    /// Its current hour (the last it serves).
    pub current_ms: i64,
    /// Hours (counting the current one) whose figures still move.
    pub revise_hours: u32,
    /// Which request this is: revisable hours differ from one to the next.
    pub revision: u64,
}

/// The data a live API serves for `[start, end]` at `view`: hours from its first to its
/// current one, each drawn from the hour itself, the last `revise_hours` moved by the
/// revision; transactions with no traffic in the window are empty.
pub fn live_dataset(cfg: &SimConfig, view: &LiveView, start: i64, end: i64) -> Vec<SimTransaction> {
    let from = start.max(view.first_ms).div_euclid(HOUR_MS) * HOUR_MS;
    let to = end.min(view.current_ms);
    let revisable_from = view.current_ms - i64::from(view.revise_hours) * HOUR_MS;
    transactions(cfg, |i, profile, _| {
        let mut hours = Vec::new();
        let mut ts = from;
        while ts <= to {
            if ts >= start {
                let revision = (ts > revisable_from).then_some(view.revision);
                if let Some(h) = live_hour(profile, [cfg.seed, i as u64], ts, revision) {
                    hours.push(h);
                }
            }
            ts += HOUR_MS;
        }
        hours
    })
}

/// Every transaction with the hours `hours_for` gives it (its index, profile and the
/// rng its profile was drawn from).
fn transactions(
    cfg: &SimConfig,
    mut hours_for: impl FnMut(usize, &Profile, &mut SplitMix64) -> Vec<Hour>,
) -> Vec<SimTransaction> {
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
            let records = hours_for(i, &profile, &mut rng)
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
