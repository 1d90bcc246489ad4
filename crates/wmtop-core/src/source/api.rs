//! The Watermelon series API: fetching the transactions for a window (with retries, and a
//! fresh token when the API refuses one), accepting every response shape (a bare array,
//! or one wrapped under `data`, `records` or `series`), saving the raw answer, and
//! splitting an answer into one payload per transaction without re-encoding it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::config::{Settings, Window};
use crate::source::keycloak::{describe_reqwest, AuthError, TokenSource};

/// The series endpoint, below the API base URL.
pub const SERIES_PATH: &str =
    "/services/wmerrorbudgetstatisticsservice/api/transactions/summary/series/all";

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the API at {url} refused the request ({status}): {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the API at {url} is not answering usefully: {message}")]
    Unavailable {
        url: String,
        message: String,
        /// Retrying cannot help (a TLS certificate problem).
        permanent: bool,
    },
    #[error("the API at {url} did not answer usefully within {}s; last: {last}", waited.as_secs())]
    GaveUp {
        url: String,
        waited: Duration,
        last: Box<ApiError>,
    },
    #[error("stopped before the API answered")]
    Stopped,
    #[error("the answer is not usable: {0}")]
    BadAnswer(String),
    #[error("cannot use {path}: {message}")]
    File { path: String, message: String },
}

impl crate::net::retry::Transient for ApiError {
    fn transient(&self) -> bool {
        match self {
            ApiError::Auth(a) => !a.permanent(),
            ApiError::Unavailable { permanent, .. } => !permanent,
            // A cut-off or garbled body may come right the next time.
            ApiError::BadAnswer(_) => true,
            ApiError::Refused { .. }
            | ApiError::GaveUp { .. }
            | ApiError::Stopped
            | ApiError::File { .. } => false,
        }
    }
}

/// One transaction of an answer: its name, its record count, and its JSON as served.
#[derive(Debug, Clone)]
pub struct TxPayload {
    pub name: Option<String>,
    pub records: usize,
    pub payload: Bytes,
}

/// A parsed answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub transactions: Vec<TxPayload>,
    pub bytes: usize,
}

impl Answer {
    /// Records over all transactions.
    pub fn records(&self) -> usize {
        self.transactions.iter().map(|t| t.records).sum()
    }

    /// Per transaction: records served and records set aside (what flatten cannot use:
    /// a record with no usable time or a value of the wrong type; every record of a
    /// message that is not usable at all). Served = loadable + set aside, everywhere.
    pub fn accounting(&self) -> std::collections::BTreeMap<String, Accounting> {
        self.accounting_with(|_| {})
    }

    /// As [`Answer::accounting`], handing each loadable row to `each`.
    pub fn accounting_with(
        &self,
        mut each: impl FnMut(&crate::record::columns::MetricRow),
    ) -> std::collections::BTreeMap<String, Accounting> {
        let mut per: std::collections::BTreeMap<String, Accounting> = Default::default();
        for tx in &self.transactions {
            let name = tx.name.clone().unwrap_or_default();
            let set_aside = match crate::record::flatten::flatten_each(&tx.payload, |row| each(row))
            {
                Ok(f) => f.bad_records.len() as u64,
                Err(_) => tx.records as u64,
            };
            let a = per.entry(name).or_default();
            a.served += tx.records as u64;
            a.set_aside += set_aside;
        }
        per
    }

    /// Records per transaction name (unnamed transactions under "").
    pub fn records_per_transaction(&self) -> std::collections::BTreeMap<String, u64> {
        let mut per = std::collections::BTreeMap::new();
        for t in &self.transactions {
            *per.entry(t.name.clone().unwrap_or_default()).or_default() += t.records as u64;
        }
        per
    }
}

/// One transaction's records: served by the API, and of those, set aside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Accounting {
    pub served: u64,
    pub set_aside: u64,
}

impl Accounting {
    /// Records that load: served minus set aside.
    pub fn loadable(self) -> u64 {
        self.served.saturating_sub(self.set_aside)
    }
}

/// What a fetch did.
#[derive(Debug, Clone)]
pub struct FetchReport {
    pub answer: Answer,
    pub attempts: u32,
    pub took: Duration,
    /// The window asked for.
    pub window: Window,
}

#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    series: Option<Vec<&'a RawValue>>,
}

/// Counts the elements of an array without keeping them.
#[derive(Default)]
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "transactionName", default)]
    name: Option<serde_json::Value>,
    #[serde(rename = "transactionSeries", default)]
    series: Count,
}

/// Splits an answer into its transactions. Every shape of the contract is accepted.
pub fn split_answer(body: Bytes) -> Result<Answer, ApiError> {
    let text =
        std::str::from_utf8(&body).map_err(|e| ApiError::BadAnswer(format!("not UTF-8: {e}")))?;
    let items: Vec<&RawValue> = match text.trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str(text)
            .map_err(|e| ApiError::BadAnswer(format!("not valid JSON: {e}")))?,
        Some(b'{') => {
            let w: Wrapped<'_> = serde_json::from_str(text)
                .map_err(|e| ApiError::BadAnswer(format!("not valid JSON: {e}")))?;
            w.data.or(w.records).or(w.series).ok_or_else(|| {
                ApiError::BadAnswer(
                    "an object without a `data`, `records` or `series` array".into(),
                )
            })?
        }
        _ => {
            return Err(ApiError::BadAnswer(
                "neither a JSON array nor an object".into(),
            ))
        }
    };
    let base = body.as_ptr() as usize;
    let mut transactions = Vec::with_capacity(items.len());
    for (i, raw) in items.iter().enumerate() {
        let head: Head = serde_json::from_str(raw.get()).map_err(|e| {
            ApiError::BadAnswer(format!(
                "transaction {i} is not an object with transactionSeries: {e}"
            ))
        })?;
        let start = raw.get().as_ptr() as usize - base;
        let name = match head.name {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        transactions.push(TxPayload {
            name,
            records: head.series.0,
            payload: body.slice(start..start + raw.get().len()),
        });
    }
    Ok(Answer {
        transactions,
        bytes: body.len(),
    })
}

/// Reads a saved answer (`--from-file`).
pub fn read_answer(path: &Path) -> Result<Answer, ApiError> {
    let body = std::fs::read(path).map_err(|e| ApiError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    split_answer(Bytes::from(body)).map_err(|e| ApiError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Saves an answer as served, atomically (write then rename).
pub fn save_answer(path: &Path, body: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

/// Fetches the series for a window (the caller works it out at each fetch, so a window
/// relative to the clock moves with it).
pub struct ApiClient {
    http: reqwest::Client,
    tokens: Arc<TokenSource>,
    url: String,
    /// The URL as shown (credentials masked).
    shown: String,
    settings: Settings,
}

impl ApiClient {
    /// A client for the API at `api_url`, giving up on it after `max_wait`.
    pub fn new(
        http: reqwest::Client,
        tokens: Arc<TokenSource>,
        settings: &Settings,
        api_url: &str,
    ) -> Self {
        let url = format!("{}{SERIES_PATH}", api_url.trim_end_matches('/'));
        ApiClient {
            http,
            tokens,
            shown: crate::config::redact::mask_url(api_url),
            url,
            settings: settings.clone(),
        }
    }

    /// When the cached access token expires, if there is one.
    pub async fn token_expires_in(&self) -> Option<Duration> {
        self.tokens.expires_in().await
    }

    /// Fetches `window` and parses, retrying 5xx answers, time-outs, cut-off bodies and refused
    /// tokens with the one retry policy until `max_wait`; a refused login or request
    /// ends it at once. `save` receives the raw body before it is split; `on_retry`
    /// hears of each failed attempt.
    pub async fn fetch(
        &self,
        window: Window,
        save: Option<&Path>,
        stop: &tokio::sync::watch::Receiver<bool>,
        on_retry: impl FnMut(&ApiError, u32, Duration),
    ) -> Result<FetchReport, ApiError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        let what = format!("the API at {}", self.shown);
        let s = &self.settings;
        let query = [
            ("application_id", s.application_id.clone()),
            ("range", "CUSTOM".into()),
            ("start_time", window.start_ms.to_string()),
            ("end_time", window.end_ms.to_string()),
            ("index", s.index.clone()),
        ];
        let result = crate::net::retry::wait_for_with(
            &what,
            Some(self.settings.max_wait.0),
            stop,
            || {
                attempts += 1;
                self.fetch_once(&query, save)
            },
            on_retry,
        )
        .await;
        match result {
            Ok(answer) => Ok(FetchReport {
                answer,
                attempts,
                took: started.elapsed(),
                window,
            }),
            Err(crate::net::retry::WaitError::Stopped) => Err(ApiError::Stopped),
            Err(crate::net::retry::WaitError::Permanent(e)) => Err(e),
            Err(crate::net::retry::WaitError::GaveUp { waited, last }) => Err(ApiError::GaveUp {
                url: self.shown.clone(),
                waited,
                last: Box::new(last),
            }),
        }
    }

    async fn fetch_once(
        &self,
        query: &[(&str, String)],
        save: Option<&Path>,
    ) -> Result<Answer, ApiError> {
        let token = self.tokens.token().await?;
        let unavailable = |e: reqwest::Error| ApiError::Unavailable {
            url: self.shown.clone(),
            message: describe_reqwest(&e),
            permanent: crate::net::tls::classify(&e).is_some_and(|f| f.permanent()),
        };
        let resp = self
            .http
            .get(&self.url)
            .query(query)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(unavailable)?;
        match status {
            200 => {}
            401 => {
                self.tokens.invalidate().await;
                return Err(ApiError::Unavailable {
                    url: self.shown.clone(),
                    message: "401: the API refused the token".into(),
                    permanent: false,
                });
            }
            500..=599 | 408 | 429 => {
                return Err(ApiError::Unavailable {
                    url: self.shown.clone(),
                    message: format!("{status}: {}", snippet(&body)),
                    permanent: false,
                })
            }
            _ => {
                return Err(ApiError::Refused {
                    url: self.shown.clone(),
                    status,
                    message: snippet(&body),
                })
            }
        }
        if let Some(path) = save {
            if let Err(e) = save_answer(path, &body) {
                tracing::warn!("could not save the answer to {}: {e}", path.display());
            }
        }
        split_answer(body)
    }
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TX: &str =
        r#"{"transactionName":"GET /a","transactionSeries":[{"timestamp":1},{"timestamp":2}]}"#;

    #[test]
    fn every_shape_is_accepted() {
        for body in [
            format!("[{TX},{TX}]"),
            format!(r#"{{"data":[{TX},{TX}]}}"#),
            format!(r#"{{"meta":1,"records":[{TX},{TX}]}}"#),
            format!(r#" {{"series":[{TX},{TX}]}}"#),
        ] {
            let a = split_answer(Bytes::from(body.clone())).unwrap();
            assert_eq!(a.transactions.len(), 2, "{body}");
            assert_eq!(a.records(), 4);
            assert_eq!(
                a.records_per_transaction(),
                [("GET /a".to_string(), 4)].into()
            );
            assert_eq!(a.transactions[1].name.as_deref(), Some("GET /a"));
            assert_eq!(&a.transactions[1].payload[..], TX.as_bytes());
        }
    }

    #[test]
    fn unusable_answers_say_why() {
        let e = split_answer(Bytes::from_static(b"{\"items\":[]}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("without a `data`"), "{e}");
        let e = split_answer(Bytes::from_static(b"[{\"transactionName\":"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = split_answer(Bytes::from_static(b"42"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither"), "{e}");
    }
}
