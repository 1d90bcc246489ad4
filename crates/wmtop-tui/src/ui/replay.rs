//! The replay dialog: where from (the input is always drawn, checked as it is typed,
//! and says in words what it means and what the time is matched against), then the plan
//! per partition for confirmation.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::theme::Theme;
use super::widgets::overlay;
use crate::state::{App, Overlay};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let r = &app.replay;
    let mut lines = Vec::new();
    if app.overlay == Some(Overlay::ReplayFrom) {
        lines.push(Line::from(vec![
            Span::styled("From: ", theme.header()),
            Span::raw(r.input.value().to_string()),
            Span::styled(if theme.ascii { "_" } else { "▏" }, theme.key()),
        ]));
        lines.push(match r.meaning() {
            Ok(m) => Line::styled(format!("= {m}"), theme.ok()),
            Err(e) => Line::styled(format!("! {e}"), theme.bad()),
        });
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "Empty for the beginning, a time (2026-01-05T00:00:00Z or epoch ms), or back from now (-2h).",
        ));
        lines.push(Line::from(vec![
            Span::raw("Matched against "),
            Span::styled(r.matching.label(), theme.key()),
            Span::raw("; Tab switches."),
        ]));
        lines.push(Line::raw(
            "The group moves back and the topic is read again; records already stored are not written twice.",
        ));
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled("Enter", theme.key()),
            Span::raw(" plan   "),
            Span::styled("Esc", theme.key()),
            Span::raw(" cancel"),
        ]));
    } else {
        match &r.plan {
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
    overlay(f, area, theme, "Replay", lines, 78, 0);
}
