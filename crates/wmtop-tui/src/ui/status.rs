//! The status bar. Line one: each stage's state, the profile in force, where the series
//! come from, the token, the consumer, a reload running or the countdown to the next
//! scheduled one, the load's progress and uptime, in long forms when they fit and
//! short forms when not, dropping the least needed items last. Line two: the first
//! stage error (the `e` overlay has every one in full), blocked partitions, or all well
//! with the window last fetched (UTC).

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use wmtop_core::config::Window;
use wmtop_core::runtime::monitor::StageState;

use super::theme::Theme;
use crate::state::App;
use crate::text::{clock, fit, width};

/// One item of the first line.
struct Item {
    long: String,
    short: String,
    style: Style,
    /// Dropped first when even the short forms do not fit (higher goes first).
    drop_order: u8,
}

fn item(long: impl Into<String>, short: impl Into<String>, style: Style, drop_order: u8) -> Item {
    Item {
        long: long.into(),
        short: short.into(),
        style,
        drop_order,
    }
}

fn items(app: &App, theme: Theme) -> Vec<Item> {
    let mut out = Vec::new();
    for (stage, view) in &app.status.stages {
        let (state, style) = match view.state {
            StageState::Unknown => ("?".to_string(), theme.dim()),
            StageState::Ok => ("ok".to_string(), theme.ok()),
            StageState::Retrying(n) => (format!("retrying {n}"), theme.warn()),
            StageState::Down => ("down".to_string(), theme.bad()),
        };
        let short_name = match stage.name() {
            "Keycloak" => "KC",
            "ClickHouse" => "CH",
            other => other,
        };
        let short_state = match view.state {
            StageState::Retrying(n) => format!("retry {n}"),
            _ => state.clone(),
        };
        out.push(item(
            format!("{} {state}", stage.name()),
            format!("{short_name} {short_state}"),
            style,
            0,
        ));
    }
    if let Some(name) = &app.status.profile {
        out.push(item(format!("profile {name}"), name.clone(), theme.ok(), 0));
    }
    if let Some(url) = &app.status.simulator {
        out.push(item(
            format!("SIMULATOR {url}"),
            "SIMULATOR",
            theme.warn(),
            0,
        ));
    }
    if app.status.insecure {
        out.push(item(
            "TLS VERIFICATION OFF (--insecure)",
            "TLS UNVERIFIED",
            theme.bad(),
            0,
        ));
    }
    if let Some(s) = app.replicas.summary() {
        let all_well = s.up == s.total && s.troubled == 0;
        let mut long = format!("replicas {}/{}", s.up, s.total);
        if s.troubled > 0 {
            long.push_str(&format!(", {} stale or read-only", s.troubled));
        }
        let short = format!(
            "rep {}/{}{}",
            s.up,
            s.total,
            if s.troubled > 0 { "!" } else { "" }
        );
        let style = if all_well { theme.ok() } else { theme.warn() };
        out.push(item(long, short, style, if all_well { 2 } else { 0 }));
    }
    let (uptime, token) = app.clock();
    out.push(item(
        format!("token {token}"),
        format!("tok {token}"),
        Style::default(),
        3,
    ));
    let consumer = match (app.status.consumer_running, app.status.paused) {
        (false, _) => item("consumer stopped", "cons stopped", theme.bad(), 0),
        (true, true) => item("consumer PAUSED", "cons PAUSED", theme.warn(), 0),
        (true, false) => item("consumer running", "cons run", theme.ok(), 1),
    };
    out.push(consumer);
    if app.status.reloading {
        out.push(item("reloading...", "reloading", theme.warn(), 0));
    } else if let Some(left) = app.next_reload_in() {
        out.push(item(
            format!("next reload in {left}"),
            format!("reload {left}"),
            Style::default(),
            1,
        ));
    }
    if app.replay.running {
        out.push(item("replaying...", "replaying", theme.warn(), 0));
    }
    if app.status.merging.is_some() {
        out.push(item("merging...", "merging", theme.warn(), 0));
    } else if let Some(at) = app.status.settled_at.filter(|_| !app.status.reloading) {
        let done = format!("load done {}", clock(at));
        out.push(item(done.clone(), done, theme.ok(), 0));
    }
    out.push(item(
        format!("up {uptime}"),
        format!("up {uptime}"),
        Style::default(),
        2,
    ));
    out
}

/// The first line's items that fit `w`: long forms, else short forms, else without the
/// items dropped first.
fn first_line(mut items: Vec<Item>, w: usize) -> Line<'static> {
    const GAP: usize = 2;
    let total = |items: &[Item], long: bool| -> usize {
        items
            .iter()
            .map(|i| width(if long { &i.long } else { &i.short }) + GAP)
            .sum::<usize>()
            .saturating_sub(GAP)
    };
    let long = total(&items, true) <= w;
    while !long && total(&items, false) > w {
        let Some(worst) = items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.drop_order > 0)
            .max_by_key(|(n, i)| (i.drop_order, *n))
            .map(|(n, _)| n)
        else {
            break;
        };
        items.remove(worst);
    }
    let mut spans = Vec::new();
    for (n, i) in items.into_iter().enumerate() {
        if n > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(if long { i.long } else { i.short }, i.style));
    }
    Line::from(spans)
}

/// A window in UTC, to the minute: `2026-01-01 00:00 .. 2026-01-12 18:29 UTC`.
fn shown(w: Window) -> String {
    let at = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms).map_or_else(
            |_| ms.to_string(),
            |t| t.strftime("%Y-%m-%d %H:%M").to_string(),
        )
    };
    format!("{} .. {} UTC", at(w.start_ms), at(w.end_ms))
}

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let w = usize::from(area.width);
    let first = first_line(items(app, theme), w);
    let errors = app.status.errors();
    let mut problems: Vec<String> = errors
        .iter()
        .map(|(stage, e)| format!("{}: {}", stage.name(), e.text.replace('\n', " ")))
        .collect();
    for s in app.status.stuck.values() {
        problems.push(format!(
            "partition {} blocked at offset {} (not served by the broker; d to skip it)",
            s.partition, s.offset
        ));
    }
    let second = match problems.len() {
        0 => Line::styled(
            fit(
                &match (app.txs.rows.is_empty(), app.status.window) {
                    (true, _) => {
                        "No fetch yet: press r to fetch the series and publish them.".to_string()
                    }
                    (false, None) => "All stages healthy.".to_string(),
                    (false, Some(window)) => {
                        format!("All stages healthy. Window fetched: {}.", shown(window))
                    }
                },
                w,
                theme.ascii,
            ),
            theme.dim(),
        ),
        n => {
            let more = if n > 1 {
                format!("  (+{} more; e: all in full)", n - 1)
            } else if errors.is_empty() {
                String::new()
            } else {
                "  (e: in full)".to_string()
            };
            let room = w.saturating_sub(width(&more));
            Line::from(vec![
                Span::styled(fit(&problems[0], room, theme.ascii), theme.bad()),
                Span::styled(more, theme.dim()),
            ])
        }
    };
    f.render_widget(Paragraph::new(vec![first, second]), area);
}
