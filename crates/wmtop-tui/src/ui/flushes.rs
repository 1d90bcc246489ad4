//! The batch-flushes pane: newest first, with time, rows, bytes, duration, offsets
//! (every range when they fit, else a summary; the selected flush's whole range on a
//! line below) and outcome; what is being retried or set aside; a rows-per-second
//! sparkline; totals in the title, as many as fit.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::{note_hidden, sparkline, table, window, Col};
use crate::state::flushes::{FlushRow, FlushesState};
use crate::state::{App, Pane};
use crate::text::{
    bytes, clock, fit, join_fitting, offsets, offsets_full, short_duration, si, width,
};

/// Columns for the offsets when the pane is as narrow as it gets at 120 columns.
const OFFSETS_MIN: u16 = 16;

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let fl = &app.flushes;
    let t = &fl.totals;
    let focused = app.focus == Pane::Flushes;
    let title = join_fitting(
        &[
            Pane::Flushes.title().to_string(),
            format!("{} batches", t.batches),
            format!("{} rows", si(t.rows)),
            bytes(t.bytes),
        ],
        " - ",
        usize::from(area.width.saturating_sub(4)),
        theme.ascii,
    );
    let block = theme.block(title, focused, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let spark_h = if inner.height >= 10 { 3 } else { 2 };
    let [now_area, table_area, detail_area, spark_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(2),
        Constraint::Length(u16::from(focused)),
        Constraint::Length(spark_h),
    ])
    .areas(inner);
    let w = usize::from(now_area.width);
    let now = now_line(fl, theme, w);
    f.render_widget(Paragraph::new(now), now_area);
    let cols = [
        Col::label("time"),
        Col::number("rows"),
        Col::number("bytes"),
        Col::number("took"),
        Col::text("offsets", OFFSETS_MIN),
        Col::label("outcome"),
    ];
    let visible = usize::from(table_area.height.saturating_sub(1));
    let (start, end) = window(fl.rows.len(), fl.selected, visible);
    let shown: Vec<_> = fl.rows.iter().skip(start).take(end - start).collect();
    let mut rows: Vec<_> = shown
        .iter()
        .map(|r| {
            let (outcome, style) = match (r.retries, r.dead_letters) {
                (0, 0) => ("ok".to_string(), theme.ok()),
                (0, d) => (format!("ok, {d} aside"), theme.warn()),
                (n, _) => (format!("retried {n}"), theme.warn()),
            };
            (
                vec![
                    clock(r.at),
                    si(r.rows as u64),
                    bytes(r.bytes as u64),
                    short_duration(r.took),
                    String::new(),
                    outcome,
                ],
                style,
            )
        })
        .collect();
    // The offsets get what the other columns leave: every range, or a summary.
    let others: usize = [0, 1, 2, 3, 5]
        .iter()
        .map(|i| {
            rows.iter()
                .map(|(r, _)| width(&r[*i]))
                .chain([width(&cols[*i].header)])
                .max()
                .unwrap_or(0)
        })
        .sum();
    let offsets_w = usize::from(table_area.width)
        .saturating_sub(others + cols.len() - 1)
        .max(usize::from(OFFSETS_MIN));
    for ((cells, _), r) in rows.iter_mut().zip(&shown) {
        cells[4] = offsets(&r.offsets, offsets_w, theme.ascii);
    }
    let selected = focused.then(|| fl.selected.saturating_sub(start));
    let hidden = table(f, table_area, theme, &cols, &rows, selected);
    note_hidden(f, area, theme, hidden);
    if focused {
        if let Some(r) = fl.rows.get(fl.selected) {
            selected_line(f, theme, r, detail_area);
        }
    }
    app.spark_span
        .set(app.spark_span.get().max(usize::from(spark_area.width)));
    sparkline(f, spark_area, theme, "rows/s", &fl.per_second, theme.ok());
}

/// The line above the table: a failing insert, what was set aside, or the retries.
fn now_line(fl: &FlushesState, theme: Theme, w: usize) -> Line<'static> {
    let t = &fl.totals;
    match &fl.retrying {
        Some((n, e)) => Line::styled(
            fit(&format!("insert failing, retry {n}: {e}"), w, theme.ascii),
            theme.bad(),
        ),
        None if t.dead_letters > 0 => Line::styled(
            fit(
                &format!(
                    "{} set aside (d: dead letters); retries {}",
                    t.dead_letters, t.retries
                ),
                w,
                theme.ascii,
            ),
            theme.warn(),
        ),
        None => Line::styled(
            fit(
                &match &fl.last_cycle {
                    Some(cycle) => format!("{cycle}; retries {}", t.retries),
                    None => format!("retries {}; nothing set aside", t.retries),
                },
                w,
                theme.ascii,
            ),
            theme.dim(),
        ),
    }
}

/// The selected batch's figures, below the table.
fn selected_line(f: &mut Frame, theme: Theme, r: &FlushRow, detail_area: Rect) {
    let revised = match r.revised {
        0 => String::new(),
        n => format!(" ({n} over revised hours)"),
    };
    let text = format!(
        "selected: {} rows written{revised}, {} unchanged, offsets {}",
        r.rows,
        r.unchanged,
        offsets_full(&r.offsets)
    );
    f.render_widget(
        Paragraph::new(Line::styled(
            fit(&text, usize::from(detail_area.width), theme.ascii),
            theme.dim(),
        )),
        detail_area,
    );
}
