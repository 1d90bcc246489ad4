//! The transaction detail view: the hours as strips (API / topic / ClickHouse, one
//! character an hour; gaps and copies marked), the selected hour in words, the
//! transaction's Kafka messages, its set-aside records with reasons, and the selected
//! hour's record as the topic holds it (what the API sent) next to its stored row(s).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use wmtop_core::tools::inspect::{HourView, TransactionDetail};

use super::theme::Theme;
use crate::state::{App, DetailState};
use crate::text::{bytes, fit};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let Some(d) = &app.detail else { return };
    let title = match d.detail() {
        Some(t) => format!(
            "{} - {} hours, {} on the topic, {} set aside (Esc back)",
            d.name,
            t.hours.len(),
            match t.messages.len() {
                1 => "1 message".to_string(),
                n => format!("{n} messages"),
            },
            t.set_aside.len()
        ),
        None => format!("{} (Esc back)", d.name),
    };
    let block = theme.block(title, true, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let t = match &d.found {
        None => {
            f.render_widget(
                Paragraph::new(Line::styled(
                    "Reading the topic and ClickHouse for this transaction...",
                    theme.dim(),
                )),
                inner,
            );
            return;
        }
        Some(Err(e)) => {
            let lines: Vec<Line> =
                crate::text::wrap(&format!("Cannot inspect: {e}"), usize::from(inner.width))
                    .into_iter()
                    .map(|l| Line::styled(l, theme.bad()))
                    .collect();
            f.render_widget(Paragraph::new(lines), inner);
            return;
        }
        Some(Ok(t)) => t,
    };
    let messages_h = (t.messages.len().min(3) + 1) as u16;
    let aside_h = if t.set_aside.is_empty() {
        1
    } else {
        (t.set_aside.len().min(3) + 1) as u16
    };
    let [strips, messages, aside, records] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(messages_h),
        Constraint::Length(aside_h),
        Constraint::Min(3),
    ])
    .areas(inner);
    draw_strips(d, t, theme, f, strips);
    draw_messages(t, theme, f, messages);
    draw_set_aside(t, theme, f, aside);
    draw_records(d, theme, f, records);
}

/// The hours shown: a window of the strip around the selected hour.
fn hour_window(n: usize, selected: usize, room: usize) -> (usize, usize) {
    if n <= room {
        return (0, n);
    }
    let start = selected.saturating_sub(room / 2).min(n - room);
    (start, start + room)
}

fn draw_strips(d: &DetailState, t: &TransactionDetail, theme: Theme, f: &mut Frame, area: Rect) {
    const LABEL: usize = 7;
    let room = usize::from(area.width).saturating_sub(LABEL);
    let (start, end) = hour_window(t.hours.len(), d.hour, room);
    let full = if theme.ascii { "#" } else { "█" };
    let strip = |label: &str, cell: &dyn Fn(&HourView) -> (String, Style)| -> Line<'static> {
        let mut spans = vec![Span::raw(format!("{label:<LABEL$}"))];
        for (i, h) in t.hours[start..end].iter().enumerate() {
            let (s, style) = cell(h);
            let style = if start + i == d.hour {
                style.patch(theme.selected())
            } else {
                style
            };
            spans.push(Span::styled(s, style));
        }
        Line::from(spans)
    };
    let api = strip("API", &|h| match h.api {
        Some(n) if n > 0 => (full.to_string(), theme.ok()),
        Some(_) => (".".into(), theme.dim()),
        None => ("?".into(), theme.dim()),
    });
    let topic = strip("topic", &|h| match h.topic {
        0 => (".".into(), theme.dim()),
        _ => (full.to_string(), theme.ok()),
    });
    let ch = strip("CH", &|h| {
        let want = h.topic > 0 || h.api.is_some_and(|n| n > 0);
        match h.stored {
            0 if want => ("x".into(), theme.bad()),
            0 => (".".into(), theme.dim()),
            1 => (full.to_string(), theme.ok()),
            n @ 2..=9 => (n.to_string(), theme.bad()),
            _ => ("+".into(), theme.bad()),
        }
    });
    let selected = t.hours.get(d.hour).map_or(String::new(), |h| {
        let when = jiff::Timestamp::from_millisecond(h.hour_ms)
            .map(|ts| ts.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let api = match h.api {
            Some(n) => format!("API served {n}"),
            None => "API unknown (no saved fetch)".into(),
        };
        format!(
            "hour {}/{}: {when}: {api}, topic {}, stored {}{}   (h/l moves)",
            d.hour + 1,
            t.hours.len(),
            h.topic,
            h.stored,
            if h.stored > 1 { " - COPIES" } else { "" }
        )
    });
    let legend = format!(
        "{full} present  . none  x missing in ClickHouse  2-9/+ stored copies  {}",
        if start > 0 || end < t.hours.len() {
            format!("(hours {}-{} of {})", start + 1, end, t.hours.len())
        } else {
            String::new()
        }
    );
    let w = usize::from(area.width);
    f.render_widget(
        Paragraph::new(vec![
            api,
            topic,
            ch,
            Line::styled(fit(&selected, w, theme.ascii), theme.key()),
            Line::styled(fit(&legend, w, theme.ascii), theme.dim()),
        ]),
        area,
    );
}

fn draw_messages(t: &TransactionDetail, theme: Theme, f: &mut Frame, area: Rect) {
    let w = usize::from(area.width);
    let mut lines = vec![Line::styled(
        format!("Kafka messages ({}; newest last):", t.messages.len()),
        theme.header(),
    )];
    let skip = t.messages.len().saturating_sub(3);
    for m in &t.messages[skip..] {
        let at = m
            .at_ms
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map_or("time unknown".to_string(), |ts| {
                ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
            });
        lines.push(Line::raw(fit(
            &format!(
                "  partition {} offset {}  {}  produced {at}  {} records",
                m.partition,
                m.offset,
                bytes(m.bytes as u64),
                m.records
            ),
            w,
            theme.ascii,
        )));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_set_aside(t: &TransactionDetail, theme: Theme, f: &mut Frame, area: Rect) {
    let w = usize::from(area.width);
    if t.set_aside.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("Nothing set aside.", theme.dim())),
            area,
        );
        return;
    }
    let mut lines = vec![Line::styled(
        format!("Set aside ({}):", t.set_aside.len()),
        theme.header(),
    )];
    for e in t.set_aside.iter().take(3) {
        lines.push(Line::styled(
            fit(
                &format!(
                    "  p{} @{} record {}: {}",
                    e.kafka_partition, e.kafka_offset, e.record_index, e.reason
                ),
                w,
                theme.ascii,
            ),
            theme.warn(),
        ));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_records(d: &DetailState, theme: Theme, f: &mut Frame, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let record = d.record_json();
    let rows = d.rows_json();
    let left_block = theme.block(
        "Record on the topic (as the API sent it; y copies)".into(),
        false,
        left.width,
    );
    let right_block = theme.block(
        match rows.len() {
            0 => "Row in ClickHouse: none".to_string(),
            1 => "Row in ClickHouse".to_string(),
            n => format!("Rows in ClickHouse: {n} (copies)"),
        },
        false,
        right.width,
    );
    let text =
        |s: &str| -> Vec<Line<'static>> { s.lines().map(|l| Line::raw(l.to_string())).collect() };
    let left_text = match &record {
        Some(r) => text(r),
        None => vec![Line::styled(
            "No record for this hour in the newest message.",
            theme.dim(),
        )],
    };
    let right_text = if rows.is_empty() {
        vec![Line::styled("No row stored for this hour.", theme.dim())]
    } else {
        rows.iter().flat_map(|r| text(r)).collect()
    };
    f.render_widget(
        Paragraph::new(left_text)
            .block(left_block)
            .scroll((d.scroll, 0)),
        left,
    );
    f.render_widget(
        Paragraph::new(right_text)
            .block(right_block)
            .scroll((d.scroll, 0)),
        right,
    );
}
