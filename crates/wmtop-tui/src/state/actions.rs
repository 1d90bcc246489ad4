//! Key actions applied to the state, one function per key mode: overlays first (help,
//! errors, confirmations, choosers, the replay dialog), then the editor and the
//! filter, then the views and panes. Quit and reload ask first while work runs.

use tui_input::Input;
use wmtop_core::runtime::monitor::Command;

use super::{send, App, Overlay, Pane, Pending, View};
use crate::effects::{Effect, Format};
use crate::keymap::{Action, Mode};

impl App {
    /// Applies a key action; returns what must happen outside the state.
    pub fn on_action(&mut self, action: Action) -> Vec<Effect> {
        self.dirty = true;
        if action == Action::QuitNow {
            self.quit = true;
            return Vec::new();
        }
        match self.key_mode() {
            Mode::Help | Mode::Errors => self.on_scroll_overlay(action),
            Mode::ConfirmQuit => {
                self.overlay = None;
                self.quit = action == Action::Confirm;
                Vec::new()
            }
            Mode::Confirm => self.on_confirm(action),
            Mode::ReplayFrom | Mode::ReplayConfirm => self.on_replay(action),
            Mode::ExportAs | Mode::CopyWhat | Mode::Presets => self.on_chooser(action),
            Mode::Edit => self.on_edit(action),
            Mode::Filter => {
                match action {
                    Action::Accept => self.txs.filtering = false,
                    Action::Cancel => {
                        self.txs.filter.reset();
                        self.txs.filtering = false;
                    }
                    _ => {}
                }
                Vec::new()
            }
            Mode::Detail => self.on_detail(action),
            Mode::DeadLetters => self.on_dead_letters(action),
            Mode::Replicas => self.on_replicas(action),
            Mode::Normal | Mode::Transactions | Mode::QueryPane | Mode::Always | Mode::Moving => {
                self.on_panes(action)
            }
        }
    }

    fn on_scroll_overlay(&mut self, action: Action) -> Vec<Effect> {
        match (&mut self.overlay, action) {
            (_, Action::Cancel) => self.overlay = None,
            (Some(Overlay::Help { scroll } | Overlay::Errors { scroll }), Action::Down) => {
                *scroll += 1
            }
            (Some(Overlay::Help { scroll } | Overlay::Errors { scroll }), Action::Up) => {
                *scroll = scroll.saturating_sub(1)
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_confirm(&mut self, action: Action) -> Vec<Effect> {
        let Some(Overlay::Confirm(pending)) = self.overlay.take() else {
            return Vec::new();
        };
        if action != Action::Confirm {
            return Vec::new();
        }
        match pending {
            Pending::Reload => self.reload(),
            Pending::Redrive => {
                self.say("re-drive: publishing the set-aside messages again...");
                send([Command::Redrive])
            }
            Pending::Skip { partition, offset } => {
                self.say(format!("skipping partition {partition} offset {offset}..."));
                send([Command::Skip { partition, offset }])
            }
        }
    }

    fn reload(&mut self) -> Vec<Effect> {
        if self.status.reloading {
            self.say("a reload is already running");
            return Vec::new();
        }
        self.status.reloading = true;
        self.say("reload: fetching and publishing...");
        send([Command::Reload])
    }

    fn on_replay(&mut self, action: Action) -> Vec<Effect> {
        match (self.key_mode(), action) {
            (_, Action::Cancel) => {
                self.overlay = None;
                self.replay.plan = None;
            }
            (Mode::ReplayFrom, Action::ToggleTimeMatch) => self.replay.toggle_matching(),
            (Mode::ReplayFrom, Action::Accept) => {
                // An error is shown in the dialog as it is typed; Enter does nothing then.
                if let Ok(from) = self.replay.from() {
                    self.overlay = Some(Overlay::ReplayConfirm);
                    self.replay.plan = None;
                    return send([Command::PlanReplay(from)]);
                }
            }
            (Mode::ReplayConfirm, Action::Confirm) => {
                if let Some(Ok(plan)) = self.replay.plan.take() {
                    self.overlay = None;
                    return send([Command::Replay(plan)]);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_chooser(&mut self, action: Action) -> Vec<Effect> {
        self.overlay = None;
        match action {
            Action::ExportCsv => self.export(Format::Csv),
            Action::ExportJson => self.export(Format::JsonLines),
            Action::CopyCell => self.copy("the cell", self.query.cell_text()),
            Action::CopyRow => self.copy("the row", self.query.row_text()),
            Action::CopyQuery => {
                let sql = self.query.input.value().trim().to_string();
                let sql = if sql.is_empty() {
                    self.query.last_sql.clone()
                } else {
                    sql
                };
                self.copy("the query", (!sql.is_empty()).then_some(sql))
            }
            Action::Preset(i) => self.preset(i),
            _ => Vec::new(),
        }
    }

    fn on_edit(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Cancel => self.query.editing = false,
            Action::RunQuery => return self.run_query(),
            Action::HistoryPrev => self.query.history_step(-1),
            Action::HistoryNext => self.query.history_step(1),
            Action::Presets => self.overlay = Some(Overlay::Presets),
            _ => {}
        }
        Vec::new()
    }

    fn on_panes(&mut self, action: Action) -> Vec<Effect> {
        let pane = self.focus.index();
        let n = Pane::ALL.len();
        match action {
            Action::Quit if self.work_running() => {
                self.overlay = Some(Overlay::ConfirmQuit);
            }
            Action::Quit => self.quit = true,
            Action::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::Errors => self.overlay = Some(Overlay::Errors { scroll: 0 }),
            Action::NextPane => self.focus = Pane::ALL[(pane + 1) % n],
            Action::PrevPane => self.focus = Pane::ALL[(pane + n - 1) % n],
            Action::Focus(i) => self.focus = Pane::ALL[i.min(n - 1)],
            Action::Down => self.scroll_by(1),
            Action::Up => self.scroll_by(-1),
            Action::PageDown => self.scroll_by(10),
            Action::PageUp => self.scroll_by(-10),
            Action::Top => self.scroll_by(-(1 << 30)),
            Action::Bottom => self.scroll_by(1 << 30),
            Action::Left => self.query.move_by(0, -1),
            Action::Right => self.query.move_by(0, 1),
            Action::Filter => {
                self.focus = Pane::Transactions;
                self.txs.selected = 0;
                self.txs.filtering = true;
            }
            Action::Sort => self.txs.next_sort(),
            Action::SortReverse => self.txs.sort.1 = !self.txs.sort.1,
            Action::Reload if self.work_running() => {
                self.overlay = Some(Overlay::Confirm(Pending::Reload));
            }
            Action::Reload => return self.reload(),
            Action::Verify => {
                self.say("verify: reconciling API, topic and ClickHouse...");
                return send([Command::Check]);
            }
            Action::TogglePause => {
                let want = !self.status.paused;
                self.say(if want {
                    "pausing the consumer"
                } else {
                    "resuming the consumer"
                });
                return send([Command::Pause(want)]);
            }
            Action::Replay => {
                self.replay.open();
                self.overlay = Some(Overlay::ReplayFrom);
            }
            Action::Open => return self.open_detail(),
            Action::DeadLetters => {
                self.view = View::DeadLetters;
                self.dead.open();
                return send([Command::ListDeadLetters]);
            }
            Action::Replicas => match self.replicas.summary() {
                Some(_) => self.view = View::Replicas,
                None => self.say(
                    "no replicas to show: the table is not a Distributed one (or not there yet)",
                ),
            },
            Action::Copy => {
                let (what, text) = match self.focus {
                    Pane::Lag => ("the partition's row", self.lag.selected_text()),
                    Pane::Flushes => ("the flush's row", self.flushes.selected_text()),
                    _ => ("the transaction's name", self.selected_tx()),
                };
                return self.copy(what, text);
            }
            Action::Type(c) => {
                // A new query, starting with the key typed (Up in the editor brings
                // back the last one).
                self.query.editing = true;
                self.query.history_pos = None;
                self.query.input = Input::new(c.to_string());
            }
            Action::EditQuery => self.query.editing = true,
            Action::Presets => self.overlay = Some(Overlay::Presets),
            Action::ExportAs => {
                if self.query.result.is_some() {
                    self.overlay = Some(Overlay::ExportAs);
                } else {
                    self.say("nothing to export: run a query first");
                }
            }
            Action::CopyWhat => self.overlay = Some(Overlay::CopyWhat),
            Action::CancelQuery if self.query.running.is_some() => {
                return send([Command::CancelQuery]);
            }
            _ => {}
        }
        Vec::new()
    }

    fn open_detail(&mut self) -> Vec<Effect> {
        let Some(name) = self.selected_tx() else {
            self.say("no transaction to open yet: press r to fetch");
            return Vec::new();
        };
        self.view = View::Detail;
        self.detail = Some(super::DetailState::new(name.clone()));
        send([Command::Inspect { name }])
    }

    fn on_detail(&mut self, action: Action) -> Vec<Effect> {
        let Some(d) = self.detail.as_mut() else {
            self.view = View::Panes;
            return Vec::new();
        };
        match action {
            Action::Cancel => {
                // The detail's records go with it: nothing fetched is kept.
                self.detail = None;
                self.view = View::Panes;
            }
            Action::Left => d.step_hour(-1),
            Action::Right => d.step_hour(1),
            Action::Down => d.scroll = d.scroll.saturating_add(1),
            Action::Up => d.scroll = d.scroll.saturating_sub(1),
            Action::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::Copy => {
                let text = d.record_json();
                return self.copy("the hour's record JSON", text);
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_replicas(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Cancel => self.view = View::Panes,
            Action::Down => self.replicas.move_by(1),
            Action::Up => self.replicas.move_by(-1),
            Action::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            _ => {}
        }
        Vec::new()
    }

    fn on_dead_letters(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Cancel => {
                self.view = View::Panes;
                self.dead.close();
            }
            Action::Down => self.dead.move_by(1),
            Action::Up => self.dead.move_by(-1),
            Action::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::Redrive => {
                if self.dead.set_aside_messages() == 0 {
                    self.say("nothing to re-drive: no message is set aside");
                } else {
                    self.overlay = Some(Overlay::Confirm(Pending::Redrive));
                }
            }
            Action::Skip => match self.dead.selected_stuck() {
                Some((partition, offset)) => {
                    self.overlay = Some(Overlay::Confirm(Pending::Skip { partition, offset }))
                }
                None => self.say(
                    "only a message the broker does not serve can be skipped; select one (marked UNSERVED)",
                ),
            },
            Action::Copy => {
                let text = self.dead.selected_text();
                return self.copy("the set-aside entry", text);
            }
            _ => {}
        }
        Vec::new()
    }

    fn scroll_by(&mut self, delta: isize) {
        if self.focus == Pane::Query {
            self.query.move_by(delta, 0);
            return;
        }
        let len = match self.focus {
            Pane::Lag => self.lag.rows.len(),
            Pane::Flushes => self.flushes.rows.len(),
            _ => self.visible_txs().len(),
        };
        let cur = match self.focus {
            Pane::Lag => &mut self.lag.selected,
            Pane::Flushes => &mut self.flushes.selected,
            _ => &mut self.txs.selected,
        };
        *cur = (*cur as isize + delta).clamp(0, len.saturating_sub(1) as isize) as usize;
    }

    fn run_query(&mut self) -> Vec<Effect> {
        match self.query.run() {
            Ok((cmd, history_changed)) => {
                self.focus = Pane::Query;
                let mut out = vec![Effect::Send(cmd)];
                if history_changed {
                    out.push(Effect::SaveHistory(self.query.history.clone()));
                }
                out
            }
            Err(why) => {
                self.say(why);
                Vec::new()
            }
        }
    }

    fn preset(&mut self, i: usize) -> Vec<Effect> {
        let Some(p) = wmtop_core::clickhouse::queries::PRESETS.get(i) else {
            return Vec::new();
        };
        let tx = self.selected_tx().unwrap_or_default();
        self.query.input = Input::new(p.sql(&self.table, &self.window, &tx));
        self.run_query()
    }

    fn export(&mut self, format: Format) -> Vec<Effect> {
        match &self.query.result {
            Some(result) => vec![Effect::Export {
                format,
                result: result.clone(),
            }],
            None => {
                self.say("nothing to export: run a query first");
                Vec::new()
            }
        }
    }

    fn copy(&mut self, what: &str, text: Option<String>) -> Vec<Effect> {
        match text {
            Some(text) => vec![Effect::Copy {
                what: what.to_string(),
                text,
            }],
            None => {
                self.say(format!("nothing to copy: no {what} selected"));
                Vec::new()
            }
        }
    }
}
