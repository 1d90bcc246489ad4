//! The TUI's state: one struct per pane (lag, flushes, transactions, query), the
//! replay dialog, the transaction detail and dead-letter views, the status bar, and
//! which view, pane, overlay and key mode are in force. Monitor events and key actions
//! update it synchronously ([`events`], [`actions`]); what must happen outside (commands
//! to the pipeline, files, the clipboard) is returned as [`Effect`]s. Drawing only reads
//! it.

mod actions;
pub mod dead_letters;
pub mod detail;
mod events;
pub mod flushes;
pub mod history;
pub mod lag;
pub mod query;
pub mod replay;
pub mod replicas;
pub mod status;
pub mod transactions;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use dead_letters::DeadLettersState;
pub use detail::DetailState;
pub use flushes::{FlushRow, FlushesState, Totals};
pub use lag::LagState;
pub use query::QueryState;
pub use replay::{ReplayState, TimeMatch};
pub use replicas::ReplicasState;
pub use status::StatusState;
pub use transactions::{CheckResult, Quiet, TxColumn, TxRow, TxState, TxStatus};

use crate::effects::Effect;
use crate::keymap::Mode;

/// How long a message stays on screen.
const MESSAGE_FOR: Duration = Duration::from_secs(8);

/// The panes of the main view, in Tab order.
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

    pub fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// The full-screen views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The four panes.
    Panes,
    /// One transaction: hours, messages, records.
    Detail,
    /// Messages and records set aside.
    DeadLetters,
    /// The replicas of the table behind a Distributed one.
    Replicas,
}

/// Something that asks before it is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    Reload,
    Redrive,
    Skip { partition: i32, offset: i64 },
}

/// A box drawn over the view, taking the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help { scroll: usize },
    Errors { scroll: usize },
    ReplayFrom,
    ReplayConfirm,
    ConfirmQuit,
    Confirm(Pending),
    ExportAs,
    CopyWhat,
    Presets,
}

impl Overlay {
    pub fn mode(&self) -> Mode {
        match self {
            Overlay::Help { .. } => Mode::Help,
            Overlay::Errors { .. } => Mode::Errors,
            Overlay::ReplayFrom => Mode::ReplayFrom,
            Overlay::ReplayConfirm => Mode::ReplayConfirm,
            Overlay::ConfirmQuit => Mode::ConfirmQuit,
            Overlay::Confirm(_) => Mode::Confirm,
            Overlay::ExportAs => Mode::ExportAs,
            Overlay::CopyWhat => Mode::CopyWhat,
            Overlay::Presets => Mode::Presets,
        }
    }
}

/// What the app is started with.
#[derive(Clone, Debug, Default)]
pub struct AppConfig {
    /// `database.table`, for the preset queries.
    pub table: String,
    /// The rows the preset queries read (`wmtop_core::clickhouse::sql::window_of`).
    pub window: String,
    /// The application fetched: with each fetch's window, the rows the presets read.
    pub application_id: String,
    pub log_path: PathBuf,
    pub allow_writes: bool,
    /// TLS verification is off (`--insecure`).
    pub insecure: bool,
    /// The config file's profile in force.
    pub profile: Option<String>,
    /// Queries from earlier runs, oldest first.
    pub history: Vec<String>,
}

/// Everything the screen shows.
pub struct App {
    pub started: Instant,
    pub view: View,
    pub focus: Pane,
    pub overlay: Option<Overlay>,
    pub status: StatusState,
    pub lag: LagState,
    pub flushes: FlushesState,
    pub txs: TxState,
    pub query: QueryState,
    pub replay: ReplayState,
    pub detail: Option<DetailState>,
    pub dead: DeadLettersState,
    pub replicas: ReplicasState,
    /// The last thing said, and when; it is logged too.
    pub message: Option<(String, Instant)>,
    pub unknown_fields: Vec<String>,
    pub dirty: bool,
    /// The clock texts last drawn.
    shown_clock: (String, String),
    /// The countdown to the next scheduled reload as last drawn.
    shown_countdown: Option<String>,
    /// The lag sample's age as last shown (only once it is late).
    shown_late: Option<u64>,
    /// The widest sparkline in the last frame (samples shown): once the newest this many
    /// samples are all zero, a new second changes nothing on screen and needs no frame.
    pub spark_span: std::cell::Cell<usize>,
    pub quit: bool,
    pub log_path: PathBuf,
    pub allow_writes: bool,
    pub table: String,
    pub window: String,
    pub application_id: String,
}

impl App {
    pub fn new(config: AppConfig) -> App {
        App {
            started: Instant::now(),
            view: View::Panes,
            focus: Pane::Transactions,
            overlay: None,
            status: StatusState {
                insecure: config.insecure,
                profile: config.profile.clone(),
                ..StatusState::default()
            },
            lag: LagState::default(),
            flushes: FlushesState::default(),
            txs: TxState::default(),
            query: QueryState {
                history: config.history,
                ..QueryState::default()
            },
            replay: ReplayState::default(),
            detail: None,
            dead: DeadLettersState::default(),
            replicas: ReplicasState::default(),
            message: None,
            unknown_fields: Vec::new(),
            dirty: true,
            shown_clock: Default::default(),
            shown_countdown: None,
            shown_late: None,
            spark_span: std::cell::Cell::new(history::HISTORY),
            quit: false,
            log_path: config.log_path,
            allow_writes: config.allow_writes,
            table: config.table,
            window: config.window,
            application_id: config.application_id,
        }
    }

    /// The key mode in force: an overlay's, the editor's or the filter's, the view's,
    /// or the focused pane's.
    pub fn key_mode(&self) -> Mode {
        if let Some(o) = &self.overlay {
            return o.mode();
        }
        if self.query.editing {
            return Mode::Edit;
        }
        if self.txs.filtering {
            return Mode::Filter;
        }
        match (self.view, self.focus) {
            (View::Detail, _) => Mode::Detail,
            (View::DeadLetters, _) => Mode::DeadLetters,
            (View::Replicas, _) => Mode::Replicas,
            (View::Panes, Pane::Query) => Mode::QueryPane,
            (View::Panes, Pane::Transactions) => Mode::Transactions,
            (View::Panes, _) => Mode::Normal,
        }
    }

    /// Says something on the message line (and in the log).
    pub fn say(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!("{text}");
        self.message = Some((text, Instant::now()));
        self.dirty = true;
    }

    /// What the verdicts need to know about the load.
    pub fn quiet(&self) -> Quiet {
        Quiet {
            quiet: !self.status.reloading
                && self.status.merging.is_none()
                && self.lag.total() == Some(0)
                && !self.flushes.recent(),
            last_flush: self.flushes.rows.front().map(|f| f.at),
        }
    }

    /// A load or replay is running: quitting or reloading now asks first. A load runs
    /// from the fetch, or from the first flush after the last one settled, until it
    /// settles; unread messages count when something was flushed since the last settle.
    pub fn work_running(&self) -> bool {
        let flushed_since_settled = match (self.flushes.rows.front(), self.status.settled_at) {
            (Some(f), Some(s)) => f.at > s,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.status.reloading
            || self.status.merging.is_some()
            || self.replay.running
            || (flushed_since_settled && self.lag.total() != Some(0))
    }

    pub fn visible_txs(&self) -> Vec<(&String, &TxRow, TxStatus)> {
        self.txs.visible(self.quiet())
    }

    pub fn selected_tx(&self) -> Option<String> {
        self.txs.selected_name(self.quiet())
    }

    /// Called once a second: sparklines move, old messages go, the clock is redrawn
    /// only when what it shows changed.
    pub fn tick(&mut self) {
        let span = self.spark_span.get();
        let moving = self.flushes.tick(span) | self.lag.tick(span);
        if self
            .message
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > MESSAGE_FOR)
        {
            self.message = None;
            self.dirty = true;
        }
        let late = self.lag.late().map(|d| d.as_secs());
        if late != self.shown_late {
            self.shown_late = late;
            self.dirty = true;
        }
        let clock = self.clock();
        if clock != self.shown_clock {
            self.shown_clock = clock;
            self.dirty = true;
        }
        let countdown = self.next_reload_in();
        if countdown != self.shown_countdown {
            self.shown_countdown = countdown;
            self.dirty = true;
        }
        if moving {
            self.dirty = true;
        }
    }

    /// Uptime and token countdown as the status bar shows them: seconds below a
    /// minute, minutes above, so an idle screen changes at most once a minute.
    pub fn clock(&self) -> (String, String) {
        let token = match self.status.token_expiry {
            None => "-".to_string(),
            Some(at) if at > Instant::now() => coarse(at - Instant::now()),
            // Not a fault: the next fetch logs in again.
            Some(_) => "renews at next fetch".to_string(),
        };
        (coarse(self.started.elapsed()), token)
    }

    /// The countdown to the next scheduled reload, as the status bar shows it.
    pub fn next_reload_in(&self) -> Option<String> {
        let at = self.status.next_reload?;
        Some(coarse(at.saturating_duration_since(Instant::now())))
    }

    /// An effect's outcome, told back: an export's path, a copy, a failure.
    pub fn on_effect_done(&mut self, outcome: EffectOutcome) {
        match outcome {
            EffectOutcome::Exported { path, rows } => {
                self.say(format!("exported {rows} rows to {}", path.display()));
                self.query.exported = Some(path);
            }
            EffectOutcome::Copied { what, bytes } => self.say(format!(
                "copied {what} ({bytes} bytes) to the clipboard (OSC 52)"
            )),
            EffectOutcome::Failed(e) => self.say(e),
            EffectOutcome::NotSent => self.say("the pipeline is not taking commands"),
        }
    }
}

/// What became of an effect, for the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EffectOutcome {
    Exported { path: PathBuf, rows: usize },
    Copied { what: String, bytes: usize },
    Failed(String),
    NotSent,
}

/// Effects that only send commands to the pipeline.
fn send(cmds: impl IntoIterator<Item = wmtop_core::runtime::monitor::Command>) -> Vec<Effect> {
    cmds.into_iter().map(Effect::Send).collect()
}

/// A duration as the status bar counts: seconds below a minute, minutes above, so an
/// idle screen changes at most once a minute.
fn coarse(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
