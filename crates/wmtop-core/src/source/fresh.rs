//! Keeping a window fresh: what the next fetch asks the API for ([`Freshness`]: the
//! whole window the first time, then only the hours since the last successful fetch plus
//! the revision window), and the saved answer kept whole across such fetches
//! ([`merge_saved`]: the hours before the revision window from the saved answer, the
//! rest from the new one).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::{Settings, Window};
use crate::source::api::{self, Answer, ApiError};

const HOUR_MS: i64 = 3_600_000;

/// What one fetch asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The hours asked for.
    pub ask: Window,
    /// The whole window the fetch keeps fresh (`ask` is its tail when `incremental`).
    pub window: Window,
    /// Only the tail of the window is asked for.
    pub incremental: bool,
}

/// The newest hour the last successful fetch brought, for the next one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Freshness {
    newest_ms: Option<i64>,
}

impl Freshness {
    /// What to ask for now: the whole window, or (after a successful fetch) the hours
    /// from `revise` before the newest hour it brought to the window's end. (The newest
    /// hour served, not the end asked for: an API that lags the clock revises the hours
    /// it has, not the ones it will have.)
    pub fn plan(&self, settings: &Settings) -> Planned {
        self.plan_at(settings, jiff::Timestamp::now().as_millisecond())
    }

    /// [`Freshness::plan`] when the clock reads `now_ms`.
    pub fn plan_at(&self, settings: &Settings, now_ms: i64) -> Planned {
        let window = settings.window_at(now_ms);
        let whole = Planned {
            ask: window,
            window,
            incremental: false,
        };
        let Some(newest) = self.newest_ms else {
            return whole;
        };
        let revise = i64::try_from(settings.revise.0.as_millis()).unwrap_or(i64::MAX);
        // The newest hour is revised too: `revise` 3h asks again for it and the two
        // before it.
        let from = (newest.min(window.end_ms) + HOUR_MS)
            .saturating_sub(revise)
            .div_euclid(HOUR_MS)
            .saturating_mul(HOUR_MS);
        if from <= window.start_ms || from >= window.end_ms {
            return whole;
        }
        Planned {
            ask: Window {
                start_ms: from,
                end_ms: window.end_ms,
            },
            window,
            incremental: true,
        }
    }

    /// A fetch succeeded and its hours are on the topic; `newest` is the newest hour
    /// it brought (none: nothing served, so the next fetch asks for the whole window).
    pub fn fetched(&mut self, newest: Option<i64>) {
        if newest.is_some() {
            self.newest_ms = newest;
        }
    }
}

/// The time of a record, as far as the saved answer needs it.
#[derive(Deserialize)]
struct RecordTime {
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
}

impl RecordTime {
    fn ms(&self) -> Option<i64> {
        match self.timestamp.as_ref()? {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// The saved answer after an incremental fetch of `planned`: for each transaction, its
/// saved records inside the window and before the hours asked for, then the records the
/// tail brought (a record without a usable time comes from the tail only). Transactions
/// only the saved answer knows keep their records in the window. Written atomically to
/// `path`, and returned; a missing or unreadable saved answer leaves the tail alone in it.
pub fn merge_saved(path: &Path, planned: &Planned, tail: &Answer) -> Result<Answer, ApiError> {
    let bad = |e: serde_json::Error| ApiError::BadAnswer(e.to_string());
    let saved = match api::read_answer(path) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!("the saved answer is replaced by the new hours alone: {e}");
            None
        }
    };
    let keep = |t: Option<i64>| {
        t.is_some_and(|t| t >= planned.window.start_ms && t < planned.ask.start_ms)
    };
    let mut order: Vec<String> = Vec::new();
    let mut merged: BTreeMap<String, (BTreeMap<String, &RawValue>, Vec<&RawValue>)> =
        BTreeMap::new();
    for answer in saved.iter().chain(std::iter::once(tail)) {
        let from_tail = std::ptr::eq(answer, tail);
        for tx in &answer.transactions {
            let text =
                std::str::from_utf8(&tx.payload).map_err(|e| ApiError::BadAnswer(e.to_string()))?;
            // The transaction's fields as served, its series apart.
            let mut rest: BTreeMap<String, &RawValue> = serde_json::from_str(text).map_err(bad)?;
            let series: Vec<&RawValue> = match rest.remove("transactionSeries") {
                Some(raw) => serde_json::from_str::<Option<Vec<&RawValue>>>(raw.get())
                    .map_err(bad)?
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let name = tx.name.clone().unwrap_or_default();
            let entry = merged.entry(name.clone()).or_insert_with(|| {
                order.push(name);
                (BTreeMap::new(), Vec::new())
            });
            entry.0 = rest;
            for r in series {
                let t = serde_json::from_str::<RecordTime>(r.get())
                    .ok()
                    .and_then(|t| t.ms());
                if from_tail || keep(t) {
                    entry.1.push(r);
                }
            }
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(tail.bytes * 2);
    out.push(b'[');
    let mut first = true;
    for name in &order {
        let Some((rest, series)) = merged.get(name) else {
            continue;
        };
        if series.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'{');
        for (k, v) in rest {
            serde_json::to_writer(&mut out, k).map_err(bad)?;
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"\"transactionSeries\":");
        serde_json::to_writer(&mut out, series).map_err(bad)?;
        out.push(b'}');
    }
    out.push(b']');
    api::save_answer(path, &out).map_err(|e| ApiError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    api::split_answer(bytes::Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Moment;
    use bytes::Bytes;

    fn settings(range_h: i64, revise_h: u64) -> Settings {
        let mut s = Settings::defaults();
        s.range = Some(crate::config::Range(range_h * HOUR_MS));
        s.window_given = false;
        s.start_time = Moment::Now(-range_h * HOUR_MS);
        s.end_time = Moment::Now(0);
        s.revise = crate::config::Span(std::time::Duration::from_secs(revise_h * 3600));
        s
    }

    #[test]
    fn the_first_fetch_asks_for_the_window_and_later_ones_for_the_new_hours_and_the_revision_window(
    ) {
        let s = settings(6, 3);
        let t0 = 1_767_225_600_000 + 25 * 60_000; // 00:25 UTC on a whole day
        let mut f = Freshness::default();
        let first = f.plan_at(&s, t0);
        assert!(!first.incremental);
        assert_eq!(first.ask.start_ms, 1_767_225_600_000 - 6 * HOUR_MS);
        assert_eq!(first.ask.end_ms, 1_767_225_600_000);
        // Nothing served: the next fetch asks for the whole window again.
        f.fetched(None);
        assert!(!f.plan_at(&s, t0).incremental);
        // The API served up to an hour before the end (it lags the clock).
        let newest = first.ask.end_ms - HOUR_MS;
        f.fetched(Some(newest));
        // Two hours later: the newest hour and the two before it, to the new end.
        let later = f.plan_at(&s, t0 + 2 * HOUR_MS);
        assert!(later.incremental);
        assert_eq!(later.ask.start_ms, newest - 2 * HOUR_MS);
        assert_eq!(later.ask.end_ms, first.ask.end_ms + 2 * HOUR_MS);
        assert_eq!(later.window.start_ms, first.ask.start_ms + 2 * HOUR_MS);
        // A pause longer than the window: the whole window again.
        let much_later = f.plan_at(&s, t0 + 10 * HOUR_MS);
        assert!(!much_later.incremental);
        assert_eq!(much_later.ask, much_later.window);
    }

    fn tx(name: &str, times: &[i64], v: i64) -> String {
        let records: Vec<String> = times
            .iter()
            .map(|t| format!(r#"{{"timestamp":{t},"totalCount":{v}}}"#))
            .collect();
        format!(
            r#"{{"transactionName":"{name}","alias":"a","transactionSeries":[{}]}}"#,
            records.join(",")
        )
    }

    #[test]
    fn the_saved_answer_keeps_older_hours_and_takes_the_tail_for_the_rest() {
        let dir = std::env::temp_dir().join(format!("wmtop-fresh-{}", std::process::id()));
        let path = dir.join("last_fetch.json");
        let h = |n: i64| n * HOUR_MS;
        let old = format!(
            "[{},{}]",
            tx("A", &[h(0), h(1), h(2), h(3)], 1),
            tx("B", &[h(0), h(1)], 1)
        );
        api::save_answer(&path, old.as_bytes()).unwrap();
        let tail = api::split_answer(Bytes::from(format!(
            "[{}]",
            tx("A", &[h(2), h(3), h(4)], 2)
        )))
        .unwrap();
        let planned = Planned {
            ask: Window {
                start_ms: h(2),
                end_ms: h(4),
            },
            window: Window {
                start_ms: h(1),
                end_ms: h(4),
            },
            incremental: true,
        };
        let answer = merge_saved(&path, &planned, &tail).unwrap();
        assert_eq!(answer.records(), 5);
        let merged: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let series = |i: usize| -> Vec<(i64, i64)> {
            merged[i]["transactionSeries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["timestamp"].as_i64().unwrap(),
                        r["totalCount"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(merged[0]["transactionName"], "A");
        assert_eq!(merged[0]["alias"], "a");
        // Hour 0 left the window; hour 1 is kept as saved; 2 and 3 are revised; 4 is new.
        assert_eq!(series(0), vec![(h(1), 1), (h(2), 2), (h(3), 2), (h(4), 2)]);
        assert_eq!(merged[1]["transactionName"], "B");
        assert_eq!(series(1), vec![(h(1), 1)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
