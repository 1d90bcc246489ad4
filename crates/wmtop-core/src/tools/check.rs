//! Reconciliation (`wmtop check`): compares, per transaction and per hour, what the API
//! served (the saved fetch), what is on the Kafka topic and what ClickHouse holds as a
//! plain query sees it (no `FINAL`), and reports the gaps (served but missing
//! downstream), the stored copies (more than one row for a record) and the extras (rows
//! the API did not serve). Records the pipeline sets aside are counted as such on every
//! side: API records = loadable + set aside. No terminal code: the report is data, with
//! a plain-text rendering. It only reads: a user who may only SELECT can run it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use rdkafka::Message;
use serde::Serialize;

use crate::clickhouse::{Ch, ChError};
use crate::config::redact::mask_url;
use crate::config::Settings;
use crate::kafka::reader::{self, ReadError};
use crate::kafka::{Kafka, KafkaOpError};
use crate::net::retry::{wait_for, WaitError};
use crate::record::columns::MetricRow;
use crate::record::flatten::flatten_message;
use crate::source::api::{self, Accounting, Answer, ApiError};

/// Entries each list of a shown report holds at most (see [`Report::capped`]); the
/// totals stay exact.
pub const LISTED: usize = 50;

/// Why a reconciliation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no saved fetch at {path}: run `wmtop produce` first")]
    NoFetch { path: String },
    #[error(transparent)]
    Fetch(#[from] ApiError),
    #[error(transparent)]
    Kafka(#[from] KafkaOpError),
    #[error(transparent)]
    Topic(#[from] reader::Stalled),
    #[error(transparent)]
    ClickHouse(#[from] ChError),
    #[error("gave up waiting for ClickHouse after {}s: {last}", waited.as_secs())]
    ClickHouseGaveUp { waited: Duration, last: ChError },
    #[error("a reconciliation task failed: {0}")]
    Task(String),
}

impl CheckError {
    /// What the check waited for when it gave up: (what, where, partition, offset).
    pub fn waited_for(&self) -> Option<(&'static str, Option<i32>, Option<i64>)> {
        match self {
            CheckError::Topic(s) => Some(("message", Some(s.partition), Some(s.reached))),
            CheckError::ClickHouseGaveUp { .. } => Some(("clickhouse", None, None)),
            CheckError::Kafka(e) if !e.permanent() => Some(("kafka", None, None)),
            _ => None,
        }
    }
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

/// An hour stored more than once, as a plain query counts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Copies {
    pub transaction: String,
    pub hour: String,
    pub hour_ms: i64,
    /// Rows stored for that hour.
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

/// The counts kept for one transaction and summed over all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Records the API served.
    pub api_records: u64,
    /// Of those, set aside by the pipeline (each with its reason).
    pub set_aside: u64,
    /// Messages on the topic (each reload publishes again, so several are normal).
    pub topic_messages: u64,
    /// Distinct records (hours) on the topic.
    pub topic_records: u64,
    /// Rows stored in ClickHouse (a plain count).
    pub stored_rows: u64,
    /// Distinct records stored.
    pub distinct_records: u64,
    pub gaps: u64,
    /// Hours stored more than once.
    pub hours_with_copies: u64,
    /// Rows beyond one per record.
    pub copies: u64,
    pub extras: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.api_records += o.api_records;
        self.set_aside += o.set_aside;
        self.topic_messages += o.topic_messages;
        self.topic_records += o.topic_records;
        self.stored_rows += o.stored_rows;
        self.distinct_records += o.distinct_records;
        self.gaps += o.gaps;
        self.hours_with_copies += o.hours_with_copies;
        self.copies += o.copies;
        self.extras += o.extras;
    }
}

/// One transaction on the three sides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransactionCheck {
    pub name: String,
    #[serde(flatten)]
    pub counts: Counts,
}

impl TransactionCheck {
    /// Gaps or copies (extras are not a problem).
    pub fn has_problem(&self) -> bool {
        self.counts.gaps > 0 || self.counts.copies > 0
    }

    /// The verdict in words: `ok`, `ok, 1 set aside`, `2 gaps`, `3 copies` …
    pub fn verdict(&self) -> String {
        let mut parts = Vec::new();
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        if self.counts.gaps > 0 {
            parts.push(plural(self.counts.gaps, "gap", "gaps"));
        }
        if self.counts.copies > 0 {
            parts.push(plural(self.counts.copies, "copy", "copies"));
        }
        if parts.is_empty() {
            return match self.counts.set_aside {
                0 => "ok".into(),
                n => format!("ok, {n} set aside"),
            };
        }
        parts.join(", ")
    }
}

/// Sums over every transaction; exact even when the lists are capped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub transactions: u64,
    /// Messages flatten could not use at all.
    pub topic_unusable_messages: u64,
    #[serde(flatten)]
    pub counts: Counts,
}

/// What a reconciliation found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub transactions: Vec<TransactionCheck>,
    pub gaps: Vec<Gap>,
    pub copies: Vec<Copies>,
    pub extras: Vec<Extra>,
    pub totals: Totals,
    /// The table merges copies of a record away (a Replacing engine): copies found are
    /// a merge that is pending (`OPTIMIZE … FINAL` removes them), not data to fix.
    pub merge_pending: bool,
}

impl Report {
    /// No gaps and no copies. Extras do not count: a table can hold other windows.
    pub fn ok(&self) -> bool {
        self.totals.counts.gaps == 0 && self.totals.counts.copies == 0
    }

    /// The report with each list cut to `max` entries; the totals keep the exact counts.
    pub fn capped(mut self, max: usize) -> Report {
        self.gaps.truncate(max);
        self.copies.truncate(max);
        self.extras.truncate(max);
        self
    }
}

impl fmt::Display for Report {
    /// One line per transaction with a problem, the listed gaps, copies and extras (the
    /// last as notes), then the totals and the verdict.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in self.transactions.iter().filter(|t| t.has_problem()) {
            writeln!(
                f,
                "{}: {} (API {} records, {} set aside; topic {}; ClickHouse {} rows, {} distinct)",
                t.name,
                t.verdict(),
                t.counts.api_records,
                t.counts.set_aside,
                t.counts.topic_records,
                t.counts.stored_rows,
                t.counts.distinct_records
            )?;
        }
        for g in &self.gaps {
            writeln!(
                f,
                "gap: {} at {} missing from {}",
                g.transaction, g.hour, g.missing_from
            )?;
        }
        more(f, "gaps", self.totals.counts.gaps, self.gaps.len())?;
        for c in &self.copies {
            writeln!(
                f,
                "copies: {} at {} is stored {} times{}",
                c.transaction,
                c.hour,
                c.rows,
                if self.merge_pending {
                    " (merge pending)"
                } else {
                    ""
                }
            )?;
        }
        more(
            f,
            "hours with copies",
            self.totals.counts.hours_with_copies,
            self.copies.len(),
        )?;
        for e in &self.extras {
            writeln!(
                f,
                "note: {} at {} is in ClickHouse ({} rows) but the API did not serve it",
                e.transaction, e.hour, e.rows
            )?;
        }
        more(f, "extras", self.totals.counts.extras, self.extras.len())?;
        let t = &self.totals;
        writeln!(
            f,
            "totals: {} transactions; API {} records ({} set aside, {} to load); topic {} messages ({} unusable), \
             {} records; ClickHouse {} rows stored, {} distinct; {} gaps, {} copies in {} hours{}, {} extras",
            t.transactions,
            t.counts.api_records,
            t.counts.set_aside,
            t.counts.api_records.saturating_sub(t.counts.set_aside),
            t.counts.topic_messages,
            t.topic_unusable_messages,
            t.counts.topic_records,
            t.counts.stored_rows,
            t.counts.distinct_records,
            t.counts.gaps,
            t.counts.copies,
            t.counts.hours_with_copies,
            if t.counts.copies > 0 && self.merge_pending { " (merge pending)" } else { "" },
            t.counts.extras
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
    (row.transaction_name.to_string(), ms - ms.rem_euclid(1000))
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// What the API served.
#[derive(Debug, Default)]
struct ApiSide {
    /// Loadable records per key.
    keys: BTreeMap<Key, u64>,
    /// Served and set aside, per transaction.
    accounting: BTreeMap<String, Accounting>,
}

impl ApiSide {
    fn of(answer: &Answer) -> ApiSide {
        let mut keys: BTreeMap<Key, u64> = BTreeMap::new();
        let accounting = answer.accounting_with(|row| *keys.entry(key_of(row)).or_default() += 1);
        ApiSide { keys, accounting }
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
        let name = match payload.map(flatten_message) {
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

/// Reads the whole topic with the one partition reader. Blocking.
fn read_topic(settings: &Settings) -> Result<TopicSide, CheckError> {
    let kafka = Kafka::new(settings);
    kafka.identify(Duration::from_secs(10))?;
    let mut side = TopicSide::default();
    reader::read_all(&kafka, settings.max_wait.0, |m| {
        side.add(m.key(), m.payload())
    })
    .map_err(|e| match e {
        ReadError::Kafka(k) => CheckError::Kafka(k),
        ReadError::Stalled(s) => CheckError::Topic(s),
    })?;
    Ok(side)
}

/// What ClickHouse holds, as a plain query sees it.
#[derive(Debug, Default)]
struct ClickHouseSide {
    /// Stored rows per key.
    rows: BTreeMap<Key, u64>,
    replacing: bool,
}

async fn read_clickhouse(settings: &Settings) -> Result<ClickHouseSide, CheckError> {
    let url = mask_url(&settings.clickhouse_url);
    let (_keep, never) = tokio::sync::watch::channel(false);
    let ch = wait_for(
        &format!("ClickHouse at {url}"),
        Some(settings.max_wait.0),
        &never,
        || Ch::connect(settings),
    )
    .await
    .map_err(|e| match e {
        WaitError::GaveUp { waited, last } => CheckError::ClickHouseGaveUp { waited, last },
        other => match other.into_error() {
            Some(e) => CheckError::ClickHouse(e),
            None => CheckError::Task("stopped".into()),
        },
    })?;
    let replacing = crate::clickhouse::table::TableInfo::read(&ch)
        .await?
        .is_some_and(|t| t.replacing());
    Ok(ClickHouseSide {
        rows: ch.stored_per_record().await?,
        replacing,
    })
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
        merge_pending: ch.replacing,
        ..Report::default()
    };
    let mut txs = BTreeMap::new();
    for (name, a) in &api.accounting {
        let t = tx(&mut txs, name);
        t.counts.api_records += a.served;
        t.counts.set_aside += a.set_aside;
    }
    for key @ (name, ms) in api.keys.keys() {
        let missing_from = match (topic.keys.contains(key), ch.rows.contains_key(key)) {
            (true, true) => continue,
            (false, true) => MissingFrom::Topic,
            (true, false) => MissingFrom::Clickhouse,
            (false, false) => MissingFrom::TopicAndClickhouse,
        };
        tx(&mut txs, name).counts.gaps += 1;
        report.gaps.push(Gap {
            transaction: name.clone(),
            hour: rfc3339(*ms),
            hour_ms: *ms,
            missing_from,
        });
    }
    for (name, n) in &topic.messages {
        tx(&mut txs, name).counts.topic_messages += n;
    }
    for (name, _) in &topic.keys {
        tx(&mut txs, name).counts.topic_records += 1;
    }
    for (key @ (name, ms), &rows) in &ch.rows {
        let t = tx(&mut txs, name);
        t.counts.stored_rows += rows;
        t.counts.distinct_records += 1;
        if rows > 1 {
            t.counts.hours_with_copies += 1;
            t.counts.copies += rows - 1;
            report.copies.push(Copies {
                transaction: name.clone(),
                hour: rfc3339(*ms),
                hour_ms: *ms,
                rows,
            });
        }
        if !api.keys.contains_key(key) {
            t.counts.extras += 1;
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
        t.counts += x.counts;
    }
    report
}

#[cfg(test)]
mod tests;
