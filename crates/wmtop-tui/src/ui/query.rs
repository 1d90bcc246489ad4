//! The query pane: the editor, the presets, and the result table, which scrolls both
//! ways and builds only the visible cells.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;
use wmtop_core::clickhouse::queries::PRESETS;

use super::{short_duration, window, Theme};
use crate::keymap::Mode;
use crate::state::{App, Pane};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let q = &app.query;
    let title = format!(
        "{}{}",
        Pane::Query.title(),
        if app.allow_writes {
            " (writes allowed)"
        } else {
            " (read-only)"
        }
    );
    let block = theme.block(title, app.focus == Pane::Query);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [editor, presets, info, table_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);

    // The editor, scrolled so the cursor stays visible.
    let editing = app.mode == Mode::Edit;
    let width = editor.width.saturating_sub(2) as usize;
    let scroll = q.input.visual_scroll(width);
    let shown: String = q.input.value().chars().skip(scroll).take(width).collect();
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("> ", theme.key()),
            Span::raw(if shown.is_empty() && !editing {
                "press i to type SQL, 1-5 for a preset".to_string()
            } else {
                shown
            }),
        ])),
        editor,
    );
    if editing {
        let x = editor.x + 2 + (q.input.visual_cursor().saturating_sub(scroll)) as u16;
        f.set_cursor_position((x.min(editor.right().saturating_sub(1)), editor.y));
    }
    let preset_line: Vec<Span> = PRESETS
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            [
                Span::styled(format!("{}", i + 1), theme.key()),
                Span::raw(format!(" {}  ", p.key)),
            ]
        })
        .collect();
    f.render_widget(Paragraph::new(Line::from(preset_line)), presets);

    let status = match (&q.running, &q.error, &q.result) {
        (Some((_, since)), _, _) => Line::styled(
            format!(
                "running for {} ... (c or Ctrl-c cancels)",
                short_duration(since.elapsed())
            ),
            theme.warn(),
        ),
        (None, Some(e), _) => Line::styled(format!("error: {e}"), theme.bad()),
        (None, None, Some(r)) => Line::styled(
            format!(
                "{} rows, {} columns in {}{}",
                r.rows.len(),
                r.columns.len(),
                q.took.map_or("-".into(), short_duration),
                if r.columns.len() > 1 {
                    "   h/l scroll columns"
                } else {
                    ""
                }
            ),
            theme.dim(),
        ),
        _ => Line::styled("no query run yet", theme.dim()),
    };
    f.render_widget(Paragraph::new(status), info);

    let Some(r) = &q.result else { return };
    if r.columns.is_empty() {
        return;
    }
    // Columns from the horizontal offset that fit the width.
    let mut widths = Vec::new();
    let mut used = 0u16;
    for c in q.col..r.columns.len() {
        let content = r
            .rows
            .iter()
            .take(200)
            .map(|row| row.get(c).map_or(0, |v| cell_text(v).chars().count()))
            .max()
            .unwrap_or(0)
            .max(r.columns[c].chars().count())
            .clamp(3, 40) as u16;
        if used + content + 1 > table_area.width && !widths.is_empty() {
            break;
        }
        used += content + 1;
        widths.push((c, content));
    }
    let header = Row::new(widths.iter().map(|(c, _)| r.columns[*c].clone())).style(theme.header());
    let visible = table_area.height.saturating_sub(1) as usize;
    let (start, end) = window(r.rows.len(), q.row, visible);
    let rows = r.rows[start..end].iter().enumerate().map(|(i, row)| {
        let cells = widths
            .iter()
            .map(|(c, _)| row.get(*c).map(cell_text).unwrap_or_default());
        let r = Row::new(cells);
        if start + i == q.row && app.focus == Pane::Query {
            r.style(theme.selected())
        } else {
            r
        }
    });
    let constraints: Vec<Constraint> = widths.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    f.render_widget(Table::new(rows, constraints).header(header), table_area);
}

/// A cell as the screen shows it: strings bare, NULL as `NULL`.
fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}
