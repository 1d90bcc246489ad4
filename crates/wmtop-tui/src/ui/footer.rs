//! The bottom two lines: the last message on a line of its own (the log has it whole;
//! after an export, where the file went), and the key hints for the mode in force,
//! whole hints only, with `? help` always at the right end.

use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::theme::Theme;
use crate::keymap::{self, Mode};
use crate::state::App;
use crate::text::{fit, width};

pub fn draw(app: &App, theme: Theme, f: &mut Frame, message: Rect, hints: Rect) {
    let w = usize::from(message.width);
    let text = match (&app.message, &app.query.exported) {
        (Some((m, _)), _) => Some(m.clone()),
        (None, Some(path)) if app.key_mode() == Mode::QueryPane => {
            Some(format!("last export: {}", path.display()))
        }
        _ => None,
    };
    if let Some(text) = text {
        f.render_widget(
            Paragraph::new(Line::styled(fit(&text, w, theme.ascii), theme.warn())),
            message,
        );
    }
    draw_hints(app.key_mode(), theme, f, hints);
}

fn draw_hints(mode: Mode, theme: Theme, f: &mut Frame, area: Rect) {
    let w = usize::from(area.width);
    let mut all = keymap::hints(mode);
    let help = match all.last() {
        Some((k, _)) if k == "?" => all.pop(),
        _ => None,
    };
    let help_w = help
        .as_ref()
        .map_or(0, |(k, what)| width(k) + 1 + width(what));
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, what) in all {
        let add = width(&key) + 1 + width(what) + 2;
        if used + add + help_w > w {
            break;
        }
        used += add;
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
    if let Some((key, what)) = help {
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(key, theme.key()),
                Span::raw(format!(" {what}")),
            ]))
            .alignment(Alignment::Right),
            area,
        );
    }
}
