//! One transaction looked at closely: its hours as the saved fetch (what the API
//! served), the topic and ClickHouse each have them; its messages on the topic (found by
//! reading each partition backwards from its high watermark, a growing chunk at a time,
//! until the transaction's newest message is found or a budget is spent); each hour's
//! record as the newest message holds it, next to the rows a plain query finds for that
//! hour; and what was set aside from it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::clickhouse::queries::quote;
use crate::clickhouse::{Ch, DeadLetterEntry};
use crate::config::Settings;
use crate::kafka::{lag, reader, Kafka};
use crate::record::columns::{COLUMNS, TIMESTAMP_COLUMN};
use crate::record::flatten::flatten_each;
use crate::source::api::read_answer;

const HOUR_MS: i64 = 3_600_000;

/// Messages read per partition, at most, looking for the transaction's newest one.
const SCAN_BUDGET: i64 = 1024;

/// One of the transaction's messages on the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRef {
    pub partition: i32,
    pub offset: i64,
    pub bytes: usize,
    /// The message's Kafka time (epoch ms).
    pub at_ms: Option<i64>,
    /// Records in its series.
    pub records: usize,
}

/// One hour of the transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourView {
    /// The hour's start (epoch ms).
    pub hour_ms: i64,
    /// Records the saved fetch holds for it; None when there is no saved fetch.
    pub api: Option<u32>,
    /// Records the newest message holds for it.
    pub topic: u32,
    /// Rows stored for it, as a plain query counts them (more than one: copies).
    pub stored: u64,
}

/// What [`inspect`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransactionDetail {
    pub name: String,
    /// Every hour that any side has, in order.
    pub hours: Vec<HourView>,
    /// The transaction's messages found, oldest first.
    pub messages: Vec<MessageRef>,
    /// Messages read per partition, looking (at most [`SCAN_BUDGET`]).
    pub scanned: u64,
    /// Per hour, the record as the newest message holds it (JSON as sent).
    pub records: BTreeMap<i64, String>,
    /// Per hour, the stored rows as JSON objects in the table's column order.
    pub rows: BTreeMap<i64, Vec<String>>,
    pub set_aside: Vec<DeadLetterEntry>,
    pub took: Duration,
}

#[derive(Deserialize)]
struct Series<'a> {
    #[serde(rename = "transactionSeries", borrow, default)]
    series: Vec<&'a RawValue>,
}

fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// Per hour, the records of one transaction's JSON object, as sent; and how many.
pub fn records_by_hour(payload: &[u8]) -> (BTreeMap<i64, String>, BTreeMap<i64, u32>) {
    let mut times = Vec::new();
    let bad: BTreeSet<usize> = match flatten_each(payload, |row| times.push(row.timestamp.millis()))
    {
        Ok(f) => f.bad_records.iter().map(|b| b.index).collect(),
        Err(_) => return Default::default(),
    };
    let raw: Vec<&RawValue> = std::str::from_utf8(payload)
        .ok()
        .and_then(|t| serde_json::from_str::<Series<'_>>(t).ok())
        .map(|s| s.series)
        .unwrap_or_default();
    let mut records = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut good = times.into_iter();
    for (i, r) in raw.iter().enumerate() {
        if bad.contains(&i) {
            continue;
        }
        let Some(ms) = good.next() else { break };
        let h = hour_of(ms);
        *counts.entry(h).or_insert(0) += 1;
        records.entry(h).or_insert_with(|| r.get().to_string());
    }
    (records, counts)
}

/// The saved fetch's records per hour for `name`; None when there is no saved fetch.
fn api_hours(settings: &Settings, name: &str) -> Option<BTreeMap<i64, u32>> {
    let path = settings.last_fetch_path();
    if !path.exists() {
        return None;
    }
    let answer = read_answer(&path).ok()?;
    let mut hours = BTreeMap::new();
    for tx in answer
        .transactions
        .iter()
        .filter(|t| t.name.as_deref() == Some(name))
    {
        let _ = flatten_each(&tx.payload, |row| {
            *hours.entry(hour_of(row.timestamp.millis())).or_insert(0) += 1;
        });
    }
    Some(hours)
}

/// What reading the topic backwards found.
struct Found {
    /// The transaction's messages, oldest first.
    messages: Vec<MessageRef>,
    /// The newest one's payload.
    newest: Option<Vec<u8>>,
    /// Messages read.
    scanned: u64,
}

/// The transaction's messages found reading backwards, and the newest one's payload.
/// Blocking.
fn find_messages(kafka: &Kafka, name: &str, stall: Duration) -> Result<Found, String> {
    let offsets = kafka.offsets().map_err(|e| e.to_string())?;
    let parts = lag::read(kafka, &offsets).map_err(|e| e.to_string())?;
    let client = kafka.reader().map_err(|e| e.to_string())?;
    // Per partition: how far back it has been read.
    let mut floor: BTreeMap<i32, (i64, i64)> = parts
        .iter()
        .map(|p| (p.partition, (p.high, p.low)))
        .collect();
    let mut found: Vec<MessageRef> = Vec::new();
    let mut newest: Option<(i64, Vec<u8>)> = None;
    let mut chunk = 16;
    let mut scanned = 0u64;
    loop {
        let ranges: Vec<(i32, i64, i64)> = floor
            .iter()
            .filter(|(_, (at, low))| at > low)
            .map(|(p, (at, low))| (*p, (at - chunk).max(*low), *at))
            .collect();
        if ranges.is_empty() {
            break;
        }
        reader::read_ranges(kafka, &client, &ranges, stall, |m| {
            scanned += 1;
            if m.key() != Some(name.as_bytes()) {
                return;
            }
            let payload = m.payload().unwrap_or_default();
            let at_ms = m.timestamp().to_millis();
            let records = std::str::from_utf8(payload)
                .ok()
                .and_then(|t| serde_json::from_str::<Series<'_>>(t).ok())
                .map_or(0, |s| s.series.len());
            found.push(MessageRef {
                partition: m.partition(),
                offset: m.offset(),
                bytes: payload.len(),
                at_ms,
                records,
            });
            let t = at_ms.unwrap_or(i64::MIN);
            if newest.as_ref().is_none_or(|(n, _)| t >= *n) {
                newest = Some((t, payload.to_vec()));
            }
        })
        .map_err(|e| e.to_string())?;
        for (p, from, _) in &ranges {
            if let Some(f) = floor.get_mut(p) {
                f.0 = *from;
            }
        }
        let deepest = floor
            .iter()
            .map(|(p, (at, _))| {
                parts
                    .iter()
                    .find(|x| x.partition == *p)
                    .map_or(0, |x| x.high - at)
            })
            .max()
            .unwrap_or(0);
        if !found.is_empty() || deepest >= SCAN_BUDGET {
            break;
        }
        chunk = (chunk * 2).min(SCAN_BUDGET);
    }
    found.sort_by_key(|m| (m.at_ms, m.partition, m.offset));
    Ok(Found {
        messages: found,
        newest: newest.map(|(_, p)| p),
        scanned,
    })
}

/// Per hour, the stored rows of `name` (in the settings' window) in the table's column
/// order, as a plain query finds them.
async fn stored_rows(ch: &Ch, name: &str) -> Result<BTreeMap<i64, Vec<String>>, String> {
    let ts = COLUMNS[TIMESTAMP_COLUMN].name;
    let sql = format!(
        "SELECT toInt64(toUnixTimestamp({ts})) * 1000 AS wmtop_hour_ms, * FROM {} \
         WHERE {} AND transaction_name = {} ORDER BY {ts}",
        ch.qualified(),
        ch.window,
        quote(name)
    );
    let result = ch
        .query_table(
            &sql,
            false,
            &format!("wmtop-inspect-{}", std::process::id()),
        )
        .await
        .map_err(|e| e.short())?;
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for row in &result.rows {
        let Some(ms) = row
            .first()
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        else {
            continue;
        };
        let fields: Vec<String> = result
            .columns
            .iter()
            .zip(row)
            .skip(1)
            .map(|(c, v)| format!("{}:{v}", serde_json::Value::String(c.clone())))
            .collect();
        out.entry(hour_of(ms))
            .or_default()
            .push(format!("{{{}}}", fields.join(",")));
    }
    Ok(out)
}

/// Looks at one transaction across the saved fetch, the topic and ClickHouse.
pub async fn inspect(
    settings: &Settings,
    kafka: &Kafka,
    ch: &Ch,
    name: &str,
) -> Result<TransactionDetail, String> {
    let started = Instant::now();
    let (k, n, s) = (kafka.clone(), name.to_string(), settings.clone());
    let topic = tokio::task::spawn_blocking(move || {
        let found = find_messages(&k, &n, s.max_wait.0.min(Duration::from_secs(10)));
        let api = api_hours(&s, &n);
        (found, api)
    });
    let rows = stored_rows(ch, name).await;
    let set_aside = ch
        .dead_letter_entries(100, Some(name))
        .await
        .map_err(|e| e.short());
    let (found, api) = topic
        .await
        .map_err(|e| format!("reading the topic failed: {e}"))?;
    let Found {
        messages,
        newest,
        scanned,
    } = found?;
    let (records, topic_counts) = newest.as_deref().map(records_by_hour).unwrap_or_default();
    let rows = rows?;
    let mut hours: BTreeSet<i64> = topic_counts.keys().copied().collect();
    hours.extend(rows.keys());
    if let Some(a) = &api {
        hours.extend(a.keys());
    }
    let hours = hours
        .into_iter()
        .map(|h| HourView {
            hour_ms: h,
            api: api.as_ref().map(|a| a.get(&h).copied().unwrap_or(0)),
            topic: topic_counts.get(&h).copied().unwrap_or(0),
            stored: rows.get(&h).map_or(0, |r| r.len() as u64),
        })
        .collect();
    Ok(TransactionDetail {
        name: name.to_string(),
        hours,
        messages,
        scanned,
        records,
        rows,
        set_aside: set_aside?,
        took: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_by_their_hour_as_sent() {
        let payload = br#"{"transactionName":"GET /a","transactionSeries":[
            {"timestamp":1767225600000,"totalCount":"3"},
            {"timestamp":"nope"},
            {"timestamp":1767229200000,"totalCount":4}]}"#;
        let (records, counts) = records_by_hour(payload);
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![1, 1]);
        assert_eq!(
            records.get(&1_767_225_600_000).map(String::as_str),
            Some(r#"{"timestamp":1767225600000,"totalCount":"3"}"#)
        );
        assert_eq!(
            records.get(&1_767_229_200_000).map(String::as_str),
            Some(r#"{"timestamp":1767229200000,"totalCount":4}"#),
            "the bad record in between is skipped, not shifted onto the next hour"
        );
    }
}
