//! What a front end and the monitor say to each other: the [`Command`]s a front end
//! sends, the [`MonitorEvent`]s it is told, the pipeline's [`Stage`]s and their
//! [`StageState`], and the [`MonitorOptions`] of a live run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clickhouse::{DeadLetterEntry, QueryResult, Stored};
use crate::kafka::sampler::LagRow;
use crate::kafka::{ReplayFrom, ReplayPart};
use crate::load::events::Event;
use crate::runtime::ops::Ops;
use crate::source::api::Accounting;
use crate::tools::inspect::TransactionDetail;
use crate::tools::redrive::RedriveReport;

/// What a front end asks for.
#[derive(Clone, Debug)]
pub enum Command {
    /// Fetch again and publish.
    Reload,
    /// Work out what a replay would re-read (answered with [`MonitorEvent::ReplayPlan`]).
    PlanReplay(ReplayFrom),
    /// Stop the consumer, move the group to the plan's offsets, start it again.
    Replay(Vec<ReplayPart>),
    /// Stop the consumer, record the message as a dead letter and move the group past
    /// it, start the consumer again.
    Skip { partition: i32, offset: i64 },
    /// Pause (true) or resume (false) the consumer.
    Pause(bool),
    /// Run an ad-hoc query; a new one cancels the one running.
    Query { id: u64, sql: String },
    /// Cancel the running query.
    CancelQuery,
    /// Reconcile API, topic and ClickHouse per transaction and hour.
    Check,
    /// Look at one transaction across the saved fetch, the topic and ClickHouse
    /// (answered with [`MonitorEvent::Inspected`]).
    Inspect { name: String },
    /// List what was set aside (answered with [`MonitorEvent::DeadLetters`]).
    ListDeadLetters,
    /// Publish the set-aside messages and records again (answered with
    /// [`MonitorEvent::Redriven`], then a new listing).
    Redrive,
    /// Flush, commit and stop everything.
    Shutdown,
}

/// A stage of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Keycloak,
    Api,
    Kafka,
    ClickHouse,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Keycloak, Stage::Api, Stage::Kafka, Stage::ClickHouse];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Keycloak => "Keycloak",
            Stage::Api => "API",
            Stage::Kafka => "Kafka",
            Stage::ClickHouse => "ClickHouse",
        }
    }

    /// The stage's name in /health and /metrics.
    pub(super) fn ops_name(self) -> &'static str {
        match self {
            Stage::Keycloak => "keycloak",
            Stage::Api => "api",
            Stage::Kafka => "kafka",
            Stage::ClickHouse => "clickhouse",
        }
    }
}

/// How a stage is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageState {
    Unknown,
    Ok,
    Retrying(u32),
    Down,
}

/// What a front end is told.
#[derive(Clone, Debug)]
pub enum MonitorEvent {
    Stage {
        stage: Stage,
        state: StageState,
        error: Option<String>,
    },
    /// Where the series come from: the simulator's URL when it is the simulator.
    Source { simulator: Option<String> },
    /// When the access token expires (None: no token yet).
    TokenExpiry(Option<Instant>),
    /// A fetch finished: per transaction, records served and set aside.
    Fetched {
        per_transaction: Vec<(String, Accounting)>,
        took: Duration,
        /// The window asked for.
        window: crate::config::Window,
    },
    /// A publish finished: messages per transaction delivered.
    Published {
        per_transaction: Vec<(String, u64)>,
        delivered: usize,
        failed: usize,
        took: Duration,
    },
    /// A reload is running (true) or done (false).
    Reloading(bool),
    /// When the next scheduled reload starts (None: no schedule).
    NextReload(Option<Instant>),
    /// A reload's cycle ended: fetched, published, landed and settled, or why not.
    Cycle(Cycle),
    /// A fact from the consumer.
    Pipeline(Event),
    /// The consumer task is running (true) or stopped (false).
    ConsumerRunning(bool),
    /// Lag per partition, sampled now; an error when the sample failed.
    Lag(Result<Vec<LagRow>, String>),
    /// Rows stored and distinct records per transaction, as a plain query sees them.
    Counts(BTreeMap<String, Stored>),
    /// Each replica of the table behind a Distributed one, as it reports itself, sampled
    /// now (only for a Distributed table).
    Replicas(Vec<crate::clickhouse::cluster::ReplicaState>),
    /// A replay's plan, for the front end to confirm.
    ReplayPlan(Result<Vec<ReplayPart>, String>),
    /// A replay was applied (messages to re-read), or refused.
    Replayed(Result<i64, String>),
    /// A skip was applied, or refused.
    Skipped(Result<(i32, i64), String>),
    /// A reconciliation finished.
    Checked(Result<crate::tools::check::Report, String>),
    /// A query finished, failed (the server's code and message first) or was cancelled.
    QueryDone {
        id: u64,
        result: Result<QueryResult, String>,
        took: Duration,
    },
    /// What was found for one transaction.
    Inspected {
        name: String,
        detail: Result<TransactionDetail, String>,
    },
    /// What is set aside, newest first.
    DeadLetters(Result<Vec<DeadLetterEntry>, String>),
    /// A re-drive finished, or failed.
    Redriven(Result<RedriveReport, String>),
}

/// What started a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule (`reload_every`): only the new hours and the revision window.
    Schedule,
    /// Asked for (the `r` key): the whole window.
    Asked,
}

/// How a cycle ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleVerdict {
    /// Fetched, published, landed and settled.
    Done,
    /// The fetch or the publish failed: what was loaded before stays.
    Failed,
    /// Published, but the consumer did not land it in time.
    GaveUp,
}

impl CycleVerdict {
    pub fn name(self) -> &'static str {
        match self {
            CycleVerdict::Done => "done",
            CycleVerdict::Failed => "failed",
            CycleVerdict::GaveUp => "gave_up",
        }
    }
}

/// One reload from fetch to landed rows.
#[derive(Clone, Debug)]
pub struct Cycle {
    /// Counted from 1 in this run.
    pub number: u64,
    pub trigger: Trigger,
    /// The whole window kept fresh.
    pub window: crate::config::Window,
    /// The hours asked for (the window's tail on an incremental fetch).
    pub asked: crate::config::Window,
    pub incremental: bool,
    pub transactions: usize,
    pub records: usize,
    /// Bytes the API sent.
    pub bytes_fetched: usize,
    /// Payload bytes delivered to Kafka.
    pub bytes_published: usize,
    pub messages_delivered: usize,
    /// Rows written for hours not stored before.
    pub new_rows: u64,
    /// Rows written over hours the API revised.
    pub revised_rows: u64,
    /// Rows not written: stored with the same content.
    pub unchanged_rows: u64,
    /// Messages and records set aside.
    pub set_aside: u64,
    pub verdict: CycleVerdict,
    pub error: Option<String>,
    pub took: Duration,
    /// When it ended.
    pub ended_at: jiff::Timestamp,
}

impl Cycle {
    /// One JSON object, as `wmtop follow` prints it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "cycle": self.number,
            "trigger": match self.trigger { Trigger::Schedule => "schedule", Trigger::Asked => "asked" },
            "window": self.window.json(),
            "asked": self.asked.json(),
            "incremental": self.incremental,
            "transactions": self.transactions,
            "records": self.records,
            "bytes_fetched": self.bytes_fetched,
            "bytes_published": self.bytes_published,
            "messages_delivered": self.messages_delivered,
            "new_rows": self.new_rows,
            "revised_rows": self.revised_rows,
            "unchanged_rows": self.unchanged_rows,
            "set_aside": self.set_aside,
            "verdict": self.verdict.name(),
            "error": self.error,
            "took_ms": self.took.as_millis() as u64,
            "ended_at": self.ended_at.to_string(),
        })
    }
}

/// Options of a live run.
#[derive(Clone, Debug, Default)]
pub struct MonitorOptions {
    /// Let ad-hoc queries write (default: read-only).
    pub allow_writes: bool,
    /// Where to report for /health and /metrics.
    pub ops: Option<Arc<Ops>>,
    /// The simulator's URL when the series come from it.
    pub simulator: Option<String>,
    /// Keep the panes' figures fresh: rows per transaction and each replica's state
    /// (a front end with no panes, such as `follow`, leaves them off).
    pub panes: bool,
}
