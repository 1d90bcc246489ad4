//! What a consume run reports: its summary ([`ConsumeSummary`]: the verdict, what it
//! waited for when it gave up, the counts), how the loop ended before the summary is made
//! ([`End`]), and the ends made from a wait for ClickHouse or Kafka that did not succeed.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::events::{Drift, Stuck};
use super::verdict::{Verdict, WaitedFor};
use crate::clickhouse::{ChError, Settled};
use crate::kafka::KafkaOpError;
use crate::net::retry::WaitError;

/// What a consume run did, and how it ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumeSummary {
    pub verdict: Verdict,
    /// Stopped by a signal or the user (flushed and committed first).
    pub interrupted: bool,
    /// When it gave up or failed: what it was waiting for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_for: Option<WaitedFor>,
    /// When it gave up or failed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub messages: u64,
    /// Records in the messages read.
    pub records: u64,
    /// Rows written to ClickHouse.
    pub rows_inserted: u64,
    /// Rows not written: their hour was stored with the same content (or a newer one).
    pub rows_unchanged: u64,
    /// Rows written over an hour stored with other content (merged away after).
    pub rows_replaced: u64,
    pub batches: u64,
    pub bad_messages: u64,
    /// Records set aside (each with its reason in the dead-letter table).
    pub bad_records: u64,
    pub insert_retries: u64,
    pub commits: u64,
    /// Messages the broker did not serve (each blocks its partition until skipped).
    pub stuck: Vec<Stuck>,
    /// The merge after the load: months merged, copies left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled: Option<Settled>,
    /// From the start of the run to the last commit.
    pub loaded_ms: u64,
    /// Record fields the table has no column for.
    pub unknown_fields: Vec<String>,
    /// Each drift found: fields added or gone, and since when.
    pub schema_drift: Vec<Drift>,
    pub took_ms: u64,
    pub clickhouse_version: String,
    pub table: String,
}

/// How the loop ended, before the summary is made.
pub(super) struct End {
    pub(super) verdict: Verdict,
    pub(super) waited_for: Option<WaitedFor>,
    pub(super) error: Option<String>,
}

impl End {
    /// Read to the end, landed and committed.
    pub(super) fn done() -> End {
        End {
            verdict: Verdict::Done,
            waited_for: None,
            error: None,
        }
    }

    /// Failed for good, with the reason.
    pub(super) fn failed(error: impl std::fmt::Display) -> End {
        End {
            verdict: Verdict::Failed,
            waited_for: None,
            error: Some(error.to_string()),
        }
    }

    /// A wait that did not succeed: stopped, refused for good, or given up on (which
    /// `gave_up` describes, from how long it waited and the last error).
    fn from_wait<E: std::fmt::Display>(
        e: WaitError<E>,
        gave_up: impl FnOnce(Duration, String) -> End,
    ) -> End {
        match e {
            WaitError::Stopped => interrupted(),
            WaitError::Permanent(e) => End::failed(e),
            WaitError::GaveUp { waited, last } => gave_up(waited, last.to_string()),
        }
    }

    /// A wait for ClickHouse that did not succeed.
    pub(super) fn from_clickhouse(e: WaitError<ChError>, url: &str) -> End {
        End::from_wait(e, |waited, last| {
            End::gave_up(
                WaitedFor::server("clickhouse", url, waited, last.clone()),
                last,
            )
        })
    }

    /// Given up on what `waited_for` says, with the error in a sentence.
    pub(super) fn gave_up(waited_for: WaitedFor, error: String) -> End {
        End {
            verdict: Verdict::GaveUp,
            waited_for: Some(waited_for),
            error: Some(error),
        }
    }

    /// A wait for Kafka that did not succeed.
    pub(super) fn from_kafka(e: WaitError<KafkaOpError>, brokers: &str) -> End {
        End::from_wait(e, |waited, last| {
            End::gave_up_on_kafka(brokers, waited, last)
        })
    }

    /// The brokers did not answer for `waited`.
    pub(super) fn gave_up_on_kafka(brokers: &str, waited: Duration, reason: String) -> End {
        let error = format!(
            "Kafka at {brokers} did not answer for {}s: {reason}",
            waited.as_secs()
        );
        End::gave_up(WaitedFor::server("kafka", brokers, waited, reason), error)
    }
}

/// Stopped by a signal or the user.
pub(super) fn interrupted() -> End {
    End {
        verdict: Verdict::Interrupted,
        waited_for: None,
        error: None,
    }
}

/// The summary of a run that ended with `end`, its time taken filled in.
pub(super) fn finish(mut summary: ConsumeSummary, end: End, started: Instant) -> ConsumeSummary {
    summary.interrupted = end.verdict == Verdict::Interrupted;
    summary.verdict = end.verdict;
    summary.waited_for = end.waited_for;
    summary.error = end.error;
    summary.took_ms = started.elapsed().as_millis() as u64;
    if let Some(e) = &summary.error {
        tracing::error!("consume: {e}");
    }
    summary
}
