//! The query pane's state: the editor and its history, the running query (only its own
//! answer is taken), the result or the server's error (an error clears the old result,
//! so nothing stale is shown or exported), the selected cell, and the last export.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tui_input::Input;
use wmtop_core::clickhouse::QueryResult;
use wmtop_core::runtime::monitor::Command;

/// Queries kept in the history file.
const MAX_HISTORY: usize = 500;

/// The query pane.
#[derive(Default)]
pub struct QueryState {
    pub input: Input,
    /// The editor has the keys.
    pub editing: bool,
    pub history: Vec<String>,
    pub history_pos: Option<usize>,
    pub running: Option<(u64, Instant)>,
    pub next_id: u64,
    pub result: Option<QueryResult>,
    /// The server's code and message.
    pub error: Option<String>,
    pub took: Option<Duration>,
    /// The selected cell.
    pub row: usize,
    pub col: usize,
    pub last_sql: String,
    /// Where the last export went.
    pub exported: Option<PathBuf>,
}

impl QueryState {
    /// Starts the query in the editor: the command to send, and whether the history
    /// changed (to be saved).
    pub fn run(&mut self) -> Result<(Command, bool), &'static str> {
        let sql = self.input.value().trim().to_string();
        if sql.is_empty() {
            return Err("type a query first (or Ctrl-p for a preset)");
        }
        self.editing = false;
        self.next_id += 1;
        let id = self.next_id;
        self.running = Some((id, Instant::now()));
        self.history_pos = None;
        self.last_sql.clone_from(&sql);
        let mut saved = false;
        if self.history.last() != Some(&sql) {
            self.history.push(sql.clone());
            if self.history.len() > MAX_HISTORY {
                self.history.remove(0);
            }
            saved = true;
        }
        Ok((Command::Query { id, sql }, saved))
    }

    /// A query's answer; answers to other (older) queries are ignored. An error
    /// replaces the old result.
    pub fn on_done(&mut self, id: u64, result: Result<QueryResult, String>, took: Duration) {
        if self.running.is_none_or(|(rid, _)| rid != id) {
            return;
        }
        self.running = None;
        self.took = Some(took);
        match result {
            Ok(r) => {
                self.result = Some(r);
                self.error = None;
            }
            Err(e) => {
                self.result = None;
                self.error = Some(e);
            }
        }
        self.row = 0;
        self.col = 0;
    }

    pub fn history_step(&mut self, delta: isize) {
        let n = self.history.len();
        if n == 0 {
            return;
        }
        let pos = match (self.history_pos, delta < 0) {
            (None, true) => n - 1,
            (None, false) => return,
            (Some(p), true) => p.saturating_sub(1),
            (Some(p), false) if p + 1 >= n => {
                self.history_pos = None;
                self.input.reset();
                return;
            }
            (Some(p), false) => p + 1,
        };
        self.history_pos = Some(pos);
        self.input = Input::new(self.history[pos].clone());
    }

    /// Moves the selected cell, staying inside the result.
    pub fn move_by(&mut self, rows: isize, cols: isize) {
        let Some(r) = &self.result else { return };
        let clamp = |cur: usize, d: isize, len: usize| {
            (cur as isize + d).clamp(0, len.saturating_sub(1) as isize) as usize
        };
        self.row = clamp(self.row, rows, r.rows.len());
        self.col = clamp(self.col, cols, r.columns.len());
    }

    /// The selected cell's whole text.
    pub fn cell_text(&self) -> Option<String> {
        let r = self.result.as_ref()?;
        r.rows.get(self.row)?;
        Some(r.text(self.row, self.col))
    }

    /// The selected row, tab-separated, under its header.
    pub fn row_text(&self) -> Option<String> {
        let r = self.result.as_ref()?;
        r.rows.get(self.row)?;
        let cells: Vec<String> = (0..r.columns.len()).map(|c| r.text(self.row, c)).collect();
        Some(format!("{}\n{}", r.columns.join("\t"), cells.join("\t")))
    }
}
