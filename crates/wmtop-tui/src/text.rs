//! Text for cells and titles: compact figures (`11.0M`, `1.2k`, `09:27:41`), cutting
//! that always ends in `…` (numbers are never cut: a cell too narrow for a number shows
//! `…` alone), word wrapping, and the one-line summary of a batch's offsets.

use std::time::Duration;

use unicode_width::UnicodeWidthStr;

/// Counts: 1234567 -> "1.2M"; below 10,000 as they are.
pub fn si(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// Bytes in at most six characters: `512B`, `14.4K`, `11.0M`, `1.2G` (powers of 1024).
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    match n {
        0..=1023 => format!("{n}B"),
        1024..=1_048_575 => format!("{:.1}K", f / K),
        1_048_576..=1_073_741_823 => format!("{:.1}M", f / (K * K)),
        _ => format!("{:.1}G", f / (K * K * K)),
    }
}

/// A duration in a few characters: `64ms`, `1.5s`, `2m05s`, `1h02m`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A time of day as the screen shows it (UTC): `09:27:41`.
pub fn clock(t: jiff::Timestamp) -> String {
    t.strftime("%H:%M:%S").to_string()
}

/// Display width of a text.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to `w` columns, ending in `…` when cut (`...` in ASCII mode).
pub fn fit(s: &str, w: usize, ascii: bool) -> String {
    if width(s) <= w {
        return s.to_string();
    }
    let mark = if ascii { "..." } else { "…" };
    let mark_w = width(mark);
    if w <= mark_w {
        return mark.chars().take(w).collect();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw + mark_w > w {
            break;
        }
        used += cw;
        out.push(c);
    }
    out.push_str(mark);
    out
}

/// `s` cut to `w` columns so that the first match of `needle` (case-insensitive)
/// stays in view: cut at the end as [`fit`] does when the match is near the start,
/// otherwise cut at the front too (`…/v2/orders…`).
pub fn fit_around(s: &str, needle: &str, w: usize, ascii: bool) -> String {
    if needle.is_empty() || width(s) <= w {
        return fit(s, w, ascii);
    }
    let lower = s.to_lowercase();
    let Some(at) = lower.find(&needle.to_lowercase()) else {
        return fit(s, w, ascii);
    };
    let chars_before = lower[..at].chars().count();
    let match_end = chars_before + needle.chars().count();
    let mark = if ascii { "..." } else { "…" };
    let mark_w = width(mark);
    if match_end + mark_w <= w {
        return fit(s, w, ascii);
    }
    // Cut at the front: show the end whole when the match is then in view, else cut
    // both ends around the match.
    let chars: Vec<char> = s.chars().collect();
    let room = w.saturating_sub(mark_w);
    let from_end = chars.len().saturating_sub(room);
    if from_end <= chars_before {
        let rest: String = chars[from_end..].iter().collect();
        return format!("{mark}{rest}");
    }
    let start = (match_end + mark_w).saturating_sub(room).min(chars_before);
    let rest: String = chars[start..].iter().collect();
    format!("{mark}{}", fit(&rest, room, ascii))
}

/// A number in `w` columns: whole, or the cut mark alone (never its first digits).
pub fn fit_number(s: &str, w: usize, ascii: bool) -> String {
    if width(s) <= w {
        s.to_string()
    } else if ascii {
        ".".repeat(w.min(3))
    } else if w == 0 {
        String::new()
    } else {
        "…".to_string()
    }
}

/// Words wrapped to `w` columns (long words are broken).
pub fn wrap(s: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    s.lines()
        .flat_map(|line| {
            if line.is_empty() {
                vec![String::new()]
            } else {
                textwrap::wrap(line, w)
                    .into_iter()
                    .map(|c| c.into_owned())
                    .collect()
            }
        })
        .collect()
}

/// JSON indented by two spaces with its keys in the order they were sent (a parsed
/// value would sort them); text that is not JSON is returned as it is.
pub fn pretty_json(raw: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(raw).is_err() {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                out.push(c);
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// A batch's offsets in `w` columns: every range when they fit (`0:38-40 2:10-12`),
/// otherwise the partition count and the first range (`3 parts 0:38-40…`).
pub fn offsets(ranges: &[(i32, i64, i64)], w: usize, ascii: bool) -> String {
    let all = offsets_full(ranges);
    if width(&all) <= w || ranges.len() < 2 {
        return fit(&all, w, ascii);
    }
    let (p, a, b) = ranges[0];
    let summary = format!("{} parts {p}:{a}-{b}", ranges.len());
    let mark = if ascii { "..." } else { "…" };
    if width(&summary) + width(mark) <= w {
        format!("{summary}{mark}")
    } else {
        fit(&format!("{} parts", ranges.len()), w, ascii)
    }
}

/// Every range of a batch: `0:38-40 2:10-12`.
pub fn offsets_full(ranges: &[(i32, i64, i64)]) -> String {
    ranges
        .iter()
        .map(|(p, a, b)| format!("{p}:{a}-{b}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// As many of `parts` as fit in `w` columns, joined with `sep`; the first is always
/// kept (cut with `…` if it must be).
pub fn join_fitting(parts: &[String], sep: &str, w: usize, ascii: bool) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        let add = if i == 0 {
            p.clone()
        } else {
            format!("{sep}{p}")
        };
        if width(&out) + width(&add) > w {
            if i == 0 {
                return fit(p, w, ascii);
            }
            break;
        }
        out.push_str(&add);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms() {
        assert_eq!(bytes(11 * 1024 * 1024 + 1), "11.0M");
        assert_eq!(bytes(14_745), "14.4K");
        assert_eq!(bytes(900), "900B");
        assert_eq!(si(138), "138");
        assert_eq!(si(26_642), "26.6k");
        assert_eq!(short_duration(Duration::from_millis(64)), "64ms");
        assert_eq!(short_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(
            clock(jiff::Timestamp::from_second(1_767_259_661).unwrap()),
            "09:27:41"
        );
    }

    #[test]
    fn cuts_end_in_an_ellipsis_and_numbers_are_never_cut() {
        assert_eq!(fit("GET /api/v2/orders", 10, false), "GET /api/…");
        assert_eq!(width(&fit("GET /api/v2/orders", 10, false)), 10);
        assert_eq!(fit("GET /api/v2/orders", 10, true), "GET /ap...");
        assert_eq!(fit("short", 10, false), "short");
        assert_eq!(fit_number("138", 3, false), "138");
        assert_eq!(fit_number("138", 2, false), "…");
        assert!(!fit_number("12345", 2, true).contains('1'));
    }

    #[test]
    fn a_filter_match_stays_in_view() {
        let name = "GET /api/v2/service-001/orders/history";
        let shown = fit_around(name, "HISTORY", 20, false);
        assert!(shown.contains("history"), "{shown}");
        assert!(shown.starts_with('…'), "{shown}");
        assert_eq!(width(&shown), 20);
        assert_eq!(fit_around(name, "get", 20, false), fit(name, 20, false));
    }

    #[test]
    fn json_is_indented_in_the_order_sent() {
        let raw = r#"{"z":1,"a":{"b":[1, 2],"e":{}},"s":"x,\"{y}\":"}"#;
        assert_eq!(
            pretty_json(raw),
            "{\n  \"z\": 1,\n  \"a\": {\n    \"b\": [\n      1,\n      2\n    ],\n    \"e\": {}\n  },\n  \"s\": \"x,\\\"{y}\\\":\"\n}"
        );
        assert_eq!(pretty_json("not json"), "not json");
    }

    #[test]
    fn offsets_are_summarised_when_they_do_not_fit() {
        let r = [(0, 38, 40), (1, 7, 9), (2, 100, 140)];
        assert_eq!(offsets(&r, 40, false), "0:38-40 1:7-9 2:100-140");
        assert_eq!(offsets(&r, 18, false), "3 parts 0:38-40…");
        assert_eq!(offsets(&r, 9, false), "3 parts");
        assert_eq!(offsets(&r[..1], 5, false), "0:38…");
    }

    #[test]
    fn wraps_words_and_joins_what_fits() {
        assert_eq!(
            wrap("Code 47: Unknown identifier: nope", 16),
            vec!["Code 47: Unknown", "identifier: nope"]
        );
        let parts = [
            "Batch flushes".to_string(),
            "2 batches".into(),
            "295 rows".into(),
        ];
        assert_eq!(
            join_fitting(&parts, " - ", 30, false),
            "Batch flushes - 2 batches"
        );
        assert_eq!(join_fitting(&parts, " - ", 8, false), "Batch f…");
    }
}
