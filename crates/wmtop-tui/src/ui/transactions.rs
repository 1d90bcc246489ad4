//! The transactions pane: per transaction the records the API served, messages
//! produced, records the last load took in, rows stored and distinct records as a plain
//! query counts them, and a verdict (`DUPS n` where a plain count sees copies);
//! sortable by any column (the sorted one is marked), filterable by name (a match is
//! never hidden by a cut). Names take the width the figures leave. Only the visible rows
//! are built.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::{note_hidden, table, window, Col, Kind};
use crate::state::{App, Pane, TxColumn, TxStatus};
use crate::text::{clock, join_fitting};

/// The narrowest a name is cut to before a column is left out.
const NAME_MIN: u16 = 16;

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let txs = app.visible_txs();
    let mismatched = txs.iter().filter(|r| r.2.is_problem()).count();
    let dups = txs
        .iter()
        .filter(|r| matches!(r.2, TxStatus::Dups(_)))
        .count();
    let counted = match app.txs.counts_at {
        Some(at) => format!("counted {}", clock(at)),
        None => "not counted yet".into(),
    };
    let title = join_fitting(
        &[
            Pane::Transactions.title().to_string(),
            format!("{} shown of {}", txs.len(), app.txs.rows.len()),
            format!("{mismatched} mismatched"),
            format!("{dups} with DUPS"),
            counted,
        ],
        ", ",
        usize::from(area.width.saturating_sub(4)),
        theme.ascii,
    )
    .replacen(", ", " - ", 1);
    let focused = app.focus == Pane::Transactions;
    let block = theme.block(title, focused, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let filter = app.txs.filter.value();
    let filtering = app.txs.filtering || !filter.is_empty();
    let [filter_area, table_area] =
        Layout::vertical([Constraint::Length(u16::from(filtering)), Constraint::Min(1)])
            .areas(inner);
    if filtering {
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("/", theme.key()),
                Span::raw(filter.to_string()),
                Span::styled(if app.txs.filtering { "_" } else { "" }, theme.key()),
            ])),
            filter_area,
        );
    }
    if txs.is_empty() {
        let text = if app.txs.rows.is_empty() {
            "No transactions yet: press r to fetch and publish."
        } else {
            "No transaction matches the filter."
        };
        f.render_widget(Paragraph::new(Line::styled(text, theme.dim())), table_area);
        return;
    }
    let (sort_col, rev) = app.txs.sort;
    let (up, down) = theme.sort_marks();
    let cols: Vec<Col> = TxColumn::ALL
        .iter()
        .map(|c| {
            let header = if *c == sort_col {
                format!("{} {}", c.title(), if rev { down } else { up })
            } else {
                c.title().to_string()
            };
            let kind = match c {
                TxColumn::Name => Kind::Text { min: NAME_MIN },
                TxColumn::Status => Kind::Label,
                _ => Kind::Number,
            };
            let keep = (*c == TxColumn::Name && !filter.is_empty()).then(|| filter.to_string());
            Col { header, kind, keep }
        })
        .collect();
    let visible = usize::from(table_area.height.saturating_sub(1));
    let selected = app.txs.selected.min(txs.len().saturating_sub(1));
    let (start, end) = window(txs.len(), selected, visible);
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    let rows: Vec<_> = txs[start..end]
        .iter()
        .map(|(name, t, status)| {
            let style = match status {
                TxStatus::Ok(_) => theme.ok(),
                TxStatus::Loading | TxStatus::Unknown => theme.dim(),
                _ => theme.bad(),
            };
            (
                vec![
                    (*name).clone(),
                    opt(t.api.map(|a| a.served)),
                    t.produced.to_string(),
                    t.loaded.to_string(),
                    opt(t.stored.map(|s| s.rows)),
                    opt(t.stored.map(|s| s.distinct)),
                    status.label(),
                ],
                style,
            )
        })
        .collect();
    let selected = focused.then(|| selected - start);
    let hidden = table(f, table_area, theme, &cols, &rows, selected);
    note_hidden(f, area, theme, hidden);
}
