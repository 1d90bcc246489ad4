//! The batch-flushes pane: newest first, with rows, bytes, duration, offset range and
//! outcome; a rows-per-second sparkline and totals.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::{bytes, short_duration, si, sparkline, window, Theme};
use crate::state::{App, Pane};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let t = &app.totals;
    let title = format!(
        "{} - {} batches, {} rows, {}",
        Pane::Flushes.title(),
        t.batches,
        si(t.rows),
        bytes(t.bytes)
    );
    let block = theme.block(title, app.focus == Pane::Flushes);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [now_area, table_area, spark_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(2),
        Constraint::Length(3),
    ])
    .areas(inner);
    let now = match &app.retrying {
        Some((n, e)) => Line::styled(format!("insert failing, retry {n}: {e}"), theme.bad()),
        None if t.dead_letters > 0 => Line::styled(
            format!(
                "{} set aside (wmtop dead-letters); retries {}",
                t.dead_letters, t.retries
            ),
            theme.warn(),
        ),
        None => Line::styled(
            format!("retries {}; nothing set aside", t.retries),
            theme.dim(),
        ),
    };
    f.render_widget(Paragraph::new(now), now_area);
    let header =
        Row::new(["time", "rows", "bytes", "took", "offsets", "outcome"]).style(theme.header());
    let visible = table_area.height.saturating_sub(1) as usize;
    let (start, end) = window(app.flushes.len(), app.scroll[1], visible);
    let rows = app.flushes.iter().skip(start).take(end - start).map(|fl| {
        let offsets = fl
            .offsets
            .iter()
            .map(|(p, a, b)| format!("{p}:{a}-{b}"))
            .collect::<Vec<_>>()
            .join(" ");
        let (outcome, style) = match (fl.retries, fl.dead_letters) {
            (0, 0) => ("ok".to_string(), theme.ok()),
            (0, d) => (format!("ok, {d} aside"), theme.warn()),
            (r, _) => (format!("retried {r}"), theme.warn()),
        };
        Row::new([
            fl.at.strftime("%H:%M:%S").to_string(),
            fl.rows.to_string(),
            bytes(fl.bytes as u64),
            short_duration(fl.took),
            offsets,
            outcome,
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Min(10),
        Constraint::Length(12),
    ];
    f.render_widget(Table::new(rows, widths).header(header), table_area);
    sparkline(
        f,
        spark_area,
        theme,
        "rows/s",
        &app.rows_per_sec,
        theme.ok(),
    );
}
