//! Boxes over the view: help (every binding, from the keymap itself, and where the log
//! is), each stage's last error in full, the confirmations (quit while work runs,
//! reload, re-drive, skip) and the small choosers (export format, what to copy, preset
//! queries).

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use wmtop_core::clickhouse::queries::PRESETS;

use super::theme::Theme;
use super::widgets::overlay;
use crate::keymap::{Mode, BINDINGS};
use crate::state::{App, Overlay, Pending};
use crate::text::clock;

pub fn draw(app: &App, o: &Overlay, theme: Theme, f: &mut Frame, area: Rect) {
    match o {
        Overlay::Help { scroll } => help(app, theme, f, area, *scroll),
        Overlay::Errors { scroll } => errors(app, theme, f, area, *scroll),
        Overlay::ConfirmQuit => {
            let lines = vec![
                Line::raw("A load or replay is running. Quitting now flushes the batch in hand"),
                Line::raw("and commits what was written; the rest is read on the next start."),
                Line::raw(""),
                keys(theme, &[("q/y", "quit"), ("n/Esc", "stay")]),
            ];
            overlay(f, area, theme, "Quit?", lines, 76, 0);
        }
        Overlay::Confirm(p) => {
            let (title, what) = match p {
                Pending::Reload => (
                    "Reload?",
                    "A load is running. Reloading fetches every series again and publishes \
                     one more message per transaction; rows already stored are not written twice."
                        .to_string(),
                ),
                Pending::Redrive => (
                    "Re-drive?",
                    "Publish the set-aside messages and records to the topic again, so the \
                     consumer loads what it can now; letters delivered are removed."
                        .to_string(),
                ),
                Pending::Skip { partition, offset } => (
                    "Skip?",
                    format!(
                        "Record partition {partition} offset {offset} as a dead letter (not \
                         served by the broker) and move the group past it. The consumer stops \
                         for the move and starts again."
                    ),
                ),
            };
            let lines = vec![
                Line::raw(what),
                Line::raw(""),
                keys(theme, &[("y", "go ahead"), ("n/Esc", "cancel")]),
            ];
            overlay(f, area, theme, title, lines, 72, 0);
        }
        Overlay::ExportAs => {
            let lines = vec![
                keys(theme, &[("c", "CSV (NULL as an empty field)")]),
                keys(
                    theme,
                    &[("j", "JSON lines (typed values, the query's column order)")],
                ),
                keys(theme, &[("Esc", "cancel")]),
            ];
            overlay(f, area, theme, "Export the result as", lines, 64, 0);
        }
        Overlay::CopyWhat => {
            let lines = vec![
                keys(theme, &[("c", "the selected cell")]),
                keys(
                    theme,
                    &[("r", "the selected row (tab-separated, with the header)")],
                ),
                keys(theme, &[("q", "the query")]),
                keys(theme, &[("Esc", "cancel")]),
            ];
            overlay(f, area, theme, "Copy to the clipboard", lines, 64, 0);
        }
        Overlay::Presets => {
            let mut lines: Vec<Line> = PRESETS
                .iter()
                .enumerate()
                .map(|(i, p)| keys(theme, &[(&(i + 1).to_string(), p.title)]))
                .collect();
            lines.push(keys(theme, &[("Esc", "close")]));
            overlay(f, area, theme, "Preset queries", lines, 70, 0);
        }
        Overlay::ReplayFrom | Overlay::ReplayConfirm => {}
    }
}

/// `key what   key what` on one line.
fn keys(theme: Theme, pairs: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (k, what) in pairs {
        spans.push(Span::styled(k.to_string(), theme.key()));
        spans.push(Span::raw(format!(" {what}   ")));
    }
    Line::from(spans)
}

fn help(app: &App, theme: Theme, f: &mut Frame, area: Rect, scroll: usize) {
    let mut lines = vec![
        Line::from(vec![
            Span::raw("Log file: "),
            Span::styled(app.log_path.display().to_string(), theme.key()),
        ]),
        Line::raw("Figures are plain counts (no FINAL); unknown ones say so."),
        Line::raw(""),
    ];
    for m in Mode::ALL {
        let bound: Vec<_> = BINDINGS.iter().filter(|b| b.mode == m).collect();
        if bound.is_empty() {
            continue;
        }
        lines.push(Line::styled(m.title(), theme.header()));
        for b in bound {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<18}", b.keys_label()), theme.key()),
                Span::raw(b.help),
            ]));
        }
        lines.push(Line::raw(""));
    }
    overlay(
        f,
        area,
        theme,
        "Help (Esc closes, j/k scroll)",
        lines,
        96,
        scroll,
    );
}

fn errors(app: &App, theme: Theme, f: &mut Frame, area: Rect, scroll: usize) {
    let mut lines = Vec::new();
    let errors = app.status.errors();
    if errors.is_empty() && app.status.stuck.is_empty() {
        lines.push(Line::styled("No stage has an error.", theme.ok()));
    }
    for (stage, e) in errors {
        lines.push(Line::styled(
            format!("{} (since {})", stage.name(), clock(e.at)),
            theme.header(),
        ));
        lines.push(Line::styled(e.text.clone(), theme.bad()));
        lines.push(Line::raw(""));
    }
    for s in app.status.stuck.values() {
        lines.push(Line::styled(
            format!("Kafka partition {}", s.partition),
            theme.header(),
        ));
        lines.push(Line::styled(
            format!(
                "offset {} is not served by the broker (high watermark {}, waited {}s{}). \
                 Open the dead letters (d) to skip it.",
                s.offset,
                s.high,
                s.waited_s,
                s.size.map_or(String::new(), |b| format!(", {b} bytes"))
            ),
            theme.bad(),
        ));
        lines.push(Line::raw(""));
    }
    lines.push(Line::from(vec![
        Span::raw("Every error is in the log too: "),
        Span::styled(app.log_path.display().to_string(), theme.key()),
    ]));
    overlay(
        f,
        area,
        theme,
        "Stage errors (Esc closes)",
        lines,
        100,
        scroll,
    );
}
