//! Drawing: a pure function of the state (`draw(&App, Theme, &mut Frame)`): no locks,
//! no waiting, no I/O. Wide terminals (120x36 and up) get every pane at once: lag and
//! flushes side by side on top, transactions and the query pane below at full width so
//! names have room; smaller ones (down to 80x24) get one pane at a time behind a tab
//! bar. One file per pane, view and overlay; [`layout`] is shared with mouse clicks.

mod dead_letters;
mod detail;
mod flushes;
mod footer;
mod lag;
mod overlays;
mod query;
mod replay;
mod replicas;
mod status;
pub mod theme;
mod transactions;
pub mod widgets;

#[cfg(test)]
mod tests;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub use theme::Theme;

use crate::state::{App, Overlay, Pane, View};

/// Wide enough for every pane at once.
pub fn is_wide(area: Rect) -> bool {
    area.width >= 120 && area.height >= 36
}

/// Where everything goes on a screen of `area`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Areas {
    pub status: Rect,
    /// The tab bar, on small screens.
    pub tabs: Option<Rect>,
    /// The panes drawn, with their rectangles (the full-screen views use `body`).
    pub panes: Vec<(Pane, Rect)>,
    pub body: Rect,
    pub message: Rect,
    pub footer: Rect,
}

/// The screen's layout for the focused pane.
pub fn layout(area: Rect, focus: Pane) -> Areas {
    let [status, body, message, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    if is_wide(area) {
        let top_h = (body.height * 3 / 10).clamp(9, 14);
        let [top, rest] =
            Layout::vertical([Constraint::Length(top_h), Constraint::Min(6)]).areas(body);
        let [lag, flushes] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
        let [txs, query] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(rest);
        Areas {
            status,
            tabs: None,
            panes: vec![
                (Pane::Lag, lag),
                (Pane::Flushes, flushes),
                (Pane::Transactions, txs),
                (Pane::Query, query),
            ],
            body,
            message,
            footer,
        }
    } else {
        let [tabs, pane] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(body);
        Areas {
            status,
            tabs: Some(tabs),
            panes: vec![(focus, pane)],
            body,
            message,
            footer,
        }
    }
}

/// The pane at a screen position, for a mouse click.
pub fn pane_at(area: Rect, focus: Pane, x: u16, y: u16) -> Option<Pane> {
    let areas = layout(area, focus);
    if let Some(tabs) = areas.tabs.filter(|t| t.y == y) {
        // Tab labels are drawn one after another; find the one under x.
        let mut at = tabs.x;
        for p in Pane::ALL {
            let w = tab_label(p).chars().count() as u16 + 1;
            if x >= at && x < at + w {
                return Some(p);
            }
            at += w;
        }
        return None;
    }
    areas
        .panes
        .iter()
        .find(|(_, r)| r.contains(ratatui::layout::Position { x, y }))
        .map(|(p, _)| *p)
}

fn tab_label(p: Pane) -> String {
    format!(" {} {} ", p.index() + 1, p.title())
}

/// Draws the whole screen.
pub fn draw(app: &App, theme: Theme, f: &mut Frame) {
    let area = f.area();
    app.spark_span.set(0);
    let areas = layout(area, app.focus);
    status::draw(app, theme, f, areas.status);
    match app.view {
        View::Panes => {
            if let Some(tabs) = areas.tabs {
                draw_tabs(app, theme, f, tabs);
            }
            for (pane, rect) in &areas.panes {
                match pane {
                    Pane::Lag => lag::draw(app, theme, f, *rect),
                    Pane::Flushes => flushes::draw(app, theme, f, *rect),
                    Pane::Transactions => transactions::draw(app, theme, f, *rect),
                    Pane::Query => query::draw(app, theme, f, *rect),
                }
            }
        }
        View::Detail => detail::draw(app, theme, f, areas.body),
        View::DeadLetters => dead_letters::draw(app, theme, f, areas.body),
        View::Replicas => replicas::draw(app, theme, f, areas.body),
    }
    footer::draw(app, theme, f, areas.message, areas.footer);
    match &app.overlay {
        None => {}
        Some(Overlay::ReplayFrom | Overlay::ReplayConfirm) => replay::draw(app, theme, f, area),
        Some(o) => overlays::draw(app, o, theme, f, area),
    }
}

fn draw_tabs(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for p in Pane::ALL {
        let label = tab_label(p);
        spans.push(if p == app.focus {
            Span::styled(label, theme.selected())
        } else {
            Span::raw(label)
        });
        spans.push(Span::raw(theme.separator()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
