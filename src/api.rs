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

use crate::auth::{describe_reqwest, AuthError, TokenSource};
use crate::config::Settings;

/// The series endpoint, below the API base URL.
pub const SERIES_PATH: &str =
    "/services/wmerrorbudgetstatisticsservice/api/transactions/summary/series/all";

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the API refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the API failed after {attempts} attempts; last: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("the answer is not usable: {0}")]
    BadAnswer(String),
    #[error("cannot use {path}: {message}")]
    File { path: String, message: String },
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

    /// Records per transaction name (unnamed transactions under "").
    pub fn records_per_transaction(&self) -> std::collections::BTreeMap<String, u64> {
        let mut per = std::collections::BTreeMap::new();
        for t in &self.transactions {
            *per.entry(t.name.clone().unwrap_or_default()).or_default() += t.records as u64;
        }
        per
    }
}

/// What a fetch did.
#[derive(Debug, Clone)]
pub struct FetchReport {
    pub answer: Answer,
    pub attempts: u32,
    pub took: Duration,
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

/// Fetches the series for the configured window.
pub struct ApiClient {
    http: reqwest::Client,
    tokens: Arc<TokenSource>,
    url: String,
    query: Vec<(&'static str, String)>,
    attempts: u32,
}

impl ApiClient {
    pub fn new(http: reqwest::Client, tokens: Arc<TokenSource>, settings: &Settings) -> Self {
        ApiClient {
            http,
            tokens,
            url: format!("{}{SERIES_PATH}", settings.api_url.trim_end_matches('/')),
            query: vec![
                ("application_id", settings.application_id.clone()),
                ("range", "CUSTOM".into()),
                ("start_time", settings.start_time.0.to_string()),
                ("end_time", settings.end_time.0.to_string()),
                ("index", settings.index.clone()),
            ],
            attempts: 5,
        }
    }

    /// The token source, for status.
    pub fn tokens(&self) -> &Arc<TokenSource> {
        &self.tokens
    }

    /// Fetches and parses, retrying 5xx answers, time-outs, cut-off bodies and refused
    /// tokens with exponential backoff. `save` receives the raw body before it is split.
    pub async fn fetch(&self, save: Option<&Path>) -> Result<FetchReport, ApiError> {
        let started = Instant::now();
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                let wait = Duration::from_millis(250 << (attempt - 2).min(5));
                tracing::warn!(attempt, ?wait, "fetch failed ({last}); retrying");
                tokio::time::sleep(wait).await;
            }
            let (token, _) = self.tokens.token().await?;
            let resp = match self
                .http
                .get(&self.url)
                .query(&self.query)
                .bearer_auth(token.expose())
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = describe_reqwest(&e);
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    last = describe_reqwest(&e);
                    continue;
                }
            };
            match status {
                200 => {}
                401 => {
                    self.tokens.invalidate().await;
                    last = "401: the API refused the token".into();
                    continue;
                }
                500..=599 => {
                    last = format!("{status}: {}", snippet(&body));
                    continue;
                }
                _ => {
                    return Err(ApiError::Refused {
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
            match split_answer(body) {
                Ok(answer) => {
                    return Ok(FetchReport {
                        answer,
                        attempts: attempt,
                        took: started.elapsed(),
                    })
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(ApiError::GaveUp {
            attempts: self.attempts,
            last,
        })
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
