//! One keymap for the TUI: `(mode, key) -> action`. It drives the key handling, the
//! footer hints and the `?` help overlay, so help cannot disagree with behaviour. Keys
//! that could hurt (quit, reload) are bound to confirmations while work is running;
//! in the query pane every printable key is text for the editor.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Which keys are live. A mode's bindings are looked up through its [`layers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Keys that work in every mode.
    Always,
    /// Moving between panes and within one (no printable keys).
    Moving,
    /// A pane other than the query pane has focus.
    Normal,
    /// The transactions pane has focus (Normal keys apply too).
    Transactions,
    /// The query pane has focus: printable keys start the editor.
    QueryPane,
    /// Typing in the query editor.
    Edit,
    /// Typing a transaction filter.
    Filter,
    /// Typing where a replay starts.
    ReplayFrom,
    /// Confirming a replay.
    ReplayConfirm,
    /// Confirming a quit while work is running.
    ConfirmQuit,
    /// Confirming a reload, re-drive or skip.
    Confirm,
    /// Choosing an export format.
    ExportAs,
    /// Choosing what to copy from the query pane.
    CopyWhat,
    /// Choosing a preset query.
    Presets,
    /// The help overlay.
    Help,
    /// Each stage's last error, in full.
    Errors,
    /// One transaction in detail.
    Detail,
    /// Messages and records set aside.
    DeadLetters,
    /// The replicas of a ClickHouse cluster.
    Replicas,
}

impl Mode {
    /// Every mode, in the order help lists them.
    pub const ALL: [Mode; 19] = [
        Mode::Always,
        Mode::Moving,
        Mode::Normal,
        Mode::Transactions,
        Mode::QueryPane,
        Mode::Edit,
        Mode::Presets,
        Mode::ExportAs,
        Mode::CopyWhat,
        Mode::Filter,
        Mode::ReplayFrom,
        Mode::ReplayConfirm,
        Mode::ConfirmQuit,
        Mode::Confirm,
        Mode::Detail,
        Mode::DeadLetters,
        Mode::Replicas,
        Mode::Errors,
        Mode::Help,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Mode::Always => "Always",
            Mode::Moving => "Moving (every pane)",
            Mode::Normal => "Lag, flushes and transactions panes",
            Mode::Transactions => "Transactions pane",
            Mode::QueryPane => "Query pane (printable keys start the editor)",
            Mode::Edit => "Editing a query",
            Mode::Filter => "Filtering transactions",
            Mode::ReplayFrom => "Replay: where from",
            Mode::ReplayConfirm => "Replay: confirm",
            Mode::ConfirmQuit => "Quit while work runs",
            Mode::Confirm => "Confirm (reload, re-drive, skip)",
            Mode::ExportAs => "Export the result as",
            Mode::CopyWhat => "Copy from the query pane",
            Mode::Presets => "Preset queries",
            Mode::Help => "Help",
            Mode::Errors => "Stage errors",
            Mode::Detail => "Transaction detail",
            Mode::DeadLetters => "Set aside (dead letters)",
            Mode::Replicas => "ClickHouse replicas",
        }
    }

    /// Keys typed in this mode that no binding takes go to a text input.
    pub fn is_text_entry(self) -> bool {
        matches!(self, Mode::Edit | Mode::Filter | Mode::ReplayFrom)
    }
}

/// What a key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Quit; asks first while a load or replay runs.
    Quit,
    /// Quit at once (still flushing and committing).
    QuitNow,
    NextPane,
    PrevPane,
    /// Focus the n-th pane (0-based).
    Focus(usize),
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    Left,
    Right,
    Filter,
    Reload,
    Replay,
    Verify,
    TogglePause,
    Sort,
    SortReverse,
    Help,
    Errors,
    DeadLetters,
    /// The ClickHouse replicas behind a Distributed table.
    Replicas,
    /// Open the selected transaction.
    Open,
    /// Copy the selection (row, name, record JSON, payload) to the clipboard.
    Copy,
    CopyWhat,
    CopyCell,
    CopyRow,
    CopyQuery,
    /// Open the editor with this character typed.
    Type(char),
    EditQuery,
    RunQuery,
    CancelQuery,
    ExportAs,
    ExportCsv,
    ExportJson,
    Presets,
    Preset(usize),
    HistoryPrev,
    HistoryNext,
    /// Match the replay time against message times or data times.
    ToggleTimeMatch,
    Redrive,
    Skip,
    Accept,
    Cancel,
    Confirm,
}

/// A key as written in help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Code(KeyCode),
}

/// One binding.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub mode: Mode,
    pub keys: &'static [Key],
    pub action: Action,
    pub help: &'static str,
    /// Shown in the footer.
    pub hint: bool,
}

mod bindings;

pub use bindings::BINDINGS;
use Action as A;

impl Key {
    fn matches(self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let alt = ev.modifiers.contains(KeyModifiers::ALT);
        match self {
            Key::Char(c) => !ctrl && !alt && ev.code == KeyCode::Char(c),
            Key::Ctrl(c) => ctrl && ev.code == KeyCode::Char(c),
            Key::Code(code) => ev.code == code,
        }
    }

    /// How the key is written in hints and help.
    pub fn label(self) -> String {
        match self {
            Key::Char(' ') => "Space".into(),
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("Ctrl-{c}"),
            Key::Code(KeyCode::Tab) => "Tab".into(),
            Key::Code(KeyCode::BackTab) => "Shift-Tab".into(),
            Key::Code(KeyCode::Enter) => "Enter".into(),
            Key::Code(KeyCode::Esc) => "Esc".into(),
            Key::Code(KeyCode::Up) => "Up".into(),
            Key::Code(KeyCode::Down) => "Down".into(),
            Key::Code(KeyCode::Left) => "Left".into(),
            Key::Code(KeyCode::Right) => "Right".into(),
            Key::Code(KeyCode::Home) => "Home".into(),
            Key::Code(KeyCode::End) => "End".into(),
            Key::Code(KeyCode::PageUp) => "PgUp".into(),
            Key::Code(KeyCode::PageDown) => "PgDn".into(),
            Key::Code(other) => format!("{other:?}"),
        }
    }
}

impl Binding {
    pub fn keys_label(&self) -> String {
        let labels: Vec<String> = self.keys.iter().map(|k| k.label()).collect();
        // A run of digits reads as a range.
        if labels.len() > 2
            && labels
                .iter()
                .all(|l| l.len() == 1 && l.as_bytes()[0].is_ascii_digit())
        {
            return format!("{}-{}", labels[0], labels[labels.len() - 1]);
        }
        labels.join("/")
    }
}

/// The modes whose bindings apply, most specific first.
pub fn layers(mode: Mode) -> &'static [Mode] {
    match mode {
        Mode::Normal => &[Mode::Normal, Mode::Moving, Mode::Always],
        Mode::Transactions => &[Mode::Transactions, Mode::Normal, Mode::Moving, Mode::Always],
        Mode::QueryPane => &[Mode::QueryPane, Mode::Moving, Mode::Always],
        Mode::Always => &[Mode::Always],
        Mode::Moving => &[Mode::Moving, Mode::Always],
        Mode::Edit => &[Mode::Edit, Mode::Always],
        Mode::Filter => &[Mode::Filter, Mode::Always],
        Mode::ReplayFrom => &[Mode::ReplayFrom, Mode::Always],
        Mode::ReplayConfirm => &[Mode::ReplayConfirm, Mode::Always],
        Mode::ConfirmQuit => &[Mode::ConfirmQuit, Mode::Always],
        Mode::Confirm => &[Mode::Confirm, Mode::Always],
        Mode::ExportAs => &[Mode::ExportAs, Mode::Always],
        Mode::CopyWhat => &[Mode::CopyWhat, Mode::Always],
        Mode::Presets => &[Mode::Presets, Mode::Always],
        Mode::Help => &[Mode::Help, Mode::Always],
        Mode::Errors => &[Mode::Errors, Mode::Always],
        Mode::Detail => &[Mode::Detail, Mode::Always],
        Mode::DeadLetters => &[Mode::DeadLetters, Mode::Always],
        Mode::Replicas => &[Mode::Replicas, Mode::Always],
    }
}

/// The action a key has in a mode, if any. In the query pane a printable key no binding
/// takes starts the editor with that key typed.
pub fn lookup(mode: Mode, ev: &KeyEvent) -> Option<Action> {
    let found = layers(mode).iter().find_map(|m| {
        BINDINGS
            .iter()
            .find(|b| b.mode == *m && b.keys.iter().any(|k| k.matches(ev)))
            .map(|b| match b.action {
                // One binding for a run of digits: which one was pressed.
                A::Focus(_) | A::Preset(_) => digit_action(b.action, ev),
                other => other,
            })
    });
    if found.is_some() {
        return found;
    }
    match ev.code {
        KeyCode::Char(c)
            if mode == Mode::QueryPane
                && !ev
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(Action::Type(c))
        }
        _ => None,
    }
}

fn digit_action(action: Action, ev: &KeyEvent) -> Action {
    let n = match ev.code {
        KeyCode::Char(c) => c.to_digit(10).map_or(1, |d| d as usize),
        _ => 1,
    };
    match action {
        A::Focus(_) => A::Focus(n - 1),
        A::Preset(_) => A::Preset(n - 1),
        other => other,
    }
}

/// Footer hints for a mode, in the order bound; `?` help last.
pub fn hints(mode: Mode) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = layers(mode)
        .iter()
        .flat_map(|m| BINDINGS.iter().filter(move |b| b.mode == *m && b.hint))
        .filter(|b| b.action != A::Help)
        .map(|b| (b.keys_label(), short(b.help)))
        .collect();
    if layers(mode)
        .iter()
        .any(|m| BINDINGS.iter().any(|b| b.mode == *m && b.action == A::Help))
    {
        out.push(("?".into(), "help"));
    }
    out
}

fn short(help: &'static str) -> &'static str {
    help.split([':', '(']).next().map_or(help, str::trim)
}

/// The keymap as a Markdown table, as the README shows it.
pub fn markdown_table() -> String {
    let mut out = String::from("| where | keys | action |\n| --- | --- | --- |\n");
    for m in Mode::ALL {
        for b in BINDINGS.iter().filter(|b| b.mode == m) {
            out.push_str(&format!(
                "| {} | `{}` | {} |\n",
                b.mode.title(),
                b.keys_label(),
                b.help
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
