//! Drawing helpers every pane uses: a table whose column widths come from what is in
//! it (names take the room that is left, numbers are never cut, cut text ends in `…`,
//! columns that cannot fit are left out and counted), sparklines, scrolling windows and
//! centred overlays.

use std::collections::VecDeque;

use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Sparkline, Table, Wrap};
use ratatui::Frame;

use super::theme::Theme;
use crate::text::{fit, fit_around, fit_number, si, width};

/// What a column holds, which decides how it gives way when room is short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Right-aligned; never cut (a cell too narrow shows `…` alone).
    Number,
    /// Takes the room left over; cut with `…` down to `min` columns.
    Text { min: u16 },
    /// Short labels, shown whole when they fit.
    Label,
}

/// One column: its header and kind.
#[derive(Clone, Debug)]
pub struct Col {
    pub header: String,
    pub kind: Kind,
    /// Text cut in this column keeps the first match of this in view.
    pub keep: Option<String>,
}

impl Col {
    pub fn number(header: impl Into<String>) -> Col {
        Col {
            header: header.into(),
            kind: Kind::Number,
            keep: None,
        }
    }

    pub fn text(header: impl Into<String>, min: u16) -> Col {
        Col {
            header: header.into(),
            kind: Kind::Text { min },
            keep: None,
        }
    }

    pub fn label(header: impl Into<String>) -> Col {
        Col {
            header: header.into(),
            kind: Kind::Label,
            keep: None,
        }
    }
}

/// Column widths for `total` columns of room: `(column index, width)` for the columns
/// shown, and how many were left out.
pub fn fit_columns(total: u16, cols: &[Col], rows: &[Vec<String>]) -> (Vec<(usize, u16)>, usize) {
    let total = usize::from(total);
    let natural: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| width(s))
                .chain([width(&c.header)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let floor: Vec<usize> = cols
        .iter()
        .zip(&natural)
        .map(|(c, n)| match c.kind {
            Kind::Text { min } => (*n).min(usize::from(min).max(width(&c.header))),
            _ => *n,
        })
        .collect();
    let mut shown: Vec<usize> = (0..cols.len()).collect();
    let need = |shown: &[usize], w: &[usize]| -> usize {
        shown.iter().map(|i| w[*i]).sum::<usize>() + shown.len().saturating_sub(1)
    };
    // Leave out columns from the right until the floors fit (the first always stays).
    while shown.len() > 1 && need(&shown, &floor) > total {
        shown.pop();
    }
    let hidden = cols.len() - shown.len();
    let mut widths: Vec<usize> = natural.clone();
    let mut over = need(&shown, &widths).saturating_sub(total);
    // Text columns give way, widest first, down to their floor.
    while over > 0 {
        let Some(i) = shown
            .iter()
            .copied()
            .filter(|i| matches!(cols[*i].kind, Kind::Text { .. }) && widths[*i] > floor[*i])
            .max_by_key(|i| widths[*i] - floor[*i])
        else {
            break;
        };
        widths[i] -= 1;
        over -= 1;
    }
    // Room left over goes to the first text column.
    let spare = total.saturating_sub(need(&shown, &widths));
    if let Some(i) = shown
        .iter()
        .copied()
        .find(|i| matches!(cols[*i].kind, Kind::Text { .. }))
    {
        widths[i] += spare;
    }
    // What still does not fit (a single column wider than the room) is cut.
    let mut left = total;
    let out = shown
        .iter()
        .map(|i| {
            let w = widths[*i].min(left);
            left = left.saturating_sub(w + 1);
            (*i, u16::try_from(w).unwrap_or(u16::MAX))
        })
        .collect();
    (out, hidden)
}

/// Draws a table of `rows` (already the visible window) with fitted columns; the row at
/// `selected` is highlighted. Returns how many columns were left out.
pub fn table(
    f: &mut Frame,
    area: Rect,
    theme: Theme,
    cols: &[Col],
    rows: &[(Vec<String>, Style)],
    selected: Option<usize>,
) -> usize {
    let texts: Vec<Vec<String>> = rows.iter().map(|(r, _)| r.clone()).collect();
    let (fitted, hidden) = fit_columns(area.width, cols, &texts);
    let cell = |i: usize, w: u16, s: &str| -> Cell<'static> {
        let w = usize::from(w);
        match cols[i].kind {
            Kind::Number => {
                Cell::from(Line::from(fit_number(s, w, theme.ascii)).alignment(Alignment::Right))
            }
            _ => match &cols[i].keep {
                Some(needle) => Cell::from(fit_around(s, needle, w, theme.ascii)),
                None => Cell::from(fit(s, w, theme.ascii)),
            },
        }
    };
    let header =
        Row::new(fitted.iter().map(|(i, w)| cell(*i, *w, &cols[*i].header))).style(theme.header());
    let body = rows.iter().enumerate().map(|(n, (r, style))| {
        let row = Row::new(
            fitted
                .iter()
                .map(|(i, w)| cell(*i, *w, r.get(*i).map_or("", String::as_str))),
        )
        .style(*style);
        if Some(n) == selected {
            row.style(style.patch(theme.selected()))
        } else {
            row
        }
    });
    let widths: Vec<Constraint> = fitted.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    f.render_widget(
        Table::new(body, widths).header(header).column_spacing(1),
        area,
    );
    hidden
}

/// Says on a pane's bottom border how many columns did not fit.
pub fn note_hidden(f: &mut Frame, pane: Rect, theme: Theme, hidden: usize) {
    if hidden == 0 || pane.height < 2 {
        return;
    }
    let text = format!(
        " {hidden} column{} hidden: widen the terminal ",
        if hidden == 1 { "" } else { "s" }
    );
    let w = u16::try_from(width(&text))
        .unwrap_or(u16::MAX)
        .min(pane.width.saturating_sub(2));
    let rect = Rect {
        x: pane.right().saturating_sub(w + 1),
        y: pane.bottom() - 1,
        width: w,
        height: 1,
    };
    f.render_widget(
        Paragraph::new(Line::styled(
            fit(&text, usize::from(w), theme.ascii),
            theme.warn(),
        )),
        rect,
    );
}

/// A per-second sparkline of the newest samples that fit, titled with its peak.
pub fn sparkline(
    f: &mut Frame,
    area: Rect,
    theme: Theme,
    label: &str,
    samples: &VecDeque<u64>,
    style: Style,
) {
    let skip = samples.len().saturating_sub(area.width as usize);
    let tail: Vec<u64> = samples.iter().skip(skip).copied().collect();
    let peak = tail.iter().copied().max().unwrap_or(0);
    let title = fit(
        &format!("{label}, last {}s (peak {})", tail.len(), si(peak)),
        usize::from(area.width),
        theme.ascii,
    );
    f.render_widget(
        Sparkline::default()
            .block(Block::default().title(title))
            .data(&tail)
            .bar_set(theme.bars())
            .style(style),
        area,
    );
}

/// The slice `[start, end)` of `len` rows that fits `rows` lines and keeps `selected` on
/// screen.
pub fn window(len: usize, selected: usize, rows: usize) -> (usize, usize) {
    if rows == 0 || len == 0 {
        return (0, 0);
    }
    let start = selected
        .saturating_sub(rows - 1)
        .min(len.saturating_sub(rows));
    (start, (start + rows).min(len))
}

/// A centred rectangle of at most `w` x `h`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// An overlay box of `lines` (wrapped to its width), centred, at most `w` wide; the
/// box grows to hold every line up to the screen's height, then scrolls by `scroll`.
pub fn overlay(
    f: &mut Frame,
    area: Rect,
    theme: Theme,
    title: &str,
    lines: Vec<Line<'static>>,
    w: u16,
    scroll: usize,
) {
    let inner_w = w.min(area.width).saturating_sub(2);
    let wrapped: usize = lines
        .iter()
        .map(|l| {
            let lw = l.width();
            if lw == 0 {
                1
            } else {
                lw.div_ceil(usize::from(inner_w.max(1)))
            }
        })
        .sum();
    let h = u16::try_from(wrapped + 2).unwrap_or(u16::MAX);
    let rect = centered(area, w, h);
    let visible = usize::from(rect.height.saturating_sub(2));
    let scroll = scroll.min(wrapped.saturating_sub(visible));
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
            .block(theme.block(title.to_string(), true, rect.width)),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_the_room_numbers_keep_theirs() {
        let cols = [
            Col::text("Transaction", 12),
            Col::number("API"),
            Col::label("Status"),
        ];
        let rows = vec![vec![
            "GET /api/v2/service-001/orders".to_string(),
            "288".into(),
            "ok, 1 set aside".into(),
        ]];
        // Room for all: the name column takes what is left.
        let (w, hidden) = fit_columns(60, &cols, &rows);
        assert_eq!(hidden, 0);
        assert_eq!(w[1], (1, 3));
        assert_eq!(w[2], (2, 15));
        assert_eq!(w[0].1, 60 - 3 - 15 - 2);
        // Short of room: the name gives way, down to its floor.
        let (w, hidden) = fit_columns(34, &cols, &rows);
        assert_eq!(hidden, 0);
        assert_eq!(w, vec![(0, 14), (1, 3), (2, 15)]);
        // Shorter still: the last column is left out, never a number cut.
        let (w, hidden) = fit_columns(20, &cols, &rows);
        assert_eq!(hidden, 1);
        assert_eq!(w, vec![(0, 16), (1, 3)]);
    }

    #[test]
    fn windows_keep_the_selection_visible() {
        assert_eq!(window(100, 0, 10), (0, 10));
        assert_eq!(window(100, 15, 10), (6, 16));
        assert_eq!(window(5, 4, 10), (0, 5));
    }
}
