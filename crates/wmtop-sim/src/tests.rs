//! Tests of the simulator: the data's rules on every record, the wire names, the fault
//! parsing, and the HTTP behaviour over a raw TCP client.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use wmtop_core::config::secret::Secret;

use super::config::HOUR_MS;
use super::data::budget::{allocated_count, consumed_percent};
use super::*;

fn cfg() -> SimConfig {
    SimConfig::new(Secret::new("s3cret p@ss&=+"))
}

fn small() -> SimConfig {
    SimConfig {
        transactions: 8,
        hours: 48,
        ..cfg()
    }
}

// ---------------------------------------------------------------- data

#[test]
fn dataset_is_deterministic_and_seed_dependent() {
    let a = dataset(&cfg());
    let b = dataset(&cfg());
    assert_eq!(a, b);
    let c = dataset(&SimConfig { seed: 43, ..cfg() });
    assert_ne!(a, c);
    // Another seed changes the values, not just one record.
    let differing = a
        .iter()
        .zip(c.iter())
        .filter(|(x, y)| x.records.len() != y.records.len() || x.name != y.name)
        .count();
    assert!(differing > 60, "only {differing} transactions differ");
}

#[test]
fn default_counts_are_in_range() {
    let data = dataset(&cfg());
    assert_eq!(data.len(), 122);
    let names: HashSet<&str> = data.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), 122, "names must be unique");
    let aliases: HashSet<&str> = data.iter().map(|t| t.alias.as_str()).collect();
    assert_eq!(aliases.len(), 122, "aliases must be unique");
    let methods: HashSet<&str> = data
        .iter()
        .filter_map(|t| t.name.split(' ').next())
        .collect();
    for m in ["GET", "POST", "PUT", "DELETE"] {
        assert!(methods.contains(m), "no {m} transaction");
    }
    let full = data.iter().filter(|t| t.records.len() == 288).count();
    let partial = data.iter().filter(|t| t.records.len() < 288).count();
    assert!(
        (30..=75).contains(&full),
        "{full} transactions are 24/7, expected about 40%"
    );
    assert_eq!(full + partial, 122);
    let total: usize = data.iter().map(|t| t.records.len()).sum();
    assert!(
        (20_000..=35_000).contains(&total),
        "{total} records, expected 21,000-35,000"
    );
    for (i, t) in data.iter().enumerate() {
        assert!((1..=288).contains(&t.records.len()), "{}", t.name);
        assert_eq!(t.transaction_id, 100_000 + i as u64);
        assert_eq!(t.application_id, 31854);
        assert_eq!(t.application_name, "WMPlatform");
        assert!(!t.alias.is_empty() && !t.alias.contains(' '));
        let mut prev = i64::MIN;
        for r in &t.records {
            assert!(r.timestamp > prev, "records must be ordered by time");
            prev = r.timestamp;
            assert_eq!((r.timestamp - 1_767_205_800_000) % HOUR_MS, 0);
            assert!(r.timestamp >= 1_767_205_800_000 && r.timestamp < 1_768_242_600_000);
        }
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn expect_health(p: f64) -> (&'static str, &'static str) {
    if p < 50.0 {
        ("HEALTHY", "GREEN")
    } else if p < 100.0 {
        ("WARNING", "AMBER")
    } else {
        ("UNHEALTHY", "RED")
    }
}

/// Checks one budget: allocated from the percent, consumed percent, left count and percent.
/// `b` is (allocated percent, allocated count, consumed count, consumed percent, left count,
/// left percent), in the records' column order.
fn check_budget(what: &str, total: i64, b: (f64, i64, i64, f64, i64, f64)) {
    let (alloc_pct, alloc, consumed, consumed_pct, left, left_pct) = b;
    let expect_alloc = (total as f64 * alloc_pct / 100.0 + 1e-9).floor() as i64;
    assert_eq!(alloc, expect_alloc, "{what}: allocated count");
    assert_eq!(left, alloc - consumed, "{what}: left count");
    let expect_pct = if alloc == 0 {
        if consumed > 0 {
            100.0
        } else {
            0.0
        }
    } else {
        consumed as f64 / alloc as f64 * 100.0
    };
    assert!(
        close(consumed_pct, expect_pct, 5.1e-5),
        "{what}: consumed {consumed_pct} vs {expect_pct}"
    );
    assert!(
        close(left_pct, 100.0 - consumed_pct, 1e-9),
        "{what}: left percent"
    );
}

/// A threshold between the percentiles bounds the breaches: above p_k means at most
/// (100-k)% of the requests are slower, below p_k at least that.
fn check_breaches(what: &str, total: i64, threshold: f64, breach: i64, pct: &[f64; 8]) {
    let tails = [0.75, 0.5, 0.25, 0.2, 0.15, 0.1, 0.05, 0.01];
    assert!((0..=total).contains(&breach), "{what}: {breach} of {total}");
    for (p, tail) in pct.iter().zip(tails) {
        let at = tail * total as f64;
        if threshold > *p {
            assert!(
                breach as f64 <= at.ceil() + 1e-9,
                "{what}: threshold {threshold} > {p} but {breach}/{total} breach"
            );
        }
        if threshold < *p {
            assert!(
                breach as f64 >= (at - 1e-9).floor(),
                "{what}: threshold {threshold} < {p} but only {breach}/{total} breach"
            );
        }
    }
}

/// A record's identifiers (repeated on odd transactions only), time and metadata.
fn identity_and_time(i: usize, t: &SimTransaction, r: &SimRecord, what: &str) {
    // identifiers
    if i % 2 == 1 {
        assert_eq!(r.transaction_name.as_deref(), Some(t.name.as_str()));
        assert_eq!(r.transaction_id, Some(t.transaction_id));
    } else {
        assert_eq!(r.transaction_name, None);
        assert_eq!(r.transaction_id, None);
    }
    assert_eq!(r.application_id, None);
    // time and metadata
    assert_eq!(r.key, r.timestamp);
    let local_hour = (r.timestamp + 19_800_000).rem_euclid(86_400_000) / HOUR_MS;
    assert_eq!(r.timestamp_str.len(), 19, "{what}");
    assert!(r.timestamp_str.ends_with(":00:00"), "{what}");
    assert_eq!(
        r.timestamp_str[11..13],
        format!("{local_hour:02}"),
        "{what}"
    );
    assert_eq!(r.timezone, "Asia/Kolkata");
    assert!(!r.no_data_found);
    assert_eq!(r.index_type, "HOURLY");
    assert_eq!(r.sre_product, "Watermelon");
}

/// Counts, rates, response times and percentiles; returns the percentiles.
fn performance(r: &SimRecord, what: &str) -> [f64; 8] {
    // performance
    let total = r.total_count;
    assert!(total >= 1, "{what}");
    assert!((0..=total).contains(&r.error_count), "{what}");
    assert_eq!(r.success_count, total - r.error_count, "{what}");
    let tf = total as f64;
    assert!(close(
        r.success_rate,
        r.success_count as f64 / tf * 100.0,
        5.1e-5
    ));
    assert!(close(
        r.error_rate,
        r.error_count as f64 / tf * 100.0,
        5.1e-5
    ));
    assert!(
        close(r.success_rate + r.error_rate, 100.0, 1.1e-4),
        "{what}"
    );
    assert!(
        (20.0 * 0.5..=800.0 * 4.0).contains(&r.avg_response_time),
        "{what}"
    );
    assert!(
        close(
            r.sum_response_time,
            r.avg_response_time * tf,
            5.1e-5 + 1e-9 * r.sum_response_time
        ),
        "{what}: sum {} avg {} total {total}",
        r.sum_response_time,
        r.avg_response_time
    );
    assert_eq!(r.total_data_points, 60);
    // percentiles
    let pct = [
        r.percentile_25,
        r.percentile_50,
        r.percentile_75,
        r.percentile_80,
        r.percentile_85,
        r.percentile_90,
        r.percentile_95,
        r.percentile_99,
    ];
    assert!(pct.windows(2).all(|w| w[0] < w[1]), "{what}: {pct:?}");
    assert!(
        pct[0] < r.avg_response_time && r.avg_response_time < pct[7],
        "{what}"
    );
    pct
}

/// The error budget and its aspirational twin.
fn error_budgets(r: &SimRecord, first: &SimRecord, what: &str) {
    let total = r.total_count;
    // error budget
    assert!([99.0, 99.5, 99.9].contains(&r.short_target_slo), "{what}");
    assert_eq!(
        r.short_target_slo, first.short_target_slo,
        "SLO is per transaction"
    );
    assert!(close(
        r.eb_allocated_percent,
        100.0 - r.short_target_slo,
        1e-9
    ));
    assert_eq!(r.eb_consumed_count, r.error_count);
    assert_eq!(r.eb_actual_consumed_percent, r.error_rate);
    check_budget(
        &format!("{what} eb"),
        total,
        (
            r.eb_allocated_percent,
            r.eb_allocated_count,
            r.eb_consumed_count,
            r.eb_consumed_percent,
            r.eb_left_count,
            r.eb_left_percent,
        ),
    );
    assert!(close(
        r.aspirational_slo,
        (r.short_target_slo + 100.0) / 2.0,
        1e-9
    ));
    assert!(close(
        r.aspirational_eb_allocated_percent,
        100.0 - r.aspirational_slo,
        1e-9
    ));
    assert_eq!(r.aspirational_eb_consumed_count, r.error_count);
    assert_eq!(r.aspirational_eb_actual_consumed_percent, r.error_rate);
    check_budget(
        &format!("{what} aspirational eb"),
        total,
        (
            r.aspirational_eb_allocated_percent,
            r.aspirational_eb_allocated_count,
            r.aspirational_eb_consumed_count,
            r.aspirational_eb_consumed_percent,
            r.aspirational_eb_left_count,
            r.aspirational_eb_left_percent,
        ),
    );
}

/// The response budget and its aspirational twin.
fn response_budgets(r: &SimRecord, first: &SimRecord, what: &str, pct: &[f64; 8]) {
    let total = r.total_count;
    let tf = total as f64;
    // response budget
    assert!([95.0, 99.0].contains(&r.response_target_percent), "{what}");
    assert_eq!(
        r.response_slo, first.response_slo,
        "threshold is per transaction"
    );
    assert!(r.aspirational_response_slo < r.response_slo, "{what}");
    assert!(close(
        r.aspirational_response_target_percent,
        (r.response_target_percent + 100.0) / 2.0,
        1e-9
    ));
    check_breaches(what, total, r.response_slo, r.response_breach_count, pct);
    check_breaches(
        &format!("{what} aspirational"),
        total,
        r.aspirational_response_slo,
        r.aspirational_response_consumed_count,
        pct,
    );
    assert!(r.aspirational_response_consumed_count >= r.response_breach_count);
    assert!(close(
        r.response_error_rate,
        r.response_breach_count as f64 / tf * 100.0,
        5.1e-5
    ));
    assert!(close(
        r.response_success_rate,
        100.0 - r.response_error_rate,
        1e-9
    ));
    assert!(close(
        r.response_allocated_percent,
        100.0 - r.response_target_percent,
        1e-9
    ));
    assert_eq!(r.response_consumed_count, r.response_breach_count);
    assert_eq!(r.response_actual_consumed_percent, r.response_error_rate);
    check_budget(
        &format!("{what} response"),
        total,
        (
            r.response_allocated_percent,
            r.response_allocated_count,
            r.response_consumed_count,
            r.response_consumed_percent,
            r.response_left_count,
            r.response_left_percent,
        ),
    );
    assert!(close(
        r.aspirational_response_allocated_percent,
        100.0 - r.aspirational_response_target_percent,
        1e-9
    ));
    assert!(close(
        r.aspirational_response_actual_consumed_percent,
        r.aspirational_response_consumed_count as f64 / tf * 100.0,
        5.1e-5
    ));
    check_budget(
        &format!("{what} aspirational response"),
        total,
        (
            r.aspirational_response_allocated_percent,
            r.aspirational_response_allocated_count,
            r.aspirational_response_consumed_count,
            r.aspirational_response_consumed_percent,
            r.aspirational_response_left_count,
            r.aspirational_response_left_percent,
        ),
    );
}

/// Timeliness, health, severity and the breach flags.
fn health_and_flags(r: &SimRecord, what: &str) {
    // timeliness, health, severity, flags
    assert_eq!(
        r.timeliness_consumed_percent,
        r.eb_consumed_percent.max(r.response_consumed_percent)
    );
    assert_eq!(
        r.aspirational_timeliness_consumed_percent,
        r.aspirational_eb_consumed_percent
            .max(r.aspirational_response_consumed_percent)
    );
    for (p, h, s) in [
        (
            r.timeliness_consumed_percent,
            &r.timeliness_health,
            &r.timeliness_severity,
        ),
        (
            r.response_consumed_percent,
            &r.response_health,
            &r.response_severity,
        ),
        (r.eb_consumed_percent, &r.eb_health, &r.eb_severity),
        (
            r.aspirational_response_consumed_percent,
            &r.aspirational_response_health,
            &r.aspirational_response_severity,
        ),
        (
            r.aspirational_eb_consumed_percent,
            &r.aspirational_eb_health,
            &r.aspirational_eb_severity,
        ),
    ] {
        let (eh, es) = expect_health(p);
        assert_eq!((h.as_str(), s.as_str()), (eh, es), "{what}: {p}");
    }
}

#[test]
fn every_record_follows_the_rules() {
    let data = dataset(&cfg());
    let mut healths = HashSet::new();
    let (mut eb_breached, mut resp_breached, mut clean) = (0, 0, 0);
    let mut zero_error_hours = 0;
    for (i, t) in data.iter().enumerate() {
        let first = &t.records[0];
        for r in &t.records {
            let what = format!("{} @ {}", t.name, r.timestamp);
            identity_and_time(i, t, r, &what);
            if r.error_count == 0 {
                zero_error_hours += 1;
            }
            let pct = performance(r, &what);
            error_budgets(r, first, &what);
            response_budgets(r, first, &what, &pct);
            health_and_flags(r, &what);
            healths.insert(r.eb_health.clone());
            assert_eq!(r.eb_breached, r.eb_consumed_percent >= 100.0);
            assert_eq!(r.response_breached, r.response_consumed_percent >= 100.0);
            assert_eq!(
                r.eb_or_response_breached,
                r.eb_breached || r.response_breached
            );
            eb_breached += usize::from(r.eb_breached);
            resp_breached += usize::from(r.response_breached);
            clean += usize::from(!r.eb_or_response_breached);
        }
    }
    // A plausible mix, not all-green nor all-red.
    assert_eq!(healths.len(), 3, "{healths:?}");
    assert!(eb_breached > 1000 && resp_breached > 1000 && clean > 1000);
    assert!(zero_error_hours > 100);
}

#[test]
fn first_hour_is_midnight_in_kolkata() {
    let data = dataset(&cfg());
    let t = data
        .iter()
        .find(|t| t.records.len() == 288)
        .expect("a 24/7 transaction");
    assert_eq!(t.records[0].timestamp, 1_767_205_800_000);
    assert_eq!(t.records[0].timestamp_str, "2026-01-01 00:00:00");
    assert_eq!(t.records[287].timestamp_str, "2026-01-12 23:00:00");
}

#[test]
fn budget_helpers_are_exact() {
    assert_eq!(allocated_count(1000, 0.1), 1);
    assert_eq!(allocated_count(999, 0.1), 0);
    assert_eq!(allocated_count(2000, 0.05), 1);
    assert_eq!(allocated_count(1999, 0.05), 0);
    assert_eq!(allocated_count(100, 1.0), 1);
    assert_eq!(allocated_count(12_345, 2.5), 308);
    assert_eq!(consumed_percent(0, 0), 0.0);
    assert_eq!(consumed_percent(3, 0), 100.0);
    assert_eq!(consumed_percent(1, 3), 33.3333);
}

/// The contract's section 3 columns, in order, without `ingestion_time`.
const COLUMNS: &str = "transaction_name, transaction_id, application_id, application_name, alias,
timestamp, timestamp_str, key, timezone, no_data_found, index_type, sre_product,
sum_response_time, avg_response_time, total_count, success_count, error_count, success_rate,
error_rate, total_data_points, short_target_slo, eb_allocated_percent, eb_allocated_count,
eb_consumed_percent, eb_consumed_count, eb_actual_consumed_percent, eb_left_percent,
eb_left_count, aspirational_slo, aspirational_eb_allocated_percent,
aspirational_eb_allocated_count, aspirational_eb_consumed_percent,
aspirational_eb_consumed_count, aspirational_eb_actual_consumed_percent,
aspirational_eb_left_percent, aspirational_eb_left_count, response_breach_count,
response_error_rate, response_success_rate, response_slo, response_target_percent,
response_allocated_percent, response_allocated_count, response_consumed_percent,
response_consumed_count, response_actual_consumed_percent, response_left_percent,
response_left_count, aspirational_response_slo, aspirational_response_target_percent,
aspirational_response_allocated_percent, aspirational_response_allocated_count,
aspirational_response_consumed_percent, aspirational_response_consumed_count,
aspirational_response_actual_consumed_percent, aspirational_response_left_percent,
aspirational_response_left_count, timeliness_consumed_percent,
aspirational_timeliness_consumed_percent, timeliness_health, response_health, eb_health,
aspirational_response_health, aspirational_eb_health, timeliness_severity, response_severity,
eb_severity, aspirational_response_severity, aspirational_eb_severity, eb_breached,
response_breached, eb_or_response_breached, percentile_25, percentile_50, percentile_75,
percentile_80, percentile_85, percentile_90, percentile_95, percentile_99";

fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn json_names_are_the_camel_case_columns() {
    let columns: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
    assert_eq!(columns.len(), 80);
    let ids = [
        "transaction_name",
        "transaction_id",
        "application_id",
        "application_name",
        "alias",
    ];
    let data = dataset(&small());
    let odd = serde_json::to_value(&data[1].records[0]).expect("serialize");
    let even = serde_json::to_value(&data[0].records[0]).expect("serialize");
    for k in [
        "percentile95",
        "ebOrResponseBreached",
        "sumResponseTime",
        "timestampStr",
    ] {
        assert!(odd.get(k).is_some() && even.get(k).is_some(), "{k}");
    }
    // Even-indexed records: the 75 non-identifier columns, nothing else.
    let want_even: BTreeSet<String> = columns
        .iter()
        .filter(|c| !ids.contains(c))
        .map(|c| camel(c))
        .collect();
    assert_eq!(want_even.len(), 75);
    assert_eq!(keys(&even), want_even);
    // Odd-indexed records also repeat transactionName and transactionId: 77.
    let mut want_odd = want_even.clone();
    want_odd.insert("transactionName".into());
    want_odd.insert("transactionId".into());
    assert_eq!(keys(&odd), want_odd);
    assert_eq!(odd["transactionName"], Value::from(data[1].name.clone()));
    assert_eq!(odd["transactionId"], Value::from(100_001u64));
    // The transaction object carries every identifier and the series.
    let tx = serde_json::to_value(&data[0]).expect("serialize");
    let want_tx: BTreeSet<String> = [
        "transactionName",
        "transactionId",
        "applicationId",
        "applicationName",
        "alias",
        "transactionSeries",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(keys(&tx), want_tx);
    assert_eq!(tx["applicationId"], Value::from(31854u64));
    // Types on the wire.
    assert!(even["totalCount"].is_i64());
    assert!(even["percentile95"].is_f64());
    assert!(even["ebBreached"].is_boolean());
    assert!(even["ebHealth"].is_string());
    assert_eq!(even["key"], even["timestamp"]);
}

/// The 75-77 camelCase keys alone take about 1.7 KB, so a record is about 2 KB on the wire.
#[test]
fn a_record_is_about_two_kilobytes() {
    let data = dataset(&small());
    let r = serde_json::to_vec(&data[1].records[0]).expect("serialize");
    assert!((1_500..=2_600).contains(&r.len()), "{} bytes", r.len());
}

#[test]
fn faults_and_shapes_parse() {
    let f: Faults = "latency_ms=200, fail_5xx=2,strings_for_numbers=0.1"
        .parse()
        .expect("parse");
    assert_eq!(
        f,
        Faults {
            latency_ms: 200,
            fail_5xx: 2,
            strings_for_numbers: 0.1,
            ..Faults::default()
        }
    );
    let all: Faults =
        "fail_401=1,malformed_json=3,truncated=4,missing_fields=1,strings_for_numbers=0"
            .parse()
            .expect("parse");
    assert_eq!((all.fail_401, all.malformed_json, all.truncated), (1, 3, 4));
    assert_eq!(all.missing_fields, 1.0);
    assert_eq!("".parse::<Faults>(), Ok(Faults::default()));
    assert_eq!("none".parse::<Faults>(), Ok(Faults::default()));
    for (bad, item) in [
        ("latency_ms=200,fail_5xx=x", "fail_5xx=x"),
        ("bogus=1", "bogus=1"),
        ("fail_401", "fail_401"),
        ("missing_fields=1.5", "missing_fields=1.5"),
        ("strings_for_numbers=-0.1", "strings_for_numbers=-0.1"),
    ] {
        let e = bad.parse::<Faults>().expect_err(bad);
        assert_eq!(e.item, item);
        assert!(e.to_string().contains(item), "{e}");
    }
    assert_eq!("array".parse::<Shape>(), Ok(Shape::Array));
    assert_eq!("data".parse::<Shape>(), Ok(Shape::Data));
    assert_eq!("records".parse::<Shape>(), Ok(Shape::Records));
    assert_eq!("Series".parse::<Shape>(), Ok(Shape::Series));
    assert!("list"
        .parse::<Shape>()
        .expect_err("bad")
        .to_string()
        .contains("list"));
    // Faults as JSON refuse unknown fields.
    assert!(serde_json::from_str::<Faults>(r#"{"fail_5xx":1,"nope":2}"#).is_err());
    assert_eq!(
        serde_json::from_str::<Faults>(r#"{"fail_5xx":1}"#).expect("json"),
        Faults {
            fail_5xx: 1,
            ..Faults::default()
        }
    );
}

// ---------------------------------------------------------------- HTTP over raw TCP

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body arrived whole (Content-Length matched, or the closing chunk came).
    complete: bool,
    chunked: bool,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a chunked body; the bytes and whether the closing chunk was there.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(raw, b"\r\n") else {
            return (out, false);
        };
        let size_txt = std::str::from_utf8(&raw[..eol]).unwrap_or("");
        let Ok(size) = usize::from_str_radix(size_txt.trim(), 16) else {
            return (out, false);
        };
        raw = &raw[eol + 2..];
        if size == 0 {
            return (out, raw.starts_with(b"\r\n"));
        }
        if raw.len() < size + 2 {
            out.extend_from_slice(&raw[..raw.len().min(size)]);
            return (out, false);
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

async fn send(stream: &tokio::net::TcpStream, mut buf: &[u8]) {
    while !buf.is_empty() {
        stream.writable().await.expect("writable");
        match stream.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("write: {e}"),
        }
    }
}

/// Reads until the server closes (or resets) the connection.
async fn read_all(stream: &tokio::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if stream.readable().await.is_err() {
            break;
        }
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    out
}

async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    send(&stream, &req).await;
    let raw = tokio::time::timeout(Duration::from_secs(60), read_all(&stream))
        .await
        .expect("answer in time");
    let end = find(&raw, b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let (body, complete) = if chunked {
        dechunk(rest)
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        (rest.to_vec(), len == Some(rest.len()))
    };
    Resp {
        status,
        headers,
        body,
        complete,
        chunked,
    }
}

const TOKEN_PATH: &str = "/realms/watermelon/protocol/openid-connect/token";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
// "s3cret p@ss&=+" form-encoded.
const GOOD_FORM: &str =
    "grant_type=password&client_id=wmtop&username=wmtop&password=s3cret+p%40ss%26%3D%2B";

async fn token_req(addr: SocketAddr, form: &str) -> Resp {
    request(addr, "POST", TOKEN_PATH, &[FORM], form.as_bytes()).await
}

async fn login(addr: SocketAddr) -> String {
    let r = token_req(addr, GOOD_FORM).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

fn series_target(start: i64, end: i64) -> String {
    format!(
        "{}?application_id=31854&range=CUSTOM&start_time={start}&end_time={end}&index=HOURLY",
        server::SERIES_PATH
    )
}

async fn get_series(addr: SocketAddr, token: &str, target: &str) -> Resp {
    let auth = format!("Bearer {token}");
    request(addr, "GET", target, &[("Authorization", &auth)], b"").await
}

fn full_window(c: &SimConfig) -> String {
    series_target(c.start_ms, c.end_ms() - 60_000)
}

/// The expected answer for a window, built from `dataset()` independently of the server's
/// serializer.
fn expected(c: &SimConfig, start: i64, end: i64) -> Vec<Value> {
    dataset(c)
        .into_iter()
        .filter_map(|mut t| {
            t.records
                .retain(|r| start <= r.timestamp && r.timestamp <= end);
            (!t.records.is_empty()).then(|| serde_json::to_value(&t).expect("serialize"))
        })
        .collect()
}

async fn put_faults(addr: SocketAddr, f: &str) -> Resp {
    request(
        addr,
        "PUT",
        "/_sim/faults",
        &[("Content-Type", "application/json")],
        f.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn token_endpoint_issues_and_refuses() {
    let sim = spawn(small()).await.expect("spawn");
    let r = token_req(sim.addr, GOOD_FORM).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 300);
    assert_eq!(v["refresh_expires_in"], 1800);
    assert_eq!(v["scope"], "profile email");
    let access = v["access_token"].as_str().expect("access");
    let refresh = v["refresh_token"].as_str().expect("refresh");
    assert!(access.len() >= 40 && refresh.len() >= 40 && access != refresh);
    // A second login gets other tokens.
    let again = token_req(sim.addr, GOOD_FORM).await.json();
    assert_ne!(again["access_token"].as_str(), Some(access));

    let bad_pass = token_req(
        sim.addr,
        "grant_type=password&client_id=wmtop&username=wmtop&password=s3cret+p%40ss",
    )
    .await;
    assert_eq!(bad_pass.status, 401);
    assert_eq!(
        bad_pass.json(),
        serde_json::json!({"error":"invalid_grant","error_description":"Invalid user credentials"})
    );
    // The attempted password never comes back.
    assert!(!String::from_utf8_lossy(&bad_pass.body).contains("s3cret"));
    let bad_user = token_req(
        sim.addr,
        "grant_type=password&client_id=wmtop&username=root&password=s3cret+p%40ss%26%3D%2B",
    )
    .await;
    assert_eq!(bad_user.status, 401);
    let bad_client = token_req(
        sim.addr,
        "grant_type=password&client_id=other&username=wmtop&password=s3cret+p%40ss%26%3D%2B",
    )
    .await;
    assert_eq!(bad_client.status, 400);
    assert_eq!(bad_client.json()["error"], "invalid_client");
    let no_grant = token_req(
        sim.addr,
        "client_id=wmtop&username=wmtop&password=s3cret+p%40ss%26%3D%2B",
    )
    .await;
    assert_eq!(no_grant.status, 400);
    assert_eq!(no_grant.json()["error"], "unsupported_grant_type");
    let odd_grant = token_req(sim.addr, "grant_type=client_credentials&client_id=wmtop").await;
    assert_eq!(odd_grant.status, 400);
    assert_eq!(odd_grant.json()["error"], "unsupported_grant_type");
    let realm = request(
        sim.addr,
        "POST",
        "/realms/other/protocol/openid-connect/token",
        &[FORM],
        GOOD_FORM.as_bytes(),
    )
    .await;
    assert_eq!(realm.status, 404);
    let nothing = request(sim.addr, "GET", "/nothing/here", &[], b"").await;
    assert_eq!(nothing.status, 404);
    let get_token = request(sim.addr, "GET", TOKEN_PATH, &[], b"").await;
    assert_eq!(get_token.status, 404);
    assert_eq!(
        sim.stats().token_requests,
        8,
        "POSTs to the token path, any realm"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn client_secret_is_checked_when_configured() {
    let sim = spawn(SimConfig {
        client_secret: Some(Secret::new("cs-1")),
        ..small()
    })
    .await
    .expect("spawn");
    let missing = token_req(sim.addr, GOOD_FORM).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.json()["error_description"],
        "Invalid client or Invalid client credentials"
    );
    let wrong = token_req(sim.addr, &format!("{GOOD_FORM}&client_secret=cs-2")).await;
    assert_eq!(wrong.status, 400);
    let right = token_req(sim.addr, &format!("{GOOD_FORM}&client_secret=cs-1")).await;
    assert_eq!(right.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn refresh_gives_a_working_token() {
    let c = small();
    let sim = spawn(c.clone()).await.expect("spawn");
    let first = token_req(sim.addr, GOOD_FORM).await.json();
    let refresh = first["refresh_token"].as_str().expect("refresh");
    let form = format!("grant_type=refresh_token&client_id=wmtop&refresh_token={refresh}");
    let r = token_req(sim.addr, &form).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let access = v["access_token"].as_str().expect("access");
    assert_ne!(Some(access), first["access_token"].as_str());
    assert_ne!(v["refresh_token"].as_str(), Some(refresh));
    let s = get_series(sim.addr, access, &full_window(&c)).await;
    assert_eq!(s.status, 200);
    // Unknown refresh token, or an access token used as one.
    for bogus in ["wmsr.0000", first["access_token"].as_str().expect("access")] {
        let r = token_req(
            sim.addr,
            &format!("grant_type=refresh_token&client_id=wmtop&refresh_token={bogus}"),
        )
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json(),
            serde_json::json!({"error":"invalid_grant","error_description":"Token is not active"})
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let c = SimConfig {
        token_ttl: Duration::from_secs(1),
        refresh_ttl: Duration::from_secs(1),
        ..small()
    };
    let sim = spawn(c.clone()).await.expect("spawn");
    let v = token_req(sim.addr, GOOD_FORM).await.json();
    assert_eq!(v["expires_in"], 1);
    let access = v["access_token"].as_str().expect("access");
    let refresh = v["refresh_token"].as_str().expect("refresh");
    assert_eq!(
        get_series(sim.addr, access, &full_window(&c)).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = get_series(sim.addr, access, &full_window(&c)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthorized");
    let rr = token_req(
        sim.addr,
        &format!("grant_type=refresh_token&client_id=wmtop&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(rr.status, 400);
    assert_eq!(rr.json()["error_description"], "Token is not active");
    sim.shutdown().await;
}

#[tokio::test]
async fn series_needs_a_valid_bearer_token() {
    let c = small();
    let sim = spawn(c.clone()).await.expect("spawn");
    let none = request(sim.addr, "GET", &full_window(&c), &[], b"").await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"], "unauthorized");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let forged = get_series(sim.addr, "wmsa.0123456789abcdef", &full_window(&c)).await;
    assert_eq!(forged.status, 401);
    let token = login(sim.addr).await;
    let basic = request(
        sim.addr,
        "GET",
        &full_window(&c),
        &[("Authorization", &format!("Basic {token}"))],
        b"",
    )
    .await;
    assert_eq!(basic.status, 401);
    assert_eq!(
        get_series(sim.addr, &token, &full_window(&c)).await.status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let c = small();
    let sim = spawn(c.clone()).await.expect("spawn");
    let token = login(sim.addr).await;
    let p = server::SERIES_PATH;
    let (s, e) = (c.start_ms, c.end_ms());
    let cases = [
        (format!("{p}?range=CUSTOM&start_time={s}&end_time={e}&index=HOURLY"), "application_id"),
        (format!("{p}?application_id=abc&range=CUSTOM&start_time={s}&end_time={e}&index=HOURLY"), "application_id"),
        (format!("{p}?application_id=1&range=CUSTOM&start_time={s}&end_time={e}&index=HOURLY"), "application_id"),
        (format!("{p}?application_id=31854&start_time={s}&end_time={e}&index=HOURLY"), "range"),
        (format!("{p}?application_id=31854&range=LAST_7_DAYS&start_time={s}&end_time={e}&index=HOURLY"), "range"),
        (format!("{p}?application_id=31854&range=CUSTOM&end_time={e}&index=HOURLY"), "start_time"),
        (format!("{p}?application_id=31854&range=CUSTOM&start_time=soon&end_time={e}&index=HOURLY"), "start_time"),
        (format!("{p}?application_id=31854&range=CUSTOM&start_time={s}&index=HOURLY"), "end_time"),
        (format!("{p}?application_id=31854&range=CUSTOM&start_time={s}&end_time=1.5e12&index=HOURLY"), "end_time"),
        (format!("{p}?application_id=31854&range=CUSTOM&start_time={e}&end_time={s}&index=HOURLY"), "start_time"),
        (format!("{p}?application_id=31854&range=CUSTOM&start_time={s}&end_time={s}&index=HOURLY"), "end_time"),
        (format!("{p}?application_id=31854&range=CUSTOM&start_time={s}&end_time={e}"), "index"),
        (format!("{p}?application_id=31854&range=CUSTOM&start_time={s}&end_time={e}&index=DAILY"), "index"),
    ];
    for (target, name) in &cases {
        let r = get_series(sim.addr, &token, target).await;
        assert_eq!(r.status, 400, "{target}");
        let v = r.json();
        assert_eq!(v["error"], "bad_request");
        let msg = v["message"].as_str().expect("message");
        assert!(msg.contains(name), "{target}: '{msg}' does not name {name}");
    }
    // The wrong values are named too.
    let r = get_series(
        sim.addr,
        &token,
        &format!("{p}?application_id=31854&range=CUSTOM&start_time={s}&end_time={e}&index=DAILY"),
    )
    .await;
    assert!(r.json()["message"].as_str().unwrap_or("").contains("DAILY"));
    assert_eq!(sim.stats().series_ok, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_shape_serves_the_dataset() {
    for shape in [Shape::Array, Shape::Data, Shape::Records, Shape::Series] {
        let c = SimConfig { shape, ..small() };
        let sim = spawn(c.clone()).await.expect("spawn");
        let token = login(sim.addr).await;
        let r = get_series(sim.addr, &token, &full_window(&c)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.complete && !r.chunked);
        let v = r.json();
        let arr = match shape.key() {
            None => v.clone(),
            Some(k) => {
                assert_eq!(v.as_object().map(|m| m.len()), Some(1), "{shape:?}");
                v[k].clone()
            }
        };
        let want = expected(&c, c.start_ms, c.end_ms());
        assert_eq!(want.len(), 8);
        assert_eq!(arr, Value::Array(want), "{shape:?}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn window_selects_records_inclusively() {
    let c = SimConfig {
        transactions: 30,
        ..small()
    };
    let sim = spawn(c.clone()).await.expect("spawn");
    let token = login(sim.addr).await;
    // Exactly hours 10..=12: both ends are hour starts and both are included.
    let start = c.start_ms + 10 * HOUR_MS;
    let end = c.start_ms + 12 * HOUR_MS;
    let v = get_series(sim.addr, &token, &series_target(start, end))
        .await
        .json();
    let want = expected(&c, start, end);
    assert!(want.len() < 30, "some transactions have no record there");
    assert_eq!(v, Value::Array(want.clone()));
    let stamps: BTreeSet<i64> = want
        .iter()
        .flat_map(|t| {
            t["transactionSeries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|r| r["timestamp"].as_i64())
        .collect();
    assert_eq!(stamps, BTreeSet::from([start, start + HOUR_MS, end]));
    // The same window again is served from the cache, byte for byte.
    let a = get_series(sim.addr, &token, &series_target(start, end)).await;
    let b = get_series(sim.addr, &token, &series_target(start, end)).await;
    assert_eq!(a.body, b.body);
    // A window with no data at all is an empty array.
    let far = c.end_ms() + 10 * HOUR_MS;
    let none = get_series(sim.addr, &token, &series_target(far, far + HOUR_MS)).await;
    assert_eq!(none.json(), serde_json::json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn answers_not_kept_are_generated_again_byte_for_byte() {
    let kept = small();
    let fresh = SimConfig {
        keep_answers: false,
        ..small()
    };
    let a = spawn(kept.clone()).await.expect("spawn");
    let b = spawn(fresh.clone()).await.expect("spawn");
    let (ta, tb) = (login(a.addr).await, login(b.addr).await);
    let window = full_window(&kept);
    let from_kept = get_series(a.addr, &ta, &window).await;
    let first = get_series(b.addr, &tb, &window).await;
    let second = get_series(b.addr, &tb, &window).await;
    assert_eq!(first.status, 200);
    assert!(!first.body.is_empty());
    assert_eq!(first.body, second.body);
    assert_eq!(first.body, from_kept.body);
    assert_eq!(
        first.json(),
        Value::Array(expected(&fresh, fresh.start_ms, fresh.end_ms()))
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn fail_5xx_and_401_count_down() {
    let c = small();
    let sim = spawn(c.clone()).await.expect("spawn");
    let token = login(sim.addr).await;
    let r = put_faults(sim.addr, r#"{"fail_5xx":2,"fail_401":1}"#).await;
    assert_eq!(r.status, 200);
    for left in [1, 0] {
        let r = get_series(sim.addr, &token, &full_window(&c)).await;
        assert_eq!(r.status, 503);
        assert!(r.json()["error"].is_string());
        assert_eq!(sim.faults().fail_5xx, left);
    }
    let r = get_series(sim.addr, &token, &full_window(&c)).await;
    assert_eq!(r.status, 401, "a valid token refused once");
    let r = get_series(sim.addr, &token, &full_window(&c)).await;
    assert_eq!(r.status, 200);
    let f = request(sim.addr, "GET", "/_sim/faults", &[], b"")
        .await
        .json();
    assert_eq!(f["fail_5xx"], 0);
    assert_eq!(f["fail_401"], 0);
    let stats = request(sim.addr, "GET", "/_sim/stats", &[], b"")
        .await
        .json();
    assert_eq!(
        stats,
        serde_json::json!({"token_requests":1,"series_requests":4,"series_ok":1})
    );
    // Bad fault bodies are refused and change nothing.
    assert_eq!(
        put_faults(sim.addr, r#"{"fail_5xx":1,"nope":1}"#)
            .await
            .status,
        400
    );
    assert_eq!(
        put_faults(sim.addr, r#"{"missing_fields":2.0}"#)
            .await
            .status,
        400
    );
    assert_eq!(sim.faults(), Faults::default());
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_and_truncated_answers() {
    let c = small();
    let sim = spawn(c.clone()).await.expect("spawn");
    let token = login(sim.addr).await;
    let good = get_series(sim.addr, &token, &full_window(&c)).await;
    assert!(good.complete);
    sim.set_faults(Faults {
        malformed_json: 1,
        truncated: 1,
        ..Faults::default()
    });
    let bad = get_series(sim.addr, &token, &full_window(&c)).await;
    assert_eq!(bad.status, 200);
    assert!(bad.complete, "malformed is a whole body");
    assert!(serde_json::from_slice::<Value>(&bad.body).is_err());
    let cut = get_series(sim.addr, &token, &full_window(&c)).await;
    assert_eq!(cut.status, 200);
    assert!(cut.chunked, "a truncated answer is chunked");
    assert!(!cut.complete, "the closing chunk must be missing");
    let half = good.body.len() / 2;
    assert_eq!(cut.body.len(), half);
    assert_eq!(&cut.body[..], &good.body[..half]);
    assert!(serde_json::from_slice::<Value>(&cut.body).is_err());
    // Both counters are used up.
    let again = get_series(sim.addr, &token, &full_window(&c)).await;
    assert!(again.complete);
    assert_eq!(again.body, good.body);
    assert_eq!(sim.stats().series_ok, 2);
    sim.shutdown().await;
}

fn records_of(v: &Value) -> Vec<(u64, Value)> {
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| {
            let id = t["transactionId"].as_u64().unwrap_or(0);
            t["transactionSeries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |r| (id, r))
        })
        .collect()
}

#[tokio::test]
async fn strings_for_numbers_keep_the_values() {
    let c = SimConfig {
        transactions: 20,
        ..small()
    };
    let sim = spawn(c.clone()).await.expect("spawn");
    let token = login(sim.addr).await;
    sim.set_faults(Faults {
        strings_for_numbers: 0.3,
        ..Faults::default()
    });
    let a = get_series(sim.addr, &token, &full_window(&c)).await;
    let b = get_series(sim.addr, &token, &full_window(&c)).await;
    let got = a.json();
    assert_eq!(got, b.json(), "the same choice every time");
    let want = Value::Array(expected(&c, c.start_ms, c.end_ms()));
    let (got_r, want_r) = (records_of(&got), records_of(&want));
    assert_eq!(got_r.len(), want_r.len());
    let (mut numbers, mut strings) = (0usize, 0usize);
    for ((gid, g), (wid, w)) in got_r.iter().zip(want_r.iter()) {
        assert_eq!(gid, wid);
        assert_eq!(keys(g), keys(w));
        for (k, wv) in w.as_object().into_iter().flatten() {
            let gv = &g[k];
            match (wv, gv) {
                (Value::Number(n), Value::String(s)) => {
                    strings += 1;
                    numbers += 1;
                    if let Some(i) = n.as_i64() {
                        assert_eq!(s.parse::<i64>().ok(), Some(i), "{k}: {s}");
                    } else {
                        let f = n.as_f64().expect("f64");
                        assert_eq!(s.parse::<f64>().ok(), Some(f), "{k}: {s}");
                    }
                }
                (Value::Number(_), _) => {
                    numbers += 1;
                    assert_eq!(gv, wv, "{k}");
                }
                _ => assert_eq!(gv, wv, "{k}: non-numbers are untouched"),
            }
        }
    }
    let share = strings as f64 / numbers as f64;
    assert!((0.27..0.33).contains(&share), "share {share}");
    // Another seed picks other fields.
    sim.shutdown().await;
    let other = spawn(SimConfig {
        seed: 7,
        ..c.clone()
    })
    .await
    .expect("spawn");
    let token = login(other.addr).await;
    other.set_faults(Faults {
        strings_for_numbers: 0.3,
        ..Faults::default()
    });
    let o = get_series(other.addr, &token, &full_window(&c))
        .await
        .json();
    assert_ne!(o, got);
    other.shutdown().await;
}

#[tokio::test]
async fn missing_fields_spare_the_time() {
    let c = SimConfig {
        transactions: 20,
        ..small()
    };
    let sim = spawn(SimConfig {
        faults: "missing_fields=0.2".parse().expect("faults"),
        ..c.clone()
    })
    .await
    .expect("spawn");
    let token = login(sim.addr).await;
    let got = get_series(sim.addr, &token, &full_window(&c)).await.json();
    let want = Value::Array(expected(&c, c.start_ms, c.end_ms()));
    let (got_r, want_r) = (records_of(&got), records_of(&want));
    assert_eq!(got_r.len(), want_r.len());
    let (mut fields, mut missing) = (0usize, 0usize);
    for ((_, g), (_, w)) in got_r.iter().zip(want_r.iter()) {
        for k in ["timestamp", "key", "timestampStr"] {
            assert_eq!(g[k], w[k], "time field {k} is always sent");
        }
        for (k, wv) in w.as_object().into_iter().flatten() {
            fields += 1;
            match g.get(k) {
                None => missing += 1,
                Some(gv) => assert_eq!(gv, wv, "{k}"),
            }
        }
        assert!(keys(g).is_subset(&keys(w)));
    }
    let share = missing as f64 / fields as f64;
    assert!((0.17..0.21).contains(&share), "share {share}");
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let c = small();
    let sim = spawn(c.clone()).await.expect("spawn");
    let token = login(sim.addr).await;
    sim.set_faults("latency_ms=400".parse().expect("faults"));
    let t0 = Instant::now();
    let r = get_series(sim.addr, &token, &full_window(&c)).await;
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(400));
    sim.shutdown().await;
}

#[tokio::test]
async fn serve_stops_when_told() {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, small(), async move {
        let _ = rx.await;
    }));
    let r = request(addr, "GET", "/_sim/stats", &[], b"").await;
    assert_eq!(r.status, 200);
    let _ = tx.send(());
    let res = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stopped in time");
    assert!(matches!(res, Ok(Ok(()))));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn handle_url_and_stats() {
    let sim = spawn(small()).await.expect("spawn");
    assert_eq!(sim.url(), format!("http://127.0.0.1:{}", sim.addr.port()));
    assert_eq!(sim.stats(), SimStats::default());
    let token = login(sim.addr).await;
    assert_eq!(sim.stats().token_requests, 1);
    // Neither the token nor the password shows in the handle's Debug.
    let dbg = format!("{sim:?}");
    assert!(dbg.contains("issued: 2"), "{dbg}");
    assert!(!dbg.contains(&token) && !dbg.contains("s3cret"), "{dbg}");
    let addr = sim.addr;
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

// ---------------------------------------------------------------- live

fn hours_of_tx(data: &[SimTransaction]) -> Vec<(String, i64, i64, f64)> {
    data.iter()
        .flat_map(|t| {
            t.records.iter().map(|r| {
                (
                    t.name.clone(),
                    r.timestamp,
                    r.total_count,
                    r.avg_response_time,
                )
            })
        })
        .collect()
}

#[test]
fn a_live_api_serves_up_to_its_current_hour_and_revises_only_the_last_ones() {
    let cfg = small();
    let current = 1_767_225_600_000;
    let view = |revision| LiveView {
        first_ms: current - 24 * HOUR_MS,
        current_ms: current,
        revise_hours: 3,
        revision,
    };
    let start = current - 10 * HOUR_MS;
    let end = current + 5 * HOUR_MS;
    let one = live_dataset(&cfg, &view(1), start, end);
    let two = live_dataset(&cfg, &view(2), start, end);
    let all = hours_of_tx(&one);
    assert!(
        all.iter().all(|(_, t, _, _)| *t >= start && *t <= current),
        "nothing past the current hour"
    );
    assert!(all.iter().any(|(_, t, _, _)| *t == current));
    let revisable = |t: i64| t > current - 3 * HOUR_MS;
    let (a, b) = (hours_of_tx(&one), hours_of_tx(&two));
    assert_eq!(
        a.len(),
        b.len(),
        "the same hours have traffic at every revision"
    );
    let mut moved = 0;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, x.1), (&y.0, y.1));
        if revisable(x.1) {
            moved += usize::from(x.2 != y.2 || x.3 != y.3);
        } else {
            assert_eq!(x, y, "an hour out of the revision window is final");
        }
    }
    assert!(moved > 0, "the last hours' figures move between requests");
    // A narrower window gives the same hours, with the same figures.
    let narrow = hours_of_tx(&live_dataset(
        &cfg,
        &view(1),
        current - 4 * HOUR_MS,
        current,
    ));
    let within: Vec<_> = a
        .into_iter()
        .filter(|h| h.1 >= current - 4 * HOUR_MS)
        .collect();
    assert_eq!(narrow, within);
    // Every record of a live answer keeps the data's rules.
    for t in &one {
        for r in &t.records {
            assert_eq!(r.success_count, r.total_count - r.error_count);
        }
    }
}

#[tokio::test]
async fn a_live_simulator_catches_up_with_the_clock_and_logs_each_request() {
    let mut c = small();
    c.live = Some(Live {
        hour_length: Duration::from_millis(200),
        behind_hours: 3,
        revise_hours: 2,
    });
    c.log_bodies = true;
    let sim = spawn(c.clone()).await.unwrap();
    let token = login(sim.addr).await;
    let now_hour = jiff::Timestamp::now().as_millisecond().div_euclid(HOUR_MS) * HOUR_MS;
    let target = series_target(now_hour - 6 * HOUR_MS, now_hour);
    let first = get_series(sim.addr, &token, &target).await.status;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let later = get_series(sim.addr, &token, &target).await.status;
    assert_eq!((first, later), (200, 200));
    let log = sim.requests();
    assert_eq!(log.len(), 2);
    let (a, b) = (&log[0], &log[1]);
    assert_eq!(a.start_time, now_hour - 6 * HOUR_MS);
    assert_eq!(
        a.current_ms,
        Some(now_hour - 3 * HOUR_MS),
        "it starts 3 hours behind"
    );
    assert_eq!(
        b.current_ms,
        Some(now_hour),
        "it caught up, and stops at the clock's hour"
    );
    assert!(a.records < b.records, "new hours came: {a:?} {b:?}");
    assert_eq!(b.newest_ms, Some(now_hour));
    let body: Value = serde_json::from_slice(b.body.as_ref().unwrap()).unwrap();
    let served: usize = body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transactionSeries"].as_array().unwrap().len())
        .sum();
    assert_eq!(Some(served), b.records);
    sim.shutdown().await;
}
