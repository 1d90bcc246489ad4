//! The dead-letter view: messages the broker does not serve (marked UNSERVED; `s`
//! skips one), then the messages and records set aside with their reasons (`D`
//! re-drives them), and the selected entry's reason and payload preview in full below.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::{table, window, Col};
use crate::state::dead_letters::Entry;
use crate::state::App;
use crate::text::{bytes, wrap};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let dead = &app.dead;
    let entries = dead.entries();
    let title = match &dead.listed {
        None => "Dead letters - reading...".to_string(),
        Some(Err(_)) => "Dead letters - the listing failed".to_string(),
        Some(Ok(l)) => format!(
            "Dead letters - {} unserved, {} set aside{} (Esc back)",
            dead.unserved.len(),
            l.len(),
            if dead.loading { ", re-reading..." } else { "" }
        ),
    };
    let block = theme.block(title, true, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(6)]).areas(inner);
    if let Some(Err(e)) = &dead.listed {
        let lines: Vec<Line> = wrap(
            &format!("Cannot list the dead letters: {e}"),
            usize::from(inner.width),
        )
        .into_iter()
        .map(|l| Line::styled(l, theme.bad()))
        .collect();
        f.render_widget(Paragraph::new(lines), list_area);
    }
    if entries.is_empty() {
        if dead.listed.as_ref().is_some_and(Result::is_ok) {
            f.render_widget(
                Paragraph::new(Line::styled(
                    "Nothing is set aside and every message is served.",
                    theme.ok(),
                )),
                list_area,
            );
        }
        return;
    }
    let cols = [
        Col::label("kind"),
        Col::number("part"),
        Col::number("offset"),
        Col::number("record"),
        Col::text("transaction", 12),
        Col::text("reason", 20),
        Col::number("bytes"),
    ];
    let visible = usize::from(list_area.height.saturating_sub(1));
    let (start, end) = window(entries.len(), dead.selected, visible);
    let rows: Vec<_> = entries[start..end]
        .iter()
        .map(|e| match e {
            Entry::Unserved(s) => (
                vec![
                    "UNSERVED".to_string(),
                    s.partition.to_string(),
                    s.offset.to_string(),
                    "-".into(),
                    "-".into(),
                    "not served by the broker; the partition waits on it (s skips)".into(),
                    s.size.map_or("-".into(), bytes),
                ],
                theme.bad(),
            ),
            Entry::SetAside(d) => (
                vec![
                    d.scope.clone(),
                    d.kafka_partition.to_string(),
                    d.kafka_offset.to_string(),
                    if d.record_index < 0 {
                        "-".into()
                    } else {
                        d.record_index.to_string()
                    },
                    d.message_key.clone(),
                    d.reason.clone(),
                    bytes(d.payload_bytes),
                ],
                theme.warn(),
            ),
        })
        .collect();
    table(
        f,
        list_area,
        theme,
        &cols,
        &rows,
        Some(dead.selected - start),
    );
    let text = dead.selected_text().unwrap_or_default();
    let lines: Vec<Line> = wrap(&text, usize::from(detail_area.width))
        .into_iter()
        .take(usize::from(detail_area.height))
        .map(Line::raw)
        .collect();
    f.render_widget(Paragraph::new(lines), detail_area);
}
