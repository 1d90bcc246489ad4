//! Reconciliation (`wmtop check`): compares, per transaction and per hour, what the API
//! served (the saved fetch), what is on the Kafka topic and what ClickHouse holds, and
//! reports the gaps (served but missing downstream), the duplicates (more than one row
//! for a record even read with `FINAL`) and the extras (rows the API did not serve). Every
//! side is flattened with [`flatten_message`], so a record's identity is the same
//! `(transaction_name, time)` the table is keyed on. No terminal code: the report is data,
//! with a plain-text rendering.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use crate::api::{self, Answer, ApiError};
use crate::config::Settings;
use crate::fields::MetricRow;
use crate::flatten::{flatten_message, TimeMode};
use crate::kafka::{self, KafkaOpError};
use crate::sink::{Sink, SinkError};

/// Entries each list of a shown report holds at most (see [`Report::capped`]); the
/// totals stay exact.
pub const LISTED: usize = 50;

/// How long reading the topic may go without a message before it gives up.
const TOPIC_STALL: Duration = Duration::from_secs(30);

/// Why a reconciliation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no saved fetch at {path}: run `wmtop produce` first")]
    NoFetch { path: String },
    #[error(transparent)]
    Fetch(#[from] ApiError),
    #[error(transparent)]
    Kafka(#[from] KafkaOpError),
    #[error(
        "topic {topic} partition {partition}: read to offset {reached} of {high} (high watermark) \
         and nothing more came for {}s{}{}",
        waited.as_secs(),
        if *others > 0 { format!(" ({others} other partitions unfinished too)") } else { String::new() },
        last_error.as_ref().map_or(String::new(), |e| format!("; last error: {e}"))
    )]
    TopicIncomplete {
        topic: String,
        partition: i32,
        reached: i64,
        high: i64,
        others: usize,
        waited: Duration,
        last_error: Option<String>,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("ClickHouse answered an unexpected row: {0}")]
    BadRow(String),
    #[error("a reconciliation task failed: {0}")]
    Task(String),
}

/// Where a record served by the API is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MissingFrom {
    #[serde(rename = "topic")]
    Topic,
    #[serde(rename = "clickhouse")]
    Clickhouse,
    #[serde(rename = "topic and clickhouse")]
    TopicAndClickhouse,
}

impl fmt::Display for MissingFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MissingFrom::Topic => "topic",
            MissingFrom::Clickhouse => "clickhouse",
            MissingFrom::TopicAndClickhouse => "topic and clickhouse",
        })
    }
}

/// A record the API served that is missing downstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub transaction: String,
    /// RFC 3339, UTC.
    pub hour: String,
    pub hour_ms: i64,
    pub missing_from: MissingFrom,
}

/// A record ClickHouse holds more than once, read with `FINAL`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dup {
    pub transaction: String,
    pub hour: String,
    pub hour_ms: i64,
    pub rows: u64,
}

/// A record ClickHouse holds that the API did not serve (another window, say).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Extra {
    pub transaction: String,
    pub hour: String,
    pub hour_ms: i64,
    pub rows: u64,
}

/// One transaction on the three sides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransactionCheck {
    pub name: String,
    /// Records served that flatten to a row.
    pub api_records: u64,
    /// Records served that flatten rejects (they belong in the dead-letter table).
    pub api_unusable: u64,
    /// Messages on the topic (each reload publishes again, so several are normal).
    pub topic_messages: u64,
    /// Distinct records (hours) on the topic.
    pub topic_records: u64,
    /// Rows in ClickHouse, read with `FINAL`.
    pub clickhouse_rows: u64,
    pub gaps: u64,
    pub duplicates: u64,
    pub extras: u64,
}

impl TransactionCheck {
    /// Gaps or duplicates (extras are not a problem).
    pub fn has_problem(&self) -> bool {
        self.gaps > 0 || self.duplicates > 0
    }
}

/// Sums over every transaction; exact even when the lists are capped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub transactions: u64,
    pub api_records: u64,
    pub api_unusable: u64,
    pub topic_messages: u64,
    /// Messages flatten could not use at all.
    pub topic_unusable_messages: u64,
    pub topic_records: u64,
    pub clickhouse_rows: u64,
    pub gaps: u64,
    pub duplicates: u64,
    pub extras: u64,
}

/// What a reconciliation found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub transactions: Vec<TransactionCheck>,
    pub gaps: Vec<Gap>,
    pub duplicates: Vec<Dup>,
    pub extras: Vec<Extra>,
    pub totals: Totals,
    /// Physical copies not yet merged away (rows without `FINAL` minus rows with it).
    /// Informational: the table is a ReplacingMergeTree and is read with `FINAL`.
    pub unmerged_copies: u64,
}

impl Report {
    /// No gaps and no duplicates. Extras do not count: a table can hold other windows.
    pub fn ok(&self) -> bool {
        self.totals.gaps == 0 && self.totals.duplicates == 0
    }

    /// The report with each list cut to `max` entries; the totals keep the exact counts.
    pub fn capped(mut self, max: usize) -> Report {
        self.gaps.truncate(max);
        self.duplicates.truncate(max);
        self.extras.truncate(max);
        self
    }
}

impl fmt::Display for Report {
    /// One line per transaction with a problem, the listed gaps, duplicates and extras
    /// (the last as notes), then the totals and the verdict.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in self.transactions.iter().filter(|t| t.has_problem()) {
            writeln!(
                f,
                "{}: {} gaps, {} duplicates (API {}, topic {}, ClickHouse {})",
                t.name, t.gaps, t.duplicates, t.api_records, t.topic_records, t.clickhouse_rows
            )?;
        }
        for g in &self.gaps {
            writeln!(
                f,
                "gap: {} at {} missing from {}",
                g.transaction, g.hour, g.missing_from
            )?;
        }
        more(f, "gaps", self.totals.gaps, self.gaps.len())?;
        for d in &self.duplicates {
            writeln!(
                f,
                "duplicate: {} at {} has {} rows",
                d.transaction, d.hour, d.rows
            )?;
        }
        more(
            f,
            "duplicates",
            self.totals.duplicates,
            self.duplicates.len(),
        )?;
        for e in &self.extras {
            writeln!(
                f,
                "note: {} at {} is in ClickHouse ({} rows) but the API did not serve it",
                e.transaction, e.hour, e.rows
            )?;
        }
        more(f, "extras", self.totals.extras, self.extras.len())?;
        let t = &self.totals;
        writeln!(
            f,
            "totals: {} transactions; API {} records ({} unusable); topic {} messages ({} unusable), \
             {} records; ClickHouse {} rows ({} unmerged copies); {} gaps, {} duplicates, {} extras",
            t.transactions,
            t.api_records,
            t.api_unusable,
            t.topic_messages,
            t.topic_unusable_messages,
            t.topic_records,
            t.clickhouse_rows,
            self.unmerged_copies,
            t.gaps,
            t.duplicates,
            t.extras
        )?;
        writeln!(f, "{}", if self.ok() { "ok" } else { "NOT OK" })
    }
}

fn more(f: &mut fmt::Formatter<'_>, what: &str, total: u64, listed: usize) -> fmt::Result {
    let rest = total.saturating_sub(listed as u64);
    if rest > 0 {
        writeln!(f, "… and {rest} more {what}")?;
    }
    Ok(())
}

/// A record's identity: transaction name and time in epoch ms, cut to whole seconds
/// (old servers store seconds; `toUnixTimestamp` gives seconds on every server).
type Key = (String, i64);

fn key_of(row: &MetricRow) -> Key {
    let ms = row.timestamp.millis();
    (row.transaction_name.clone(), ms - ms.rem_euclid(1000))
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// What the API served.
#[derive(Debug, Default)]
struct ApiSide {
    /// Records per key.
    keys: BTreeMap<Key, u64>,
    /// Records flatten rejected, per transaction.
    unusable: BTreeMap<String, u64>,
}

impl ApiSide {
    fn of(answer: &Answer) -> ApiSide {
        let mut side = ApiSide::default();
        for tx in &answer.transactions {
            let (name, unusable) = match flatten_message(&tx.payload, TimeMode::Millis) {
                Ok(f) => {
                    for row in &f.rows {
                        *side.keys.entry(key_of(row)).or_default() += 1;
                    }
                    (
                        f.transaction_name.or_else(|| tx.name.clone()),
                        f.bad_records.len() as u64,
                    )
                }
                Err(_) => (tx.name.clone(), tx.records as u64),
            };
            if unusable > 0 {
                *side.unusable.entry(name.unwrap_or_default()).or_default() += unusable;
            }
        }
        side
    }
}

/// What the topic holds.
#[derive(Debug, Default)]
struct TopicSide {
    keys: BTreeSet<Key>,
    /// Messages per transaction (the object's name, else the message key).
    messages: BTreeMap<String, u64>,
    unusable_messages: u64,
}

impl TopicSide {
    fn add(&mut self, key: Option<&[u8]>, payload: Option<&[u8]>) {
        let fallback = || key.map(|k| String::from_utf8_lossy(k).into_owned());
        let name = match payload.map(|p| flatten_message(p, TimeMode::Millis)) {
            Some(Ok(f)) => {
                self.keys.extend(f.rows.iter().map(key_of));
                f.transaction_name.or_else(fallback)
            }
            _ => {
                self.unusable_messages += 1;
                fallback()
            }
        };
        *self.messages.entry(name.unwrap_or_default()).or_default() += 1;
    }
}

/// Reads every partition from its low to its high watermark with a group-less consumer.
/// Blocking.
fn read_topic(settings: &Settings) -> Result<TopicSide, CheckError> {
    let mut side = TopicSide::default();
    let consumer = kafka::peek_consumer(settings)?;
    let parts = match kafka::lag(&consumer, settings) {
        Ok(parts) => parts,
        Err(KafkaOpError::NoPartitions { topic }) => {
            tracing::warn!("topic {topic} has no partitions: counting it as empty");
            return Ok(side);
        }
        Err(e) => return Err(e.into()),
    };
    let kafka_err = |action: &'static str| {
        move |source| KafkaOpError::Kafka {
            brokers: settings.kafka_brokers.clone(),
            action,
            source,
        }
    };
    // Per partition still to read: (next offset, high watermark).
    let mut pending: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in parts.iter().filter(|p| p.high > p.low) {
        tpl.add_partition_offset(&settings.topic, p.partition, Offset::Offset(p.low))
            .map_err(kafka_err("build partition list"))?;
        pending.insert(p.partition, (p.low, p.high));
    }
    if pending.is_empty() {
        return Ok(side);
    }
    consumer
        .assign(&tpl)
        .map_err(kafka_err("assign partitions"))?;
    let mut progress_at = Instant::now();
    let mut last_error = None;
    while let Some((&partition, &(reached, high))) = pending.iter().next() {
        if progress_at.elapsed() > TOPIC_STALL {
            return Err(CheckError::TopicIncomplete {
                topic: settings.topic.clone(),
                partition,
                reached,
                high,
                others: pending.len() - 1,
                waited: TOPIC_STALL,
                last_error,
            });
        }
        let msg = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(e)) => {
                last_error = Some(e.to_string());
                continue;
            }
            Some(Ok(msg)) => msg,
        };
        let Some(at) = pending.get_mut(&msg.partition()) else {
            // A partition already read to its watermark.
            continue;
        };
        progress_at = Instant::now();
        if msg.offset() < at.1 {
            at.0 = msg.offset() + 1;
            side.add(msg.key(), msg.payload());
        }
        if msg.offset() + 1 >= at.1 {
            pending.remove(&msg.partition());
        }
    }
    Ok(side)
}

/// What ClickHouse holds: rows per key with `FINAL`, and physical copies not merged yet.
#[derive(Debug, Default)]
struct ClickHouseSide {
    rows: BTreeMap<Key, u64>,
    unmerged_copies: u64,
}

async fn read_clickhouse(settings: &Settings) -> Result<ClickHouseSide, CheckError> {
    let sink = Sink::connect(settings).await?;
    let rows = rows_per_key(&sink, true).await?;
    let stored = rows_per_key(&sink, false).await?;
    let unmerged_copies = stored
        .iter()
        .map(|(k, n)| n.saturating_sub(rows.get(k).copied().unwrap_or(0)))
        .sum();
    Ok(ClickHouseSide {
        rows,
        unmerged_copies,
    })
}

async fn rows_per_key(sink: &Sink, final_: bool) -> Result<BTreeMap<Key, u64>, CheckError> {
    let sql = format!(
        "SELECT transaction_name, toUnixTimestamp(timestamp) AS ts, count() AS n FROM {}{} \
         GROUP BY transaction_name, ts",
        sink.qualified(),
        if final_ { " FINAL" } else { "" }
    );
    let text = sink.query_text(&sql, "JSONEachRow", true).await?;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        #[derive(serde::Deserialize)]
        struct R {
            transaction_name: String,
            ts: serde_json::Value,
            n: serde_json::Value,
        }
        let bad = |why: &str| CheckError::BadRow(format!("{line}: {why}"));
        let r: R = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
        let ts = uint(&r.ts).ok_or_else(|| bad("ts is not a number"))?;
        let n = uint(&r.n).ok_or_else(|| bad("n is not a number"))?;
        let ms = i64::try_from(ts)
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .ok_or_else(|| bad("ts is out of range"))?;
        *out.entry((r.transaction_name, ms)).or_default() += n;
    }
    Ok(out)
}

/// A UInt64 as ClickHouse writes it in JSON: quoted or bare.
fn uint(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    }
}

/// Compares the saved fetch, the topic and ClickHouse.
pub async fn reconcile(settings: &Settings) -> Result<Report, CheckError> {
    let path = settings.last_fetch_path();
    if !path.exists() {
        return Err(CheckError::NoFetch {
            path: path.display().to_string(),
        });
    }
    let task = |e: tokio::task::JoinError| CheckError::Task(e.to_string());
    let api = tokio::task::spawn_blocking(move || {
        api::read_answer(&path).map(|answer| ApiSide::of(&answer))
    });
    let s = settings.clone();
    let topic = tokio::task::spawn_blocking(move || read_topic(&s));
    let (api, topic, clickhouse) = tokio::join!(api, topic, read_clickhouse(settings));
    let api = api.map_err(task)??;
    let topic = topic.map_err(task)??;
    Ok(compare(&api, &topic, &clickhouse?))
}

fn compare(api: &ApiSide, topic: &TopicSide, ch: &ClickHouseSide) -> Report {
    fn tx<'a>(
        txs: &'a mut BTreeMap<String, TransactionCheck>,
        name: &str,
    ) -> &'a mut TransactionCheck {
        txs.entry(name.to_string())
            .or_insert_with(|| TransactionCheck {
                name: name.to_string(),
                ..TransactionCheck::default()
            })
    }
    let mut report = Report {
        unmerged_copies: ch.unmerged_copies,
        ..Report::default()
    };
    let mut txs = BTreeMap::new();
    for (key @ (name, ms), n) in &api.keys {
        let t = tx(&mut txs, name);
        t.api_records += n;
        let missing_from = match (topic.keys.contains(key), ch.rows.contains_key(key)) {
            (true, true) => continue,
            (false, true) => MissingFrom::Topic,
            (true, false) => MissingFrom::Clickhouse,
            (false, false) => MissingFrom::TopicAndClickhouse,
        };
        t.gaps += 1;
        report.gaps.push(Gap {
            transaction: name.clone(),
            hour: rfc3339(*ms),
            hour_ms: *ms,
            missing_from,
        });
    }
    for (name, n) in &api.unusable {
        tx(&mut txs, name).api_unusable += n;
    }
    for (name, n) in &topic.messages {
        tx(&mut txs, name).topic_messages += n;
    }
    for (name, _) in &topic.keys {
        tx(&mut txs, name).topic_records += 1;
    }
    for (key @ (name, ms), &rows) in &ch.rows {
        let t = tx(&mut txs, name);
        t.clickhouse_rows += rows;
        if rows > 1 {
            t.duplicates += 1;
            report.duplicates.push(Dup {
                transaction: name.clone(),
                hour: rfc3339(*ms),
                hour_ms: *ms,
                rows,
            });
        }
        if !api.keys.contains_key(key) {
            t.extras += 1;
            report.extras.push(Extra {
                transaction: name.clone(),
                hour: rfc3339(*ms),
                hour_ms: *ms,
                rows,
            });
        }
    }
    report.transactions = txs.into_values().collect();
    let t = &mut report.totals;
    t.transactions = report.transactions.len() as u64;
    t.topic_unusable_messages = topic.unusable_messages;
    for x in &report.transactions {
        t.api_records += x.api_records;
        t.api_unusable += x.api_unusable;
        t.topic_messages += x.topic_messages;
        t.topic_records += x.topic_records;
        t.clickhouse_rows += x.clickhouse_rows;
        t.gaps += x.gaps;
        t.duplicates += x.duplicates;
        t.extras += x.extras;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_205_800_000;
    const H: i64 = 3_600_000;

    fn key(name: &str, ms: i64) -> Key {
        (name.to_string(), ms)
    }

    #[test]
    fn every_side_is_compared_per_transaction_and_hour() {
        let api = ApiSide {
            keys: [
                (key("a", T0), 1),
                (key("a", T0 + H), 1),
                (key("a", T0 + 2 * H), 1),
                (key("b", T0), 1),
            ]
            .into_iter()
            .collect(),
            unusable: [("b".to_string(), 2)].into_iter().collect(),
        };
        let topic = TopicSide {
            keys: [key("a", T0), key("a", T0 + H), key("b", T0)]
                .into_iter()
                .collect(),
            messages: [("a".to_string(), 2), ("b".to_string(), 1)]
                .into_iter()
                .collect(),
            unusable_messages: 0,
        };
        let ch = ClickHouseSide {
            rows: [
                (key("a", T0), 1),
                (key("a", T0 + 2 * H), 1),
                (key("b", T0), 3),
                (key("c", T0), 1),
            ]
            .into_iter()
            .collect(),
            unmerged_copies: 4,
        };
        let r = compare(&api, &topic, &ch);
        assert!(!r.ok());
        assert_eq!(
            r.gaps,
            vec![
                Gap {
                    transaction: "a".into(),
                    hour: "2025-12-31T19:30:00Z".into(),
                    hour_ms: T0 + H,
                    missing_from: MissingFrom::Clickhouse,
                },
                Gap {
                    transaction: "a".into(),
                    hour: "2025-12-31T20:30:00Z".into(),
                    hour_ms: T0 + 2 * H,
                    missing_from: MissingFrom::Topic,
                },
            ]
        );
        assert_eq!(r.duplicates.len(), 1);
        assert_eq!(
            (r.duplicates[0].transaction.as_str(), r.duplicates[0].rows),
            ("b", 3)
        );
        assert_eq!(r.extras.len(), 1);
        assert_eq!(r.extras[0].transaction, "c");
        let a = &r.transactions[0];
        assert_eq!(
            (
                a.api_records,
                a.topic_messages,
                a.topic_records,
                a.clickhouse_rows,
                a.gaps
            ),
            (3, 2, 2, 2, 2)
        );
        assert_eq!(r.transactions[1].api_unusable, 2);
        assert_eq!(
            (
                r.totals.transactions,
                r.totals.gaps,
                r.totals.duplicates,
                r.totals.extras
            ),
            (3, 2, 1, 1)
        );
        assert_eq!(r.unmerged_copies, 4);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["gaps"][1]["missing_from"], "topic");
        let text = r.to_string();
        assert!(
            text.contains("a: 2 gaps, 0 duplicates (API 3, topic 2, ClickHouse 2)"),
            "{text}"
        );
        assert!(
            text.contains("gap: a at 2025-12-31T19:30:00Z missing from clickhouse"),
            "{text}"
        );
        assert!(text.contains("note: c at 2025-12-31T18:30:00Z"), "{text}");
        assert!(text.ends_with("NOT OK\n"), "{text}");
    }

    #[test]
    fn extras_alone_are_ok_and_capping_keeps_the_counts() {
        let ch = ClickHouseSide {
            rows: (0..60).map(|h| (key("x", T0 + h * H), 1)).collect(),
            unmerged_copies: 0,
        };
        let r = compare(&ApiSide::default(), &TopicSide::default(), &ch).capped(LISTED);
        assert!(r.ok());
        assert_eq!(r.extras.len(), 50);
        assert_eq!(r.totals.extras, 60);
        assert!(r.to_string().contains("… and 10 more extras"));
    }

    #[test]
    fn times_are_keyed_to_whole_seconds_and_unusable_records_counted() {
        let msg = format!(
            r#"{{"transactionName":"a","transactionSeries":[{{"timestamp":{}}},{{"totalCount":1}}]}}"#,
            T0 + 123
        );
        let answer = api::split_answer(bytes::Bytes::from(format!("[{msg}]"))).unwrap();
        let side = ApiSide::of(&answer);
        assert_eq!(
            side.keys.into_iter().collect::<Vec<_>>(),
            vec![(key("a", T0), 1)]
        );
        assert_eq!(side.unusable.get("a"), Some(&1));
        assert_eq!(
            uint(&serde_json::json!("18446744073709551615")),
            Some(u64::MAX)
        );
        assert_eq!(uint(&serde_json::json!(7)), Some(7));
    }
}
