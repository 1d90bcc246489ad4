//! What the terminal can show: colours and box-drawing glyphs unless the terminal is a
//! plain one (TERM=dumb, vt100, linux and friends), NO_COLOR is set, or the user said
//! otherwise; the user's flags always win.

use crate::ui::Theme;

/// Terminals that get ASCII without colour unless the user asks otherwise.
const PLAIN: &[&str] = &[
    "dumb",
    "unknown",
    "vt52",
    "vt100",
    "vt102",
    "vt220",
    "vt320",
    "vt420",
    "linux",
    "ansi",
    "cons25",
    "sun",
    "xterm-mono",
];

/// A terminal type that cannot be trusted with colours or UTF-8 box glyphs.
pub fn is_plain(term: Option<&str>) -> bool {
    match term.map(str::trim) {
        None | Some("") => true,
        Some(t) => PLAIN.contains(&t) || t.ends_with("-mono") || t.ends_with("-m"),
    }
}

/// What the user asked for on the command line; None leaves it to the terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookFlags {
    /// `--color` (Some(true)) or `--no-color` (Some(false)).
    pub color: Option<bool>,
    /// `--ascii` (Some(true)) or `--unicode` (Some(false)).
    pub ascii: Option<bool>,
}

/// The theme for a terminal type, NO_COLOR and the user's flags.
pub fn theme(term: Option<&str>, no_color_env: bool, flags: LookFlags) -> Theme {
    let plain = is_plain(term);
    Theme {
        color: flags.color.unwrap_or(!plain && !no_color_env),
        ascii: flags.ascii.unwrap_or(plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_terminals_get_ascii_without_colour_unless_asked() {
        for term in ["vt100", "dumb", "linux", "vt220", "xterm-mono"] {
            let t = theme(Some(term), false, LookFlags::default());
            assert!(!t.color && t.ascii, "{term}");
        }
        let t = theme(Some("xterm-256color"), false, LookFlags::default());
        assert!(t.color && !t.ascii);
        let t = theme(Some("tmux-256color"), true, LookFlags::default());
        assert!(!t.color && !t.ascii, "NO_COLOR");
        let asked = LookFlags {
            color: Some(true),
            ascii: Some(false),
        };
        let t = theme(Some("vt100"), false, asked);
        assert!(t.color && !t.ascii, "the user's flags win");
        assert!(is_plain(None));
    }
}
