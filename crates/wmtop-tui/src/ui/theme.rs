//! How things look: colours (none under NO_COLOR, `--no-color` or a plain terminal),
//! ASCII or box-drawing glyphs, and the pane frame. Only the 16 basic colours are used,
//! so every colour terminal shows them the same.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::Span;
use ratatui::widgets::{Block, BorderType, Borders};

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
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
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

    /// The mark that ends a cut text.
    pub fn ellipsis(self) -> &'static str {
        if self.ascii {
            "..."
        } else {
            "…"
        }
    }

    /// Sort direction markers: ascending, descending.
    pub fn sort_marks(self) -> (&'static str, &'static str) {
        if self.ascii {
            ("^", "v")
        } else {
            ("▲", "▼")
        }
    }

    pub fn separator(self) -> &'static str {
        if self.ascii {
            "|"
        } else {
            "│"
        }
    }

    /// A pane's frame; the focused one stands out. The title is cut to the frame.
    pub fn block(self, title: String, focused: bool, width: u16) -> Block<'static> {
        let room = usize::from(width.saturating_sub(4));
        let title = crate::text::fit(&title, room, self.ascii);
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
