//! The transactions pane: per transaction the records the API served (and set aside),
//! messages produced, records the last load took in, rows stored and distinct records
//! as a plain query counts them, and a verdict (`DUPS n` where a plain count sees
//! copies); sortable, filterable by name. Only the visible rows are built.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

use super::{window, Theme};
use crate::keymap::Mode;
use crate::state::{App, Pane, TxColumn, TxStatus};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let txs = app.visible_txs();
    let mismatched = txs.iter().filter(|r| r.2.is_problem()).count();
    let dups = txs
        .iter()
        .filter(|r| matches!(r.2, TxStatus::Dups(_)))
        .count();
    let counted = match app.counts_at {
        Some(at) => format!("counted {}", at.strftime("%H:%M:%S")),
        None => "not counted yet".into(),
    };
    let title = format!(
        "{} - {} shown of {}, {} mismatched, {} with DUPS, {counted}",
        Pane::Transactions.title(),
        txs.len(),
        app.txs.len(),
        mismatched,
        dups
    );
    let block = theme.block(title, app.focus == Pane::Transactions);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let filtering = app.mode == Mode::Filter || !app.filter.value().is_empty();
    let [filter_area, table_area] =
        Layout::vertical([Constraint::Length(u16::from(filtering)), Constraint::Min(1)])
            .areas(inner);
    if filtering {
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("/", theme.key()),
                Span::raw(app.filter.value().to_string()),
                Span::styled(if app.mode == Mode::Filter { "_" } else { "" }, theme.key()),
            ])),
            filter_area,
        );
    }
    let (sort_col, rev) = app.sort;
    let header = Row::new(TxColumn::ALL.iter().map(|c| {
        if *c == sort_col {
            format!("{}{}", c.title(), if rev { " v" } else { " ^" })
        } else {
            c.title().to_string()
        }
    }))
    .style(theme.header());
    let visible = table_area.height.saturating_sub(1) as usize;
    let selected = app.scroll[2].min(txs.len().saturating_sub(1));
    let (start, end) = window(txs.len(), selected, visible);
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    let rows = txs[start..end]
        .iter()
        .enumerate()
        .map(|(i, (name, t, status))| {
            let style = match status {
                TxStatus::Ok(_) => theme.ok(),
                TxStatus::Loading | TxStatus::Unknown => theme.dim(),
                _ => theme.bad(),
            };
            let row = Row::new([
                (*name).clone(),
                opt(t.api.map(|a| a.served)),
                t.produced.to_string(),
                t.loaded.to_string(),
                opt(t.stored.map(|s| s.rows)),
                opt(t.stored.map(|s| s.distinct)),
                status.label(),
            ])
            .style(style);
            if start + i == selected && app.focus == Pane::Transactions {
                row.style(theme.selected())
            } else {
                row
            }
        });
    let widths = [
        Constraint::Min(16),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(10),
    ];
    if txs.is_empty() {
        let text = if app.txs.is_empty() {
            "No transactions yet: press r to fetch and publish."
        } else {
            "No transaction matches the filter."
        };
        f.render_widget(Paragraph::new(Line::styled(text, theme.dim())), table_area);
    } else {
        f.render_widget(Table::new(rows, widths).header(header), table_area);
    }
}
