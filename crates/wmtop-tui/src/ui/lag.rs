//! The consumer-lag pane: per partition the committed offset, high watermark, lag in
//! messages and in time, and who holds it; a sparkline of total lag. Unknown figures say
//! so.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::{short_duration, sparkline, window, Theme};
use crate::state::{App, Pane};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let total = app.total_lag();
    let title = match total {
        Some(t) => format!("{} - total {t}", Pane::Lag.title()),
        None => format!("{} - total unknown", Pane::Lag.title()),
    };
    let block = theme.block(title, app.focus == Pane::Lag);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [table_area, spark_area] =
        Layout::vertical([Constraint::Min(2), Constraint::Length(3)]).areas(inner);
    if app.lag_at.is_none() {
        let text = if app.lag.is_empty() {
            "Lag unknown: not sampled yet (is Kafka up?)"
        } else {
            "Lag unknown: the last sample failed; figures below are not current"
        };
        f.render_widget(Paragraph::new(Line::styled(text, theme.warn())), table_area);
        if app.lag.is_empty() {
            return;
        }
    }
    let header =
        Row::new(["part", "committed", "high", "lag", "age", "held by"]).style(theme.header());
    let visible = table_area.height.saturating_sub(1) as usize;
    let (start, end) = window(app.lag.len(), app.scroll[0], visible);
    let stale = app.lag_at.is_none();
    let rows = app.lag[start..end].iter().map(|l| {
        let p = &l.lag;
        let lag = match p.lag {
            Some(n) if !stale => n.to_string(),
            _ => "unknown".into(),
        };
        let age = match (p.lag, l.oldest_age) {
            (Some(0), _) => "-".to_string(),
            (_, Some(a)) if !stale => short_duration(a),
            _ => "unknown".into(),
        };
        let holder = if app.assigned.contains(&p.partition) {
            "this wmtop"
        } else {
            "other/none"
        };
        let style = match p.lag {
            Some(0) => theme.ok(),
            Some(_) => theme.warn(),
            None => theme.dim(),
        };
        Row::new([
            p.partition.to_string(),
            p.committed.map_or("none".into(), |c| c.to_string()),
            p.high.to_string(),
            lag,
            age,
            holder.to_string(),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Min(8),
    ];
    f.render_widget(Table::new(rows, widths).header(header), table_area);
    sparkline(
        f,
        spark_area,
        theme,
        "total lag",
        &app.lag_history,
        theme.warn(),
    );
}
