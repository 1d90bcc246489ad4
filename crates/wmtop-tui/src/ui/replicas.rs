//! The replicas view (`c`): for a Distributed table, each replica of the table behind it
//! as it last reported itself: up or down, rows, delay, replication queue, read-only,
//! and its last error; when they were sampled. A down, stale or read-only replica is
//! marked.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use wmtop_core::clickhouse::cluster::ReplicaState;

use super::theme::Theme;
use super::widgets::{table, window, Col};
use crate::state::App;
use crate::text::{short_duration, wrap};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let r = &app.replicas;
    let age =
        r.at.map_or("never".into(), |at| short_duration(at.elapsed()));
    let title = match r.summary() {
        Some(s) => format!(
            "Replicas - {} of {} up, {} stale or read-only, sampled {age} ago (Esc back)",
            s.up, s.total, s.troubled
        ),
        None => "Replicas - not sampled (Esc back)".to_string(),
    };
    let block = theme.block(title, true, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(5)]).areas(inner);
    let cols = [
        Col::number("shard"),
        Col::text("replica", 12),
        Col::label("state"),
        Col::number("rows"),
        Col::number("delay s"),
        Col::number("queue"),
        Col::label("read-only"),
    ];
    let visible = usize::from(list_area.height.saturating_sub(1));
    let (start, end) = window(r.rows.len(), r.selected, visible);
    let rows: Vec<_> = r.rows[start..end]
        .iter()
        .map(|s| (cells(s), style(s, theme)))
        .collect();
    table(f, list_area, theme, &cols, &rows, Some(r.selected - start));
    if let Some(s) = r.rows.get(r.selected) {
        let text = match &s.last_error {
            Some(e) => format!("{}: {e}", s.host),
            None => format!("{}: no error reported", s.host),
        };
        let lines: Vec<Line> = wrap(&text, usize::from(detail_area.width))
            .into_iter()
            .map(|l| Line::styled(l, style(s, theme)))
            .collect();
        f.render_widget(Paragraph::new(lines), detail_area);
    }
}

fn cells(s: &ReplicaState) -> Vec<String> {
    let known = |v: Option<u64>| v.map_or("-".into(), |n| n.to_string());
    vec![
        s.shard.to_string(),
        s.host.clone(),
        match (s.up, s.troubled()) {
            (false, _) => "DOWN".into(),
            (true, true) => "up, STALE".into(),
            (true, false) => "up".into(),
        },
        known(s.rows),
        known(s.absolute_delay),
        known(s.queue_size),
        match s.readonly {
            Some(true) => "YES".into(),
            Some(false) => "no".into(),
            None => "-".into(),
        },
    ]
}

fn style(s: &ReplicaState, theme: Theme) -> ratatui::style::Style {
    match (s.up, s.troubled()) {
        (false, _) => theme.bad(),
        (true, true) => theme.warn(),
        (true, false) => theme.ok(),
    }
}
