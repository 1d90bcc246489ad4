//! Drawing: a pure function of the state (`draw(&App, &mut Frame)`): no locks, no
//! waiting. Wide terminals get all panes at once; small ones (down to 80x24) get one
//! pane at a time behind a tab bar. Colour follows NO_COLOR/`--no-color`; `--ascii`
//! draws with plain ASCII.

mod flushes;
mod lag;
mod query;
mod status;
mod transactions;

#[cfg(test)]
mod tests;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::keymap::{self, Mode, BINDINGS};
use super::state::{App, Pane};

/// How things look.
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub color: bool,
    pub ascii: bool,
}

const ASCII_BORDER: symbols::border::Set = symbols::border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

const ASCII_BARS: symbols::bar::Set = symbols::bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: ".",
    one_eighth: ".",
    empty: " ",
};

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn bad(self) -> Style {
        if self.color {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub fn key(self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    pub fn header(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn bars(self) -> symbols::bar::Set<'static> {
        if self.ascii {
            ASCII_BARS
        } else {
            symbols::bar::NINE_LEVELS
        }
    }

    /// A pane's frame; the focused one stands out.
    pub fn block(self, title: String, focused: bool) -> Block<'static> {
        let mut b = Block::default().borders(Borders::ALL).title(Span::styled(
            format!(" {title} "),
            if focused {
                self.key()
            } else {
                Style::default()
            },
        ));
        b = if self.ascii {
            b.border_set(ASCII_BORDER)
        } else if focused {
            b.border_type(BorderType::Thick)
        } else {
            b.border_type(BorderType::Plain)
        };
        if focused && self.color {
            b = b.border_style(Style::default().fg(Color::Cyan));
        }
        b
    }
}

/// Wide enough for every pane at once.
pub fn is_wide(area: Rect) -> bool {
    area.width >= 120 && area.height >= 36
}

/// Draws the whole screen.
pub fn draw(app: &App, theme: Theme, f: &mut Frame) {
    let area = f.area();
    let [status_area, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);
    status::draw(app, theme, f, status_area);
    if is_wide(area) {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)])
                .areas(body);
        let [lag_area, flush_area] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(left);
        let [tx_area, query_area] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(right);
        lag::draw(app, theme, f, lag_area);
        flushes::draw(app, theme, f, flush_area);
        transactions::draw(app, theme, f, tx_area);
        query::draw(app, theme, f, query_area);
    } else {
        let [tabs, pane] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(body);
        let mut spans = Vec::new();
        for (i, p) in Pane::ALL.iter().enumerate() {
            let label = format!(" {} {} ", i + 1, p.title());
            spans.push(if *p == app.focus {
                Span::styled(label, theme.selected())
            } else {
                Span::raw(label)
            });
            spans.push(Span::raw(if theme.ascii { "|" } else { "│" }));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), tabs);
        match app.focus {
            Pane::Lag => lag::draw(app, theme, f, pane),
            Pane::Flushes => flushes::draw(app, theme, f, pane),
            Pane::Transactions => transactions::draw(app, theme, f, pane),
            Pane::Query => query::draw(app, theme, f, pane),
        }
    }
    draw_footer(app, theme, f, footer);
    match app.mode {
        Mode::Help => draw_help(app, theme, f, area),
        Mode::ReplayFrom | Mode::Confirm => draw_replay(app, theme, f, area),
        _ => {}
    }
}

fn draw_footer(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    if let Some((msg, _)) = &app.message {
        spans.push(Span::styled(format!("{msg}  "), theme.warn()));
    }
    for (key, what) in keymap::hints(app.key_mode()) {
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
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

/// The `?` overlay: every binding, from the keymap itself, and where the log is.
fn draw_help(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let mut lines = vec![
        Line::from(vec![
            Span::raw("Log file: "),
            Span::styled(app.log_path.display().to_string(), theme.key()),
        ]),
        Line::raw(""),
    ];
    let modes = [
        Mode::Normal,
        Mode::QueryPane,
        Mode::Edit,
        Mode::Filter,
        Mode::ReplayFrom,
        Mode::Confirm,
        Mode::Help,
    ];
    for m in modes {
        lines.push(Line::styled(m.title(), theme.header()));
        for b in BINDINGS.iter().filter(|b| b.mode == m) {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<22}", b.keys_label()), theme.key()),
                Span::raw(b.help),
            ]));
        }
        lines.push(Line::raw(""));
    }
    let rect = centered(area, 90, area.height.saturating_sub(2));
    let visible = rect.height.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(visible);
    let scroll = app.help_scroll.min(max_scroll);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(
            lines
                .into_iter()
                .skip(scroll)
                .take(visible)
                .collect::<Vec<_>>(),
        )
        .block(theme.block("Help (Esc closes)".into(), true)),
        rect,
    );
}

fn draw_replay(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    if app.mode == Mode::ReplayFrom {
        lines.push(Line::raw(
            "Re-read the topic into ClickHouse. Rows already loaded are replaced, not doubled.",
        ));
        lines.push(Line::raw(
            "From: empty for the beginning, or a time (epoch ms or 2026-01-05T00:00:00Z)",
        ));
        lines.push(Line::from(vec![
            Span::styled("> ", theme.key()),
            Span::raw(app.replay_input.value().to_string()),
            Span::styled(if theme.ascii { "_" } else { "▏" }, theme.key()),
        ]));
    } else {
        match &app.replay_plan {
            None => lines.push(Line::raw("Working out what will be re-read...")),
            Some(Err(e)) => {
                lines.push(Line::styled(
                    format!("Cannot plan the replay: {e}"),
                    theme.bad(),
                ));
                lines.push(Line::raw("Esc to close."));
            }
            Some(Ok(plan)) => {
                let total: i64 = plan.iter().map(|p| p.messages()).sum();
                lines.push(Line::raw(format!(
                    "The consumer stops, the group moves back, then {total} messages are read again:"
                )));
                lines.push(Line::styled(
                    format!(
                        "{:>9} {:>12} {:>12} {:>12} {:>9}",
                        "partition", "committed", "restart at", "high", "messages"
                    ),
                    theme.header(),
                ));
                for p in plan {
                    lines.push(Line::raw(format!(
                        "{:>9} {:>12} {:>12} {:>12} {:>9}",
                        p.partition,
                        p.committed.map_or("none".to_string(), |c| c.to_string()),
                        p.target,
                        p.high,
                        p.messages()
                    )));
                }
                lines.push(Line::raw(""));
                lines.push(Line::from(vec![
                    Span::styled("y", theme.key()),
                    Span::raw(" replay   "),
                    Span::styled("n/Esc", theme.key()),
                    Span::raw(" cancel"),
                ]));
            }
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let rect = centered(area, 78, h);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(theme.block("Replay".into(), true)),
        rect,
    );
}

/// A per-second sparkline of the newest samples that fit, titled with its peak.
pub fn sparkline(
    f: &mut Frame,
    area: Rect,
    theme: Theme,
    label: &str,
    samples: &std::collections::VecDeque<u64>,
    style: Style,
) {
    let skip = samples.len().saturating_sub(area.width as usize);
    let tail: Vec<u64> = samples.iter().skip(skip).copied().collect();
    let peak = tail.iter().copied().max().unwrap_or(0);
    f.render_widget(
        ratatui::widgets::Sparkline::default()
            .block(Block::default().title(format!(
                "{label}, last {}s (peak {})",
                tail.len(),
                si(peak)
            )))
            .data(&tail)
            .bar_set(theme.bars())
            .style(style),
        area,
    );
}

/// Human figures: 1234567 -> "1.2M".
pub fn si(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// Bytes as KiB/MiB.
pub fn bytes(n: u64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// A duration in a few characters.
pub fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if s < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// The first `rows` items after `offset`, keeping the selected row on screen.
pub fn window(len: usize, selected: usize, rows: usize) -> (usize, usize) {
    if rows == 0 || len == 0 {
        return (0, 0);
    }
    let start = selected
        .saturating_sub(rows - 1)
        .min(len.saturating_sub(rows));
    (start, (start + rows).min(len))
}
