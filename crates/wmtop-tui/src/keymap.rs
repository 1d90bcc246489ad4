//! One keymap for the TUI: `(mode, key) -> action`. It drives the key handling, the
//! footer hints and the `?` help overlay, so help cannot disagree with behaviour.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Which keys are live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Moving between panes and acting on them.
    Normal,
    /// The query pane has focus (Normal keys apply too).
    QueryPane,
    /// Typing in the query editor.
    Edit,
    /// Typing a transaction filter.
    Filter,
    /// Typing where a replay starts.
    ReplayFrom,
    /// Confirming a replay.
    Confirm,
    /// The help overlay.
    Help,
}

impl Mode {
    pub fn title(self) -> &'static str {
        match self {
            Mode::Normal => "Everywhere",
            Mode::QueryPane => "Query pane",
            Mode::Edit => "Editing a query",
            Mode::Filter => "Filtering transactions",
            Mode::ReplayFrom => "Replay: where from",
            Mode::Confirm => "Replay: confirm",
            Mode::Help => "Help",
        }
    }
}

/// What a key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    NextPane,
    PrevPane,
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
    EditQuery,
    RunQuery,
    CancelQuery,
    ExportCsv,
    ExportJson,
    Preset(usize),
    HistoryPrev,
    HistoryNext,
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

use Action as A;
use Key::{Char, Code, Ctrl};
use Mode as M;

const fn b(
    mode: Mode,
    keys: &'static [Key],
    action: Action,
    help: &'static str,
    hint: bool,
) -> Binding {
    Binding {
        mode,
        keys,
        action,
        help,
        hint,
    }
}

/// Every binding.
pub const BINDINGS: &[Binding] = &[
    b(
        M::Normal,
        &[Char('q')],
        A::Quit,
        "quit (flushes and commits first)",
        true,
    ),
    b(
        M::Normal,
        &[Code(KeyCode::Tab)],
        A::NextPane,
        "next pane",
        true,
    ),
    b(
        M::Normal,
        &[Code(KeyCode::BackTab)],
        A::PrevPane,
        "previous pane",
        false,
    ),
    b(
        M::Normal,
        &[Char('j'), Code(KeyCode::Down)],
        A::Down,
        "scroll down",
        false,
    ),
    b(
        M::Normal,
        &[Char('k'), Code(KeyCode::Up)],
        A::Up,
        "scroll up",
        false,
    ),
    b(
        M::Normal,
        &[Char('g'), Code(KeyCode::Home)],
        A::Top,
        "to the top",
        false,
    ),
    b(
        M::Normal,
        &[Char('G'), Code(KeyCode::End)],
        A::Bottom,
        "to the bottom",
        false,
    ),
    b(
        M::Normal,
        &[Code(KeyCode::PageDown), Ctrl('d')],
        A::PageDown,
        "page down",
        false,
    ),
    b(
        M::Normal,
        &[Code(KeyCode::PageUp), Ctrl('u')],
        A::PageUp,
        "page up",
        false,
    ),
    b(
        M::Normal,
        &[Char('h'), Code(KeyCode::Left)],
        A::Left,
        "scroll left (query results)",
        false,
    ),
    b(
        M::Normal,
        &[Char('l'), Code(KeyCode::Right)],
        A::Right,
        "scroll right (query results)",
        false,
    ),
    b(
        M::Normal,
        &[Char('/')],
        A::Filter,
        "filter transactions by name",
        true,
    ),
    b(
        M::Normal,
        &[Char('s')],
        A::Sort,
        "sort transactions by the next column",
        false,
    ),
    b(
        M::Normal,
        &[Char('S')],
        A::SortReverse,
        "reverse the sort",
        false,
    ),
    b(
        M::Normal,
        &[Char('r')],
        A::Reload,
        "reload: fetch again and publish",
        true,
    ),
    b(
        M::Normal,
        &[Char('R')],
        A::Replay,
        "replay: re-read the topic into ClickHouse",
        true,
    ),
    b(
        M::Normal,
        &[Char('p')],
        A::TogglePause,
        "pause / resume the consumer",
        true,
    ),
    b(
        M::Normal,
        &[Char('v')],
        A::Verify,
        "verify: reconcile API, topic and ClickHouse per hour",
        false,
    ),
    b(M::Normal, &[Char('?')], A::Help, "help", true),
    b(
        M::QueryPane,
        &[Char('i'), Code(KeyCode::Enter)],
        A::EditQuery,
        "edit the query (Enter in the editor runs it)",
        true,
    ),
    b(
        M::QueryPane,
        &[Char('1')],
        A::Preset(0),
        "preset: row count by transaction",
        false,
    ),
    b(
        M::QueryPane,
        &[Char('2')],
        A::Preset(1),
        "preset: avg response time, last 7 days",
        false,
    ),
    b(
        M::QueryPane,
        &[Char('3')],
        A::Preset(2),
        "preset: hourly p95/p99 of the selected transaction",
        false,
    ),
    b(
        M::QueryPane,
        &[Char('4')],
        A::Preset(3),
        "preset: error-budget health",
        false,
    ),
    b(
        M::QueryPane,
        &[Char('5')],
        A::Preset(4),
        "preset: error rate above 1%",
        false,
    ),
    b(
        M::QueryPane,
        &[Char('e')],
        A::ExportCsv,
        "export results to CSV",
        true,
    ),
    b(
        M::QueryPane,
        &[Char('E')],
        A::ExportJson,
        "export results to JSON",
        false,
    ),
    b(
        M::QueryPane,
        &[Char('c')],
        A::CancelQuery,
        "cancel the running query",
        false,
    ),
    b(
        M::Edit,
        &[Code(KeyCode::Enter)],
        A::RunQuery,
        "run the query",
        true,
    ),
    b(
        M::Edit,
        &[Code(KeyCode::Esc)],
        A::Cancel,
        "leave the editor",
        true,
    ),
    b(
        M::Edit,
        &[Code(KeyCode::Up)],
        A::HistoryPrev,
        "previous query from history",
        true,
    ),
    b(
        M::Edit,
        &[Code(KeyCode::Down)],
        A::HistoryNext,
        "next query from history",
        false,
    ),
    b(
        M::Edit,
        &[Ctrl('c')],
        A::CancelQuery,
        "cancel the running query",
        true,
    ),
    b(
        M::Filter,
        &[Code(KeyCode::Enter)],
        A::Accept,
        "keep the filter",
        true,
    ),
    b(
        M::Filter,
        &[Code(KeyCode::Esc)],
        A::Cancel,
        "clear the filter",
        true,
    ),
    b(
        M::ReplayFrom,
        &[Code(KeyCode::Enter)],
        A::Accept,
        "plan the replay (empty: from the beginning)",
        true,
    ),
    b(
        M::ReplayFrom,
        &[Code(KeyCode::Esc)],
        A::Cancel,
        "cancel",
        true,
    ),
    b(
        M::Confirm,
        &[Char('y')],
        A::Confirm,
        "replay as shown",
        true,
    ),
    b(
        M::Confirm,
        &[Char('n'), Code(KeyCode::Esc)],
        A::Cancel,
        "cancel",
        true,
    ),
    b(
        M::Help,
        &[Code(KeyCode::Esc), Char('?'), Char('q')],
        A::Cancel,
        "close help",
        true,
    ),
    b(
        M::Help,
        &[Char('j'), Code(KeyCode::Down)],
        A::Down,
        "scroll down",
        false,
    ),
    b(
        M::Help,
        &[Char('k'), Code(KeyCode::Up)],
        A::Up,
        "scroll up",
        false,
    ),
];

impl Key {
    fn matches(self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Char(c) => !ctrl && ev.code == KeyCode::Char(c),
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
        self.keys
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The modes whose bindings apply, most specific first.
pub fn layers(mode: Mode) -> &'static [Mode] {
    match mode {
        Mode::QueryPane => &[Mode::QueryPane, Mode::Normal],
        Mode::Normal => &[Mode::Normal],
        Mode::Edit => &[Mode::Edit],
        Mode::Filter => &[Mode::Filter],
        Mode::ReplayFrom => &[Mode::ReplayFrom],
        Mode::Confirm => &[Mode::Confirm],
        Mode::Help => &[Mode::Help],
    }
}

/// The action a key has in a mode, if any.
pub fn lookup(mode: Mode, ev: &KeyEvent) -> Option<Action> {
    layers(mode).iter().find_map(|m| {
        BINDINGS
            .iter()
            .find(|b| b.mode == *m && b.keys.iter().any(|k| k.matches(ev)))
            .map(|b| b.action)
    })
}

/// Footer hints for a mode.
pub fn hints(mode: Mode) -> Vec<(String, &'static str)> {
    layers(mode)
        .iter()
        .flat_map(|m| BINDINGS.iter().filter(move |b| b.mode == *m && b.hint))
        .map(|b| (b.keys[0].label(), short(b.help)))
        .collect()
}

fn short(help: &'static str) -> &'static str {
    help.split([':', '(']).next().map_or(help, str::trim)
}

/// The keymap as a Markdown table, as the README shows it.
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut out = String::from("| where | keys | action |\n| --- | --- | --- |\n");
    for b in BINDINGS {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            b.mode.title(),
            b.keys_label(),
            b.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_binding() {
        let readme = include_str!("../../../README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README's key table is out of date; it should read:\n{table}"
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_mode() {
        for (i, a) in BINDINGS.iter().enumerate() {
            for b in &BINDINGS[i + 1..] {
                // A key in a pane mode may not shadow one of the modes layered under it.
                let clash = layers(a.mode).contains(&b.mode) || layers(b.mode).contains(&a.mode);
                if clash {
                    for k in a.keys {
                        assert!(
                            !b.keys.contains(k),
                            "{:?} bound twice: {:?} and {:?}",
                            k,
                            a.action,
                            b.action
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lookup_follows_the_table() {
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(lookup(Mode::Normal, &key('q')), Some(Action::Quit));
        assert_eq!(lookup(Mode::QueryPane, &key('q')), Some(Action::Quit));
        assert_eq!(lookup(Mode::QueryPane, &key('3')), Some(Action::Preset(2)));
        assert_eq!(lookup(Mode::Normal, &key('3')), None);
        assert_eq!(
            lookup(Mode::Edit, &key('q')),
            None,
            "typing q in the editor is text"
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(Mode::Edit, &ctrl_c), Some(Action::CancelQuery));
        assert_eq!(lookup(Mode::QueryPane, &ctrl_c), None);
    }

    #[test]
    fn the_issue_keys_are_all_bound() {
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        for (c, a) in [
            ('r', A::Reload),
            ('R', A::Replay),
            ('p', A::TogglePause),
            ('/', A::Filter),
            ('?', A::Help),
        ] {
            assert_eq!(lookup(Mode::Normal, &key(c)), Some(a));
        }
        let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(lookup(Mode::Normal, &tab), Some(A::NextPane));
        let back = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(lookup(Mode::Normal, &back), Some(A::PrevPane));
    }
}
