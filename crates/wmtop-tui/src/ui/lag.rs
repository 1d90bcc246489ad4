//! The consumer-lag pane: per partition the committed offset, high watermark, lag in
//! messages and in time, its replicas in sync (or that it has no leader) and who holds it
//! (the group's member, as the broker describes it); a sparkline of total lag. Unknown
//! figures say so, and figures from a failed sample are marked as not current.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use wmtop_core::kafka::lag::Replicas;
use wmtop_core::kafka::sampler::Holder;

use super::theme::Theme;
use super::widgets::{note_hidden, sparkline, table, window, Col};
use crate::state::lag::LagState;
use crate::state::{App, Pane};
use crate::text::{fit, short_duration};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let lag = &app.lag;
    let title = title(lag);
    let focused = app.focus == Pane::Lag;
    let block = theme.block(title, focused, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let spark_h = if inner.height >= 9 { 3 } else { 2 };
    let [table_area, spark_area] =
        Layout::vertical([Constraint::Min(2), Constraint::Length(spark_h)]).areas(inner);
    let stale = lag.at.is_none();
    let mut table_area = table_area;
    if stale {
        let mut lines = vec![match lag.rows.is_empty() {
            true => "Lag unknown: not sampled yet (is Kafka up?)".to_string(),
            false => "Lag unknown: the figures below are not current".to_string(),
        }];
        if let Some(e) = &lag.error {
            lines.push(format!("the last sample failed: {e}"));
        }
        let [note, rest] =
            Layout::vertical([Constraint::Length(lines.len() as u16), Constraint::Min(0)])
                .areas(table_area);
        let w = usize::from(note.width);
        f.render_widget(
            Paragraph::new(
                lines
                    .iter()
                    .map(|l| Line::styled(fit(l, w, theme.ascii), theme.warn()))
                    .collect::<Vec<_>>(),
            ),
            note,
        );
        table_area = rest;
        if lag.rows.is_empty() {
            return;
        }
    }
    let cols = [
        Col::number("part"),
        Col::number("committed"),
        Col::number("high"),
        Col::number("lag"),
        Col::label("age"),
        Col::text("held by", 10),
        Col::label("in sync"),
    ];
    let visible = usize::from(table_area.height.saturating_sub(1));
    let (start, end) = window(lag.rows.len(), lag.selected, visible);
    let rows: Vec<_> = lag.rows[start..end]
        .iter()
        .map(|l| {
            let p = &l.lag;
            let lag_text = match p.lag {
                Some(n) if !stale => n.to_string(),
                _ => "unknown".into(),
            };
            let age = match (p.lag, l.oldest_age) {
                (Some(0), _) => "-".to_string(),
                (_, Some(a)) if !stale => short_duration(a),
                _ => "unknown".into(),
            };
            let (in_sync, healthy) = replicas_text(l.replicas.as_ref());
            let style = match p.lag {
                _ if !healthy => theme.warn(),
                Some(0) => theme.ok(),
                Some(_) => theme.warn(),
                None => theme.dim(),
            };
            (
                vec![
                    p.partition.to_string(),
                    p.committed.map_or("none".into(), |c| c.to_string()),
                    p.high.to_string(),
                    lag_text,
                    age,
                    holder_text(&l.holder, lag.assigned.contains(&p.partition)),
                    in_sync,
                ],
                style,
            )
        })
        .collect();
    let selected = focused.then(|| lag.selected - start);
    let hidden = table(f, table_area, theme, &cols, &rows, selected);
    note_hidden(f, area, theme, hidden);
    app.spark_span
        .set(app.spark_span.get().max(usize::from(spark_area.width)));
    sparkline(
        f,
        spark_area,
        theme,
        "total lag",
        &lag.history,
        theme.warn(),
    );
}

/// Replicas in sync of all, marked when fewer are in sync or none leads; false then.
fn replicas_text(r: Option<&Replicas>) -> (String, bool) {
    match r {
        None => ("unknown".into(), true),
        Some(r) if r.leader.is_none() => ("no leader".into(), false),
        Some(r) if r.under_replicated() => (format!("{}/{} under", r.in_sync, r.replicas), false),
        Some(r) => (format!("{}/{}", r.in_sync, r.replicas), true),
    }
}

/// Who holds the partition. Where the broker did not describe the group, this wmtop's
/// own assignment still says when it is this wmtop's.
fn holder_text(h: &Holder, ours: bool) -> String {
    match h {
        Holder::This => "this wmtop".into(),
        Holder::Member { client_id, host } => format!("{client_id} at {host}"),
        Holder::Nobody => "nobody".into(),
        Holder::Rebalancing => "rebalancing".into(),
        Holder::Unknown if ours => "this wmtop".into(),
        Holder::Unknown => "unknown".into(),
    }
}

/// The pane's title: the total, how late the sample is, and replica trouble (said here
/// too, where a narrow pane leaves the column out).
fn title(lag: &LagState) -> String {
    let mut title = match lag.total() {
        Some(t) => format!("{} - total {t}", Pane::Lag.title()),
        None => format!("{} - total unknown", Pane::Lag.title()),
    };
    if let Some(age) = lag.late() {
        let age = match age.as_secs() {
            s @ 0..60 => format!("{s}s"),
            _ => short_duration(age),
        };
        title.push_str(&format!(", sampled {age} ago"));
    }
    let (under, leaderless) = lag.replica_trouble();
    if under > 0 {
        title.push_str(&format!(", {under} under-replicated"));
    }
    if leaderless > 0 {
        title.push_str(&format!(", {leaderless} without a leader"));
    }
    title
}
