//! Facts the pipeline's tasks report as they work, for the front ends: small typed events
//! sent with `try_send` on a bounded channel, so a slow screen never slows the pipeline.

use std::time::Duration;

use tokio::sync::mpsc;

/// One fact from a pipeline task.
#[derive(Debug, Clone)]
pub enum Event {
    /// A batch reached ClickHouse and its offsets were committed.
    Flushed {
        /// Rows written.
        rows: usize,
        /// Rows not written: their hour was stored with the same content already.
        unchanged: usize,
        /// Rows written over an hour stored with other content (a copy until merged).
        replaced: usize,
        /// Kafka messages the batch came from.
        messages: usize,
        /// Kafka payload bytes the batch came from.
        bytes: usize,
        dead_letters: usize,
        took: Duration,
        retries: u32,
        /// Per partition: first and last offset in the batch.
        offsets: Vec<(i32, i64, i64)>,
        /// Records taken in (written or already stored) per transaction.
        per_transaction: Vec<(String, u64)>,
    },
    /// An insert failed and will be retried.
    InsertRetry { attempt: u32, error: String },
    /// A message (all of it) or one record was set aside.
    DeadLettered {
        partition: i32,
        offset: i64,
        transaction: String,
        /// The whole message, not one record of it.
        whole_message: bool,
        reason: String,
    },
    /// The partitions this consumer holds changed.
    Assigned { partitions: Vec<i32> },
    /// The consumer was paused (true) or resumed (false).
    Paused(bool),
    /// Schema drift: record fields the table has no column for started arriving
    /// (`added`), or columns that used to arrive stopped (`missing`).
    SchemaDrift(Drift),
    /// The broker has not served the message at this offset for a while; the partition
    /// is blocked until it is skipped (`wmtop dead-letters --skip`).
    Stuck(Stuck),
    /// A partition reported stuck moved on.
    Unstuck { partition: i32 },
    /// Every partition held is read to its high watermark and every batch landed;
    /// merging the partitions that hold copies of what it wrote (if any) before the load
    /// counts as done.
    Settling { transactions: usize },
    /// The load is done: copies merged away (or left, and how many).
    Settled(crate::clickhouse::Settled),
}

/// A message the broker does not serve.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stuck {
    pub partition: i32,
    pub offset: i64,
    /// The partition's high watermark when it was seen.
    pub high: i64,
    /// The message's size, when the broker or client said it.
    pub size: Option<u64>,
    /// How long nothing came.
    pub waited_s: u64,
}

/// One schema drift finding: what changed, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    /// Fields the API sends that the table has no column for.
    pub added: Vec<String>,
    /// Columns the API used to send and no longer does.
    pub missing: Vec<String>,
    /// Where it was first seen.
    pub partition: i32,
    pub offset: i64,
    /// When it was first seen (RFC 3339).
    pub since: String,
}

/// The sending side; `None` when nobody listens (headless).
#[derive(Clone, Default)]
pub struct Events(Option<mpsc::Sender<Event>>);

impl Events {
    pub fn new(tx: mpsc::Sender<Event>) -> Self {
        Events(Some(tx))
    }

    /// Sends without waiting; a full or closed channel drops the event.
    pub fn send(&self, e: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.try_send(e);
        }
    }
}
