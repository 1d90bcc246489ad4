//! The TUI's state: a plain struct fed with monitor events and key actions, updated
//! synchronously. It decides what to ask of the pipeline (returned as commands) and holds
//! everything the panes draw; drawing only reads it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tui_input::Input;
use wmtop_core::clickhouse::{QueryResult, Stored};
use wmtop_core::kafka::{ReplayFrom, ReplayPart};
use wmtop_core::load::events::{Event, Stuck};
use wmtop_core::runtime::monitor::{Command, LagRow, MonitorEvent, Stage, StageState};
use wmtop_core::source::api::Accounting;

use super::keymap::{Action, Mode};

/// The panes below the status bar, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Lag,
    Flushes,
    Transactions,
    Query,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Lag, Pane::Flushes, Pane::Transactions, Pane::Query];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Lag => "Consumer lag",
            Pane::Flushes => "Batch flushes",
            Pane::Transactions => "Transactions",
            Pane::Query => "Query",
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// One flush, as the flushes pane lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct FlushRow {
    pub at: jiff::Timestamp,
    /// Rows written.
    pub rows: usize,
    /// Rows already stored with the same content (not written).
    pub unchanged: usize,
    pub bytes: usize,
    pub took: Duration,
    pub offsets: Vec<(i32, i64, i64)>,
    pub retries: u32,
    pub dead_letters: usize,
}

/// One transaction's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxRow {
    /// Records the last fetch served, and how many of them are set aside.
    pub api: Option<Accounting>,
    /// Messages published this run.
    pub produced: u64,
    /// Records the last load took in (written, or already stored the same).
    pub loaded: u64,
    /// Rows stored and distinct records, as a plain query counts them.
    pub stored: Option<Stored>,
}

/// A transaction's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxStatus {
    Unknown,
    Loading,
    /// Stored as served; `n` records set aside (each with its reason).
    Ok(u64),
    /// Records served (and loadable) that are not stored.
    Missing(u64),
    /// Distinct records stored beyond what the API served.
    Extra(u64),
    /// The last reconciliation found hours missing.
    Gaps(u64),
    /// Rows stored beyond one per record: what a plain query counts twice.
    Dups(u64),
}

impl TxStatus {
    pub fn label(self) -> String {
        match self {
            TxStatus::Unknown => "-".into(),
            TxStatus::Loading => "loading".into(),
            TxStatus::Ok(0) => "ok".into(),
            TxStatus::Ok(n) => format!("ok, {n} set aside"),
            TxStatus::Missing(n) => format!("MISSING {n}"),
            TxStatus::Extra(n) => format!("EXTRA {n}"),
            TxStatus::Gaps(n) => format!("GAPS {n}"),
            TxStatus::Dups(n) => format!("DUPS {n}"),
        }
    }

    /// Something a user must look at.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            TxStatus::Missing(_) | TxStatus::Extra(_) | TxStatus::Gaps(_) | TxStatus::Dups(_)
        )
    }
}

/// Transactions pane columns (sortable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxColumn {
    Name,
    Api,
    Produced,
    Loaded,
    Stored,
    Distinct,
    Status,
}

impl TxColumn {
    pub const ALL: [TxColumn; 7] = [
        TxColumn::Name,
        TxColumn::Api,
        TxColumn::Produced,
        TxColumn::Loaded,
        TxColumn::Stored,
        TxColumn::Distinct,
        TxColumn::Status,
    ];

    pub fn title(self) -> &'static str {
        match self {
            TxColumn::Name => "Transaction",
            TxColumn::Api => "API",
            TxColumn::Produced => "Msgs",
            TxColumn::Loaded => "Last load",
            TxColumn::Stored => "Stored",
            TxColumn::Distinct => "Distinct",
            TxColumn::Status => "Status",
        }
    }
}

/// The query pane.
#[derive(Default)]
pub struct QueryState {
    pub input: Input,
    pub history: Vec<String>,
    pub history_pos: Option<usize>,
    pub running: Option<(u64, Instant)>,
    pub next_id: u64,
    pub result: Option<QueryResult>,
    pub error: Option<String>,
    pub took: Option<Duration>,
    pub row: usize,
    pub col: usize,
    pub last_sql: String,
}

/// A reconciliation's findings per transaction, or why it failed.
pub type CheckResult = Result<BTreeMap<String, wmtop_core::tools::check::TransactionCheck>, String>;

/// Everything the screen shows.
pub struct App {
    pub started: Instant,
    pub focus: Pane,
    pub mode: Mode,
    pub stages: BTreeMap<Stage, (StageState, Option<String>)>,
    pub token_expiry: Option<Instant>,
    pub consumer_running: bool,
    pub paused: bool,
    pub reloading: bool,
    pub lag: Vec<LagRow>,
    /// When the lag was last sampled; None: never, or the last sample failed.
    pub lag_at: Option<Instant>,
    /// Why the last lag sample failed.
    pub lag_error: Option<String>,
    /// Messages the broker does not serve, per partition.
    pub stuck: BTreeMap<i32, Stuck>,
    /// The load is merging copies away (months), or None.
    pub merging: Option<Vec<u32>>,
    /// When the last load was settled (every partition read, copies merged).
    pub settled_at: Option<jiff::Timestamp>,
    /// The simulator's URL when the series come from it.
    pub simulator: Option<String>,
    /// When rows stored per transaction were last counted.
    pub counts_at: Option<jiff::Timestamp>,
    pub lag_history: VecDeque<u64>,
    pub assigned: Vec<i32>,
    pub flushes: VecDeque<FlushRow>,
    pub rows_per_sec: VecDeque<u64>,
    rows_this_second: u64,
    pub totals: Totals,
    pub retrying: Option<(u32, String)>,
    pub txs: BTreeMap<String, TxRow>,
    pub sort: (TxColumn, bool),
    pub filter: Input,
    pub scroll: [usize; 4],
    pub help_scroll: usize,
    pub query: QueryState,
    pub replay_input: Input,
    pub replay_plan: Option<Result<Vec<ReplayPart>, String>>,
    pub message: Option<(String, Instant)>,
    pub unknown_fields: Vec<String>,
    /// The last reconciliation: per transaction, and when it was taken.
    pub check: Option<(jiff::Timestamp, CheckResult)>,
    pub dirty: bool,
    /// The clock texts last drawn.
    shown_clock: (String, String),
    pub quit: bool,
    pub log_path: PathBuf,
    pub export_dir: PathBuf,
    pub history_path: PathBuf,
    pub allow_writes: bool,
    /// TLS verification is off (`--insecure`): shown on screen at all times.
    pub insecure: bool,
    pub table: String,
}

/// Running totals of this run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub batches: u64,
    pub rows: u64,
    pub bytes: u64,
    pub retries: u64,
    pub dead_letters: u64,
    pub fetches: u64,
    pub published: u64,
}

/// Samples kept for sparklines: five minutes at one per second.
const HISTORY: usize = 300;
const MAX_FLUSHES: usize = 1000;

impl App {
    pub fn new(table: String, data_dir: PathBuf, log_path: PathBuf, allow_writes: bool) -> App {
        let history_path = data_dir.join("query_history");
        let history = std::fs::read_to_string(&history_path)
            .map(|t| {
                t.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        App {
            started: Instant::now(),
            focus: Pane::Transactions,
            mode: Mode::Normal,
            stages: Stage::ALL
                .iter()
                .map(|s| (*s, (StageState::Unknown, None)))
                .collect(),
            token_expiry: None,
            consumer_running: false,
            paused: false,
            reloading: false,
            lag: Vec::new(),
            lag_at: None,
            lag_error: None,
            stuck: BTreeMap::new(),
            merging: None,
            settled_at: None,
            simulator: None,
            counts_at: None,
            lag_history: VecDeque::with_capacity(HISTORY),
            assigned: Vec::new(),
            flushes: VecDeque::new(),
            rows_per_sec: VecDeque::with_capacity(HISTORY),
            rows_this_second: 0,
            totals: Totals::default(),
            retrying: None,
            txs: BTreeMap::new(),
            sort: (TxColumn::Name, false),
            filter: Input::default(),
            scroll: [0; 4],
            help_scroll: 0,
            query: QueryState {
                history,
                ..QueryState::default()
            },
            replay_input: Input::default(),
            replay_plan: None,
            message: None,
            unknown_fields: Vec::new(),
            check: None,
            dirty: true,
            shown_clock: Default::default(),
            quit: false,
            log_path,
            export_dir: data_dir.join("exports"),
            history_path,
            allow_writes,
            insecure: false,
            table,
        }
    }

    /// The key mode in force (the query pane adds its own keys to Normal).
    pub fn key_mode(&self) -> Mode {
        match self.mode {
            Mode::Normal if self.focus == Pane::Query => Mode::QueryPane,
            m => m,
        }
    }

    fn say(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Instant::now()));
    }

    /// Total lag, if every partition's is known.
    pub fn total_lag(&self) -> Option<u64> {
        if self.lag_at.is_none() || self.lag.is_empty() {
            return None;
        }
        self.lag
            .iter()
            .map(|l| l.lag.lag.and_then(|n| u64::try_from(n).ok()))
            .sum()
    }

    /// A transaction's verdict from plain counts: stored rows and distinct records
    /// against the records the API served minus those set aside.
    pub fn status(&self, tx: &TxRow) -> TxStatus {
        let (Some(api), Some(stored)) = (tx.api, tx.stored) else {
            return if tx.api.is_some() {
                TxStatus::Loading
            } else {
                TxStatus::Unknown
            };
        };
        let busy = self.reloading
            || self.merging.is_some()
            || self.total_lag().is_none_or(|l| l > 0)
            || self.flushed_recently();
        if stored.copies() > 0 && !busy {
            return TxStatus::Dups(stored.copies());
        }
        let want = api.loadable();
        if stored.distinct == want && stored.copies() == 0 {
            return TxStatus::Ok(api.set_aside);
        }
        match (stored.distinct < want, busy) {
            (_, true) => TxStatus::Loading,
            (true, false) => TxStatus::Missing(want - stored.distinct),
            (false, false) if stored.distinct > want => TxStatus::Extra(stored.distinct - want),
            (false, false) => TxStatus::Dups(stored.copies()),
        }
    }

    fn flushed_recently(&self) -> bool {
        self.flushes.front().is_some_and(|f| {
            jiff::Timestamp::now().duration_since(f.at) < jiff::SignedDuration::from_secs(3)
        })
    }

    /// The transactions shown: filtered by name, sorted by the chosen column.
    /// The verdict shown: the last reconciliation's finding when it found a problem and
    /// nothing was loaded since; otherwise the counts' verdict.
    pub fn verdict(&self, name: &str, tx: &TxRow) -> TxStatus {
        if let Some((at, Ok(checks))) = &self.check {
            let fresh = self.flushes.front().is_none_or(|f| f.at <= *at);
            if let Some(c) = checks.get(name).filter(|_| fresh) {
                if c.copies > 0 {
                    return TxStatus::Dups(c.copies);
                }
                if c.gaps > 0 {
                    return TxStatus::Gaps(c.gaps);
                }
            }
        }
        self.status(tx)
    }

    pub fn visible_txs(&self) -> Vec<(&String, &TxRow, TxStatus)> {
        let needle = self.filter.value().to_lowercase();
        let mut rows: Vec<_> = self
            .txs
            .iter()
            .filter(|(name, _)| needle.is_empty() || name.to_lowercase().contains(&needle))
            .map(|(n, t)| (n, t, self.verdict(n, t)))
            .collect();
        let (col, rev) = self.sort;
        rows.sort_by(|a, b| {
            let ord = match col {
                TxColumn::Name => a.0.cmp(b.0),
                TxColumn::Api => a.1.api.map(|x| x.served).cmp(&b.1.api.map(|x| x.served)),
                TxColumn::Produced => a.1.produced.cmp(&b.1.produced),
                TxColumn::Loaded => a.1.loaded.cmp(&b.1.loaded),
                TxColumn::Stored => a.1.stored.map(|x| x.rows).cmp(&b.1.stored.map(|x| x.rows)),
                TxColumn::Distinct => {
                    a.1.stored
                        .map(|x| x.distinct)
                        .cmp(&b.1.stored.map(|x| x.distinct))
                }
                TxColumn::Status => a.2.cmp(&b.2),
            }
            .then_with(|| a.0.cmp(b.0));
            if rev {
                ord.reverse()
            } else {
                ord
            }
        });
        rows
    }

    /// The transaction under the cursor, if any.
    pub fn selected_tx(&self) -> Option<String> {
        let rows = self.visible_txs();
        rows.get(self.scroll[Pane::Transactions.index()].min(rows.len().saturating_sub(1)))
            .map(|(n, _, _)| (*n).clone())
    }

    /// Called once a second: rolls the sparklines.
    pub fn tick(&mut self) {
        push(&mut self.rows_per_sec, self.rows_this_second);
        self.rows_this_second = 0;
        if let Some(l) = self.total_lag() {
            push(&mut self.lag_history, l);
        }
        if self
            .message
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > Duration::from_secs(8))
        {
            self.message = None;
            self.dirty = true;
        }
        // Redraw only when what the clock shows changed, or a sparkline moved.
        let clock = self.clock();
        if clock != self.shown_clock {
            self.shown_clock = clock;
            self.dirty = true;
        }
        if self.rows_per_sec.iter().any(|n| *n > 0) || self.lag_history.iter().any(|n| *n > 0) {
            self.dirty = true;
        }
    }

    /// Uptime and token countdown as the status bar shows them: seconds below a
    /// minute, minutes above, so an idle screen changes at most once a minute.
    pub fn clock(&self) -> (String, String) {
        let coarse = |d: Duration| {
            let s = d.as_secs();
            match s {
                0..=59 => format!("{s}s"),
                60..=3599 => format!("{}m", s / 60),
                _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
            }
        };
        let token = match self.token_expiry {
            None => "-".to_string(),
            Some(at) if at > Instant::now() => coarse(at - Instant::now()),
            // Not a fault: the next fetch logs in again.
            Some(_) => "renews at next fetch".to_string(),
        };
        (coarse(self.started.elapsed()), token)
    }

    /// Applies a pipeline event.
    pub fn on_event(&mut self, e: MonitorEvent) {
        // Periodic samples (stage states, lag) redraw only when they change what is shown.
        let changed = match &e {
            MonitorEvent::Stage {
                stage,
                state,
                error,
            } => {
                // An error stays shown until the stage is ok again.
                let keep = match (state, error) {
                    (StageState::Ok, _) => None,
                    (_, Some(e)) => Some(e.clone()),
                    (_, None) => self.stages.get(stage).and_then(|s| s.1.clone()),
                };
                let new = (state.clone(), keep);
                let changed = self.stages.get(stage) != Some(&new);
                self.stages.insert(*stage, new);
                changed
            }
            MonitorEvent::Lag(Err(_)) => self.lag_at.is_some(),
            MonitorEvent::Lag(Ok(rows)) => self.lag_at.is_none() || *rows != self.lag,
            _ => true,
        };
        self.dirty |= changed;
        match e {
            MonitorEvent::Stage { .. } => {}
            MonitorEvent::Source { simulator } => self.simulator = simulator,
            MonitorEvent::TokenExpiry(at) => self.token_expiry = at,
            MonitorEvent::Reloading(on) => self.reloading = on,
            MonitorEvent::Fetched {
                per_transaction,
                took,
            } => {
                self.totals.fetches += 1;
                for row in self.txs.values_mut() {
                    row.api = None;
                    row.loaded = 0;
                }
                let n = per_transaction.len();
                for (name, records) in per_transaction {
                    self.txs.entry(name).or_default().api = Some(records);
                }
                self.say(format!(
                    "fetched {n} transactions in {:.1} s",
                    took.as_secs_f64()
                ));
            }
            MonitorEvent::Published {
                per_transaction,
                delivered,
                failed,
                took,
            } => {
                self.totals.published += delivered as u64;
                for (name, n) in per_transaction {
                    self.txs.entry(name).or_default().produced += n;
                }
                if failed > 0 {
                    self.say(format!(
                        "publish: {failed} messages NOT delivered, {delivered} delivered"
                    ));
                } else {
                    self.say(format!(
                        "published {delivered} messages in {:.2} s",
                        took.as_secs_f64()
                    ));
                }
            }
            MonitorEvent::Pipeline(ev) => self.on_pipeline(ev),
            MonitorEvent::ConsumerRunning(on) => self.consumer_running = on,
            MonitorEvent::Lag(Err(e)) => {
                self.lag_at = None;
                self.lag_error = Some(e);
            }
            MonitorEvent::Lag(Ok(rows)) => {
                self.lag = rows;
                self.lag_at = Some(Instant::now());
                self.lag_error = None;
            }
            MonitorEvent::Counts(counts) => {
                self.counts_at = Some(jiff::Timestamp::now());
                for row in self.txs.values_mut() {
                    row.stored = Some(Stored::default());
                }
                for (name, n) in counts {
                    self.txs.entry(name).or_default().stored = Some(n);
                }
            }
            MonitorEvent::Skipped(r) => match r {
                Ok((p, o)) => {
                    self.stuck.remove(&p);
                    self.say(format!("skipped partition {p} offset {o}: recorded as a dead letter, group moved past it"));
                }
                Err(e) => self.say(format!("skip refused: {e}")),
            },
            MonitorEvent::ReplayPlan(plan) => {
                if self.mode == Mode::Confirm {
                    self.replay_plan = Some(plan);
                }
            }
            MonitorEvent::Replayed(r) => match r {
                Ok(n) => self.say(format!("replay started: re-reading {n} messages")),
                Err(e) => self.say(format!("replay failed: {e}")),
            },
            MonitorEvent::Checked(report) => {
                let at = jiff::Timestamp::now();
                match report {
                    Ok(r) => {
                        self.say(format!(
                            "verify: {} gaps, {} stored copies, {} extra rows over {} transactions{}",
                            r.totals.gaps,
                            r.totals.copies,
                            r.totals.extras,
                            r.transactions.len(),
                            if r.ok() { " - ok" } else { "" }
                        ));
                        let per = r
                            .transactions
                            .into_iter()
                            .map(|t| (t.name.clone(), t))
                            .collect();
                        self.check = Some((at, Ok(per)));
                    }
                    Err(e) => {
                        self.say(format!("verify failed: {e}"));
                        self.check = Some((at, Err(e)));
                    }
                }
            }
            MonitorEvent::QueryDone { id, result, took } => {
                if self.query.running.is_some_and(|(rid, _)| rid == id) || id == 0 {
                    self.query.running = None;
                    self.query.took = Some(took);
                    match result {
                        Ok(r) => {
                            self.query.result = Some(r);
                            self.query.error = None;
                        }
                        Err(e) => self.query.error = Some(e),
                    }
                    self.query.row = 0;
                    self.query.col = 0;
                }
            }
        }
    }

    fn on_pipeline(&mut self, ev: Event) {
        match ev {
            Event::Flushed {
                rows,
                unchanged,
                replaced: _,
                messages: _,
                bytes,
                dead_letters,
                took,
                retries,
                offsets,
                per_transaction,
            } => {
                self.retrying = None;
                self.totals.batches += 1;
                self.totals.rows += rows as u64;
                self.totals.bytes += bytes as u64;
                self.totals.retries += u64::from(retries);
                self.totals.dead_letters += dead_letters as u64;
                self.rows_this_second += rows as u64;
                for (name, n) in per_transaction {
                    self.txs.entry(name).or_default().loaded += n;
                }
                self.flushes.push_front(FlushRow {
                    at: jiff::Timestamp::now(),
                    rows,
                    unchanged,
                    bytes,
                    took,
                    offsets,
                    retries,
                    dead_letters,
                });
                self.flushes.truncate(MAX_FLUSHES);
            }
            Event::InsertRetry { attempt, error } => self.retrying = Some((attempt, error)),
            Event::DeadLettered { .. } => {}
            Event::SchemaDrift(d) => {
                let mut parts = Vec::new();
                if !d.added.is_empty() {
                    parts.push(format!(
                        "new fields without a column: {}",
                        d.added.join(", ")
                    ));
                }
                if !d.missing.is_empty() {
                    parts.push(format!("fields no longer sent: {}", d.missing.join(", ")));
                }
                self.say(format!(
                    "schema drift since {}: {}",
                    d.since,
                    parts.join("; ")
                ));
                self.unknown_fields.extend(d.added);
            }
            Event::Assigned { partitions } => self.assigned = partitions,
            Event::Paused(p) => self.paused = p,
            Event::Stuck(s) => {
                self.say(format!(
                    "partition {} is blocked: the broker does not serve offset {}",
                    s.partition, s.offset
                ));
                self.stuck.insert(s.partition, s);
            }
            Event::Unstuck { partition } => {
                self.stuck.remove(&partition);
            }
            Event::Settling { months } => self.merging = Some(months),
            Event::Settled(settled) => {
                self.merging = None;
                self.settled_at = Some(jiff::Timestamp::now());
                if settled.copies_left > 0 {
                    self.say(format!(
                        "{} stored copies are left (the table does not merge them away)",
                        settled.copies_left
                    ));
                }
            }
        }
    }

    /// Applies a key action; returns what to ask of the pipeline.
    pub fn on_action(&mut self, action: Action) -> Vec<Command> {
        self.dirty = true;
        let pane = self.focus.index();
        match (self.mode, action) {
            (_, Action::Quit) => self.quit = true,
            (Mode::Help, Action::Cancel) => self.mode = Mode::Normal,
            (Mode::Help, Action::Down) => self.help_scroll += 1,
            (Mode::Help, Action::Up) => self.help_scroll = self.help_scroll.saturating_sub(1),
            (_, Action::Help) => {
                self.mode = Mode::Help;
                self.help_scroll = 0;
            }
            (_, Action::NextPane) => self.focus = Pane::ALL[(pane + 1) % Pane::ALL.len()],
            (_, Action::PrevPane) => {
                self.focus = Pane::ALL[(pane + Pane::ALL.len() - 1) % Pane::ALL.len()]
            }
            (_, Action::Down) => self.scroll_by(1),
            (_, Action::Up) => self.scroll_by(-1),
            (_, Action::PageDown) => self.scroll_by(10),
            (_, Action::PageUp) => self.scroll_by(-10),
            (_, Action::Top) => self.scroll_by(-(1 << 30)),
            (_, Action::Bottom) => self.scroll_by(1 << 30),
            (_, Action::Left) => self.query.col = self.query.col.saturating_sub(1),
            (_, Action::Right) => {
                let cols = self.query.result.as_ref().map_or(0, |r| r.columns.len());
                self.query.col = (self.query.col + 1).min(cols.saturating_sub(1));
            }
            (Mode::Filter, Action::Accept) => self.mode = Mode::Normal,
            (Mode::Filter, Action::Cancel) => {
                self.filter.reset();
                self.mode = Mode::Normal;
            }
            (_, Action::Filter) => {
                self.focus = Pane::Transactions;
                self.scroll[Pane::Transactions.index()] = 0;
                self.mode = Mode::Filter;
            }
            (_, Action::Sort) => {
                let i = TxColumn::ALL
                    .iter()
                    .position(|c| *c == self.sort.0)
                    .unwrap_or(0);
                self.sort = (TxColumn::ALL[(i + 1) % TxColumn::ALL.len()], false);
            }
            (_, Action::SortReverse) => self.sort.1 = !self.sort.1,
            (_, Action::Reload) => {
                if self.reloading {
                    self.say("a reload is already running");
                } else {
                    self.reloading = true;
                    self.say("reload: fetching and publishing...");
                    return vec![Command::Reload];
                }
            }
            (_, Action::Verify) => {
                self.say("verify: reconciling API, topic and ClickHouse...");
                return vec![Command::Check];
            }
            (_, Action::TogglePause) => {
                let want = !self.paused;
                self.say(if want {
                    "pausing the consumer"
                } else {
                    "resuming the consumer"
                });
                return vec![Command::Pause(want)];
            }
            (Mode::ReplayFrom, Action::Accept) => {
                let text = self.replay_input.value().trim().to_string();
                let from = if text.is_empty() || text.eq_ignore_ascii_case("beginning") {
                    Ok(ReplayFrom::Beginning)
                } else {
                    text.parse::<wmtop_core::config::EpochMs>()
                        .map(|t| ReplayFrom::Time(t.0))
                };
                match from {
                    Ok(from) => {
                        self.mode = Mode::Confirm;
                        self.replay_plan = None;
                        return vec![Command::PlanReplay(from)];
                    }
                    Err(e) => self.say(format!("replay: {e}")),
                }
            }
            (Mode::ReplayFrom | Mode::Confirm, Action::Cancel) => {
                self.mode = Mode::Normal;
                self.replay_plan = None;
            }
            (_, Action::Replay) => {
                self.replay_input.reset();
                self.mode = Mode::ReplayFrom;
            }
            (Mode::Confirm, Action::Confirm) => {
                if let Some(Ok(plan)) = self.replay_plan.take() {
                    self.mode = Mode::Normal;
                    return vec![Command::Replay(plan)];
                }
            }
            (_, Action::EditQuery) => {
                self.focus = Pane::Query;
                self.mode = Mode::Edit;
            }
            (Mode::Edit, Action::Cancel) => self.mode = Mode::Normal,
            (_, Action::Preset(i)) => {
                if let Some(p) = wmtop_core::clickhouse::queries::PRESETS.get(i) {
                    let tx = self.selected_tx().unwrap_or_default();
                    let sql = p.sql(&self.table, &tx);
                    self.query.input = Input::new(sql);
                    return self.run_query();
                }
            }
            (Mode::Edit, Action::RunQuery) => return self.run_query(),
            (Mode::Edit, Action::HistoryPrev) => self.history_step(-1),
            (Mode::Edit, Action::HistoryNext) => self.history_step(1),
            (_, Action::CancelQuery) if self.query.running.is_some() => {
                return vec![Command::CancelQuery]
            }
            (_, Action::ExportCsv) => self.export(false),
            (_, Action::ExportJson) => self.export(true),
            _ => {}
        }
        Vec::new()
    }

    fn scroll_by(&mut self, delta: isize) {
        let i = self.focus.index();
        let len = match self.focus {
            Pane::Lag => self.lag.len(),
            Pane::Flushes => self.flushes.len(),
            Pane::Transactions => self.visible_txs().len(),
            Pane::Query => self.query.result.as_ref().map_or(0, |r| r.rows.len()),
        };
        let cur = if self.focus == Pane::Query {
            self.query.row
        } else {
            self.scroll[i]
        };
        let next = (cur as isize + delta).clamp(0, len.saturating_sub(1) as isize) as usize;
        if self.focus == Pane::Query {
            self.query.row = next;
        } else {
            self.scroll[i] = next;
        }
    }

    fn run_query(&mut self) -> Vec<Command> {
        let sql = self.query.input.value().trim().to_string();
        if sql.is_empty() {
            self.say("type a query first (or press 1-5 in the query pane for a preset)");
            return Vec::new();
        }
        self.mode = Mode::Normal;
        self.focus = Pane::Query;
        self.query.next_id += 1;
        let id = self.query.next_id;
        self.query.running = Some((id, Instant::now()));
        self.query.error = None;
        self.query.history_pos = None;
        self.query.last_sql.clone_from(&sql);
        if self.query.history.last() != Some(&sql) {
            self.query.history.push(sql.clone());
            if self.query.history.len() > 500 {
                self.query.history.remove(0);
            }
            self.save_history();
        }
        vec![Command::Query { id, sql }]
    }

    fn save_history(&self) {
        if let Some(dir) = self.history_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let text: String = self
            .query
            .history
            .iter()
            .map(|q| format!("{}\n", q.replace('\n', " ")))
            .collect();
        if let Err(e) = std::fs::write(&self.history_path, text) {
            tracing::warn!(
                "cannot save query history to {}: {e}",
                self.history_path.display()
            );
        }
    }

    fn history_step(&mut self, delta: isize) {
        let n = self.query.history.len();
        if n == 0 {
            return;
        }
        let pos = match (self.query.history_pos, delta < 0) {
            (None, true) => n - 1,
            (None, false) => return,
            (Some(p), true) => p.saturating_sub(1),
            (Some(p), false) if p + 1 >= n => {
                self.query.history_pos = None;
                self.query.input.reset();
                return;
            }
            (Some(p), false) => p + 1,
        };
        self.query.history_pos = Some(pos);
        self.query.input = Input::new(self.query.history[pos].clone());
    }

    fn export(&mut self, json: bool) {
        let Some(result) = &self.query.result else {
            self.say("nothing to export: run a query first");
            return;
        };
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let path = self.export_dir.join(format!(
            "query-{stamp}.{}",
            if json { "json" } else { "csv" }
        ));
        let body = if json {
            result.to_json_lines()
        } else {
            result.to_csv(false)
        };
        let written =
            std::fs::create_dir_all(&self.export_dir).and_then(|()| std::fs::write(&path, body));
        match written {
            Ok(()) => self.say(format!(
                "exported {} rows to {}",
                result.rows.len(),
                path.display()
            )),
            Err(e) => self.say(format!("export to {} failed: {e}", path.display())),
        }
    }
}

fn push(v: &mut VecDeque<u64>, x: u64) {
    if v.len() == HISTORY {
        v.pop_front();
    }
    v.push_back(x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use wmtop_core::kafka::PartitionLag;

    fn served(n: u64) -> Accounting {
        Accounting {
            served: n,
            set_aside: 0,
        }
    }

    fn stored(n: u64) -> Stored {
        Stored {
            rows: n,
            distinct: n,
        }
    }

    fn app() -> App {
        let dir = std::env::temp_dir().join(format!(
            "wmtop-state-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        App::new("db.t".into(), dir.clone(), dir.join("wmtop.log"), false)
    }

    fn lag(partition: i32, lag: Option<i64>) -> LagRow {
        LagRow {
            lag: PartitionLag {
                partition,
                committed: Some(0),
                low: 0,
                high: lag.unwrap_or(0),
                lag,
            },
            oldest_age: None,
        }
    }

    fn flushed(rows: usize, per: &[(&str, u64)]) -> MonitorEvent {
        MonitorEvent::Pipeline(Event::Flushed {
            rows,
            unchanged: 0,
            replaced: 0,
            messages: 1,
            bytes: rows * 1000,
            dead_letters: 0,
            took: Duration::from_millis(50),
            retries: 0,
            offsets: vec![(0, 0, 3)],
            per_transaction: per.iter().map(|(n, c)| ((*n).to_string(), *c)).collect(),
        })
    }

    #[test]
    fn a_load_moves_transactions_from_loading_to_ok() {
        let mut a = app();
        assert_eq!(a.on_action(Action::Reload).len(), 1);
        a.on_event(MonitorEvent::Fetched {
            per_transaction: vec![("GET /a".into(), served(3)), ("GET /b".into(), served(2))],
            took: Duration::from_millis(10),
        });
        a.on_event(MonitorEvent::Published {
            per_transaction: vec![("GET /a".into(), 1), ("GET /b".into(), 1)],
            delivered: 2,
            failed: 0,
            took: Duration::from_millis(5),
        });
        a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(2))])));
        let rows = a.visible_txs();
        assert_eq!(rows[0].2, TxStatus::Loading);
        a.on_event(flushed(5, &[("GET /a", 3), ("GET /b", 2)]));
        a.on_event(MonitorEvent::Reloading(false));
        a.on_event(MonitorEvent::Counts(
            [
                ("GET /a".to_string(), stored(3)),
                ("GET /b".to_string(), stored(1)),
            ]
            .into(),
        ));
        a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
        let rows = a.visible_txs();
        assert_eq!(
            rows[0].1,
            &TxRow {
                api: Some(served(3)),
                produced: 1,
                loaded: 3,
                stored: Some(stored(3))
            }
        );
        assert_eq!(rows[0].2, TxStatus::Ok(0));
        // GET /b: fewer rows in ClickHouse than the API served; just flushed, so loading ...
        assert_eq!(rows[1].2, TxStatus::Loading);
        // ... and once things are quiet, a mismatch.
        a.flushes[0].at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10);
        assert_eq!(a.visible_txs()[1].2, TxStatus::Missing(1));
        assert_eq!(a.totals.rows, 5);
        assert_eq!(a.totals.batches, 1);
    }

    #[test]
    fn an_unchanged_sample_does_not_redraw() {
        let mut a = app();
        let ok = || MonitorEvent::Stage {
            stage: Stage::Kafka,
            state: StageState::Ok,
            error: None,
        };
        a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
        a.on_event(ok());
        a.tick();
        a.dirty = false;
        a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
        a.on_event(ok());
        a.tick();
        assert!(!a.dirty, "nothing shown changed");
        a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(3))])));
        assert!(a.dirty);
        a.dirty = false;
        a.on_event(MonitorEvent::Stage {
            stage: Stage::Kafka,
            state: StageState::Down,
            error: Some("x".into()),
        });
        assert!(a.dirty);
    }

    #[test]
    fn a_reconciliation_with_gaps_shows_in_the_verdict_until_the_next_flush() {
        let mut a = app();
        assert!(matches!(
            a.on_action(Action::Verify).as_slice(),
            [Command::Check]
        ));
        a.on_event(MonitorEvent::Fetched {
            per_transaction: vec![("GET /a".into(), served(3))],
            took: Duration::ZERO,
        });
        a.on_event(flushed(3, &[("GET /a", 3)]));
        a.on_event(MonitorEvent::Counts(
            [("GET /a".to_string(), stored(3))].into(),
        ));
        a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
        a.flushes[0].at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10);
        assert_eq!(a.visible_txs()[0].2, TxStatus::Ok(0));
        let report = wmtop_core::tools::check::Report {
            transactions: vec![wmtop_core::tools::check::TransactionCheck {
                name: "GET /a".into(),
                gaps: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        a.on_event(MonitorEvent::Checked(Ok(report)));
        assert_eq!(a.visible_txs()[0].2, TxStatus::Gaps(2));
        assert!(a.message.as_ref().unwrap().0.starts_with("verify:"));
        // A later load makes the finding stale: back to the counts' verdict.
        a.on_event(flushed(1, &[("GET /a", 1)]));
        a.flushes[0].at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
        assert_eq!(a.visible_txs()[0].2, TxStatus::Ok(0));
    }

    #[test]
    fn lag_is_unknown_until_sampled_and_after_a_failed_sample() {
        let mut a = app();
        assert_eq!(a.total_lag(), None);
        a.on_event(MonitorEvent::Lag(Ok(vec![
            lag(0, Some(4)),
            lag(1, Some(1)),
        ])));
        assert_eq!(a.total_lag(), Some(5));
        a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(4)), lag(1, None)])));
        assert_eq!(
            a.total_lag(),
            None,
            "one unknown partition makes the total unknown"
        );
        a.on_event(MonitorEvent::Lag(Ok(vec![])));
        assert_eq!(
            a.total_lag(),
            None,
            "a failed sample is not shown as current"
        );
    }

    #[test]
    fn filter_and_sort() {
        let mut a = app();
        a.on_event(MonitorEvent::Fetched {
            per_transaction: vec![
                ("GET /a".into(), served(3)),
                ("POST /b".into(), served(9)),
                ("GET /c".into(), served(1)),
            ],
            took: Duration::ZERO,
        });
        a.on_action(Action::Filter);
        assert_eq!(a.mode, Mode::Filter);
        a.filter = Input::new("get".into());
        a.on_action(Action::Accept);
        let names: Vec<_> = a.visible_txs().iter().map(|r| r.0.clone()).collect();
        assert_eq!(names, vec!["GET /a", "GET /c"]);
        a.on_action(Action::Sort); // by API records
        a.on_action(Action::SortReverse);
        let names: Vec<_> = a.visible_txs().iter().map(|r| r.0.clone()).collect();
        assert_eq!(names, vec!["GET /a", "GET /c"]);
        a.on_action(Action::SortReverse);
        let names: Vec<_> = a.visible_txs().iter().map(|r| r.0.clone()).collect();
        assert_eq!(names, vec!["GET /c", "GET /a"]);
        a.mode = Mode::Filter;
        a.on_action(Action::Cancel);
        assert_eq!(a.visible_txs().len(), 3);
    }

    #[test]
    fn replay_asks_for_a_plan_then_confirmation() {
        let mut a = app();
        a.on_action(Action::Replay);
        assert_eq!(a.mode, Mode::ReplayFrom);
        let cmds = a.on_action(Action::Accept);
        assert!(matches!(
            cmds.as_slice(),
            [Command::PlanReplay(ReplayFrom::Beginning)]
        ));
        assert_eq!(a.mode, Mode::Confirm);
        assert!(
            a.on_action(Action::Confirm).is_empty(),
            "nothing happens before the plan is shown"
        );
        let plan = vec![ReplayPart {
            partition: 0,
            committed: Some(5),
            target: 0,
            high: 5,
        }];
        a.on_event(MonitorEvent::ReplayPlan(Ok(plan.clone())));
        let cmds = a.on_action(Action::Confirm);
        assert!(matches!(cmds.as_slice(), [Command::Replay(p)] if *p == plan));
        assert_eq!(a.mode, Mode::Normal);
        // A time, and a bad one.
        a.on_action(Action::Replay);
        a.replay_input = Input::new("2026-01-05T00:00:00Z".into());
        let cmds = a.on_action(Action::Accept);
        assert!(matches!(
            cmds.as_slice(),
            [Command::PlanReplay(ReplayFrom::Time(1_767_571_200_000))]
        ));
        a.on_action(Action::Cancel);
        a.on_action(Action::Replay);
        a.replay_input = Input::new("last tuesday".into());
        assert!(a.on_action(Action::Accept).is_empty());
        assert_eq!(a.mode, Mode::ReplayFrom);
        assert!(a.message.as_ref().unwrap().0.contains("last tuesday"));
    }

    #[test]
    fn queries_run_keep_history_and_take_only_their_own_result() {
        let mut a = app();
        let _ = std::fs::remove_file(&a.history_path);
        a.query.history.clear();
        a.on_action(Action::EditQuery);
        a.query.input = Input::new("SELECT 1".into());
        let cmds = a.on_action(Action::RunQuery);
        assert!(matches!(cmds.as_slice(), [Command::Query { id: 1, sql }] if sql == "SELECT 1"));
        // A stale answer (another id) is ignored.
        a.on_event(MonitorEvent::QueryDone {
            id: 7,
            result: Err("old".into()),
            took: Duration::ZERO,
        });
        assert!(a.query.running.is_some());
        let r = QueryResult {
            columns: vec!["1".into()],
            types: vec!["UInt8".into()],
            rows: vec![vec![serde_json::json!(1)]],
        };
        a.on_event(MonitorEvent::QueryDone {
            id: 1,
            result: Ok(r.clone()),
            took: Duration::from_millis(3),
        });
        assert_eq!(a.query.result, Some(r));
        assert!(a.query.running.is_none());
        // History survives a restart.
        let b = App::new(
            "db.t".into(),
            a.history_path.parent().unwrap().to_path_buf(),
            a.log_path.clone(),
            false,
        );
        assert_eq!(b.query.history, vec!["SELECT 1".to_string()]);
        // Presets fill the editor with the selected transaction.
        a.on_event(MonitorEvent::Fetched {
            per_transaction: vec![("GET /z".into(), served(1))],
            took: Duration::ZERO,
        });
        a.focus = Pane::Transactions;
        let cmds = a.on_action(Action::Preset(2));
        assert!(
            matches!(cmds.as_slice(), [Command::Query { sql, .. }] if sql.contains("transaction_name = 'GET /z'"))
        );
    }

    #[test]
    fn export_writes_the_result() {
        let mut a = app();
        a.query.result = Some(QueryResult {
            columns: vec!["a".into()],
            types: vec!["String".into()],
            rows: vec![vec![serde_json::json!("x")], vec![serde_json::json!("y")]],
        });
        a.on_action(Action::ExportCsv);
        let msg = a.message.clone().unwrap().0;
        let path = msg.rsplit(' ').next().unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "a\nx\ny\n");
    }

    #[test]
    fn tab_cycles_panes_and_pause_toggles() {
        let mut a = app();
        assert_eq!(a.focus, Pane::Transactions);
        a.on_action(Action::NextPane);
        assert_eq!(a.focus, Pane::Query);
        assert_eq!(a.key_mode(), Mode::QueryPane);
        a.on_action(Action::NextPane);
        assert_eq!(a.focus, Pane::Lag);
        a.on_action(Action::PrevPane);
        assert_eq!(a.focus, Pane::Query);
        assert!(matches!(
            a.on_action(Action::TogglePause).as_slice(),
            [Command::Pause(true)]
        ));
        a.on_event(MonitorEvent::Pipeline(Event::Paused(true)));
        assert!(matches!(
            a.on_action(Action::TogglePause).as_slice(),
            [Command::Pause(false)]
        ));
    }
}
