//! The query pane: the editor, a line for what is running or what came back, then
//! either the server's error (code and message first, wrapped over as many lines as it
//! needs) or the result table, which scrolls both ways to keep the selected cell in view
//! and builds only the visible cells; a cell cut short ends in `…`, and the selected
//! cell's whole value is shown below the table.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;
use wmtop_core::clickhouse::QueryResult;

use super::theme::Theme;
use super::widgets::window;
use crate::state::{App, Pane};
use crate::text::{fit, short_duration, width, wrap};

/// A column is at most this wide; longer values end in `…`.
const MAX_CELL: usize = 40;

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let q = &app.query;
    let focused = app.focus == Pane::Query;
    let title = format!(
        "{}{}",
        Pane::Query.title(),
        if app.allow_writes {
            " (writes allowed)"
        } else {
            " (read-only)"
        }
    );
    let block = theme.block(title, focused, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [editor, info, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    draw_editor(app, theme, f, editor);
    let w = usize::from(info.width);
    let status = match (&q.running, &q.error, &q.result) {
        (Some((_, since)), _, _) => Line::styled(
            fit(
                &format!(
                    "running for {} ... (Esc cancels)",
                    short_duration(since.elapsed())
                ),
                w,
                theme.ascii,
            ),
            theme.warn(),
        ),
        (None, Some(_), _) => Line::styled("the query failed:", theme.bad()),
        (None, None, Some(r)) => Line::styled(
            fit(
                &format!(
                    "{} rows, {} columns in {}   Ctrl-e export  Ctrl-y copy",
                    r.rows.len(),
                    r.columns.len(),
                    q.took.map_or("-".into(), short_duration),
                ),
                w,
                theme.ascii,
            ),
            theme.dim(),
        ),
        _ => Line::styled(
            fit("no query run yet; Ctrl-p for a preset", w, theme.ascii),
            theme.dim(),
        ),
    };
    f.render_widget(Paragraph::new(status), info);
    if let (None, Some(e)) = (&q.running, &q.error) {
        // The server's reason in full, never cut at the pane's edge.
        let lines: Vec<Line> = wrap(e, usize::from(body.width))
            .into_iter()
            .map(|l| Line::styled(l, theme.bad()))
            .collect();
        f.render_widget(Paragraph::new(lines), body);
        return;
    }
    let Some(r) = &q.result else { return };
    if r.columns.is_empty() {
        return;
    }
    draw_result(app, r, theme, f, body);
}

fn draw_editor(app: &App, theme: Theme, f: &mut Frame, editor: Rect) {
    let q = &app.query;
    let width = usize::from(editor.width.saturating_sub(2));
    let scroll = q.input.visual_scroll(width);
    let shown: String = q.input.value().chars().skip(scroll).take(width).collect();
    let placeholder = shown.is_empty() && !q.editing;
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("> ", theme.key()),
            if placeholder {
                Span::styled(
                    fit(
                        "type SQL here (any key starts the editor), Ctrl-p for a preset",
                        width,
                        theme.ascii,
                    ),
                    theme.dim(),
                )
            } else {
                Span::raw(shown)
            },
        ])),
        editor,
    );
    if q.editing {
        let x = editor.x + 2 + (q.input.visual_cursor().saturating_sub(scroll)) as u16;
        f.set_cursor_position((x.min(editor.right().saturating_sub(1)), editor.y));
    }
}

/// A cell's width: its longest value among the first rows, its header, at most
/// [`MAX_CELL`].
fn col_width(r: &QueryResult, c: usize) -> usize {
    (0..r.rows.len().min(200))
        .map(|row| width(&r.text(row, c)))
        .chain([width(&r.columns[c])])
        .max()
        .unwrap_or(0)
        .clamp(3, MAX_CELL)
}

/// The columns shown, from the first that keeps the selected one in view.
fn visible_cols(r: &QueryResult, selected: usize, room: usize) -> Vec<(usize, usize)> {
    let widths: Vec<usize> = (0..r.columns.len()).map(|c| col_width(r, c)).collect();
    let mut first = 0;
    while first < selected
        && widths[first..=selected]
            .iter()
            .map(|w| w + 1)
            .sum::<usize>()
            > room
    {
        first += 1;
    }
    let mut out = Vec::new();
    let mut used = 0;
    for (c, w) in widths.iter().enumerate().skip(first) {
        if used + w > room && !out.is_empty() {
            break;
        }
        let w = (*w).min(room.saturating_sub(used));
        out.push((c, w));
        used += w + 1;
    }
    out
}

fn draw_result(app: &App, r: &QueryResult, theme: Theme, f: &mut Frame, body: Rect) {
    let q = &app.query;
    let focused = app.focus == Pane::Query;
    let cell = q.cell_text().unwrap_or_default();
    let cols = visible_cols(r, q.col, usize::from(body.width));
    let cut = cols
        .iter()
        .find(|(c, _)| *c == q.col)
        .is_some_and(|(_, w)| width(&cell) > *w);
    // The selected cell whole, below the table, when the table cuts it.
    let cell_lines = if focused && cut {
        let label = format!("{}: ", r.columns[q.col]);
        let mut lines = wrap(&format!("{label}{cell}"), usize::from(body.width));
        lines.truncate(3);
        lines
    } else {
        Vec::new()
    };
    let [table_area, cell_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(cell_lines.len() as u16),
    ])
    .areas(body);
    let header = Row::new(
        cols.iter()
            .map(|(c, w)| Cell::from(fit(&r.columns[*c], *w, theme.ascii))),
    )
    .style(theme.header());
    let visible = usize::from(table_area.height.saturating_sub(1));
    let (start, end) = window(r.rows.len(), q.row, visible);
    let rows = (start..end).map(|row| {
        let cells = cols.iter().map(|(c, w)| {
            let text = fit(&r.text(row, *c), *w, theme.ascii);
            if focused && row == q.row && *c == q.col {
                Cell::from(text).style(theme.key().add_modifier(Modifier::UNDERLINED))
            } else {
                Cell::from(text)
            }
        });
        let line = Row::new(cells);
        if focused && row == q.row {
            line.style(theme.selected())
        } else {
            line
        }
    });
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|(_, w)| Constraint::Length(u16::try_from(*w).unwrap_or(u16::MAX)))
        .collect();
    f.render_widget(Table::new(rows, widths).header(header), table_area);
    if !cell_lines.is_empty() {
        f.render_widget(
            Paragraph::new(
                cell_lines
                    .into_iter()
                    .map(|l| Line::styled(l, theme.dim()))
                    .collect::<Vec<_>>(),
            ),
            cell_area,
        );
    }
}
