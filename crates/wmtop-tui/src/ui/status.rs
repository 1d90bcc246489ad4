//! The status bar: each stage's state and last error, the token's countdown, the
//! consumer's state, uptime.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use wmtop_core::runtime::monitor::{Stage, StageState};

use super::Theme;
use crate::state::App;

pub fn draw(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let mut stages = Vec::new();
    let mut errors = Vec::new();
    for stage in Stage::ALL {
        let (state, error) = app
            .stages
            .get(&stage)
            .cloned()
            .unwrap_or((StageState::Unknown, None));
        let (text, style) = match state {
            StageState::Unknown => ("?".to_string(), theme.dim()),
            StageState::Ok => ("ok".to_string(), theme.ok()),
            StageState::Retrying(n) => (format!("retrying {n}"), theme.warn()),
            StageState::Down => ("down".to_string(), theme.bad()),
        };
        stages.push(Span::raw(format!("{} ", stage.name())));
        stages.push(Span::styled(text, style));
        stages.push(Span::raw("  "));
        if let Some(e) = error {
            errors.push(format!("{}: {e}", stage.name()));
        }
    }
    if let Some(url) = &app.simulator {
        stages.push(Span::styled(format!("SIMULATOR {url}  "), theme.warn()));
    }
    let (uptime, token) = app.clock();
    stages.push(Span::raw(format!("token {token}  ")));
    let consumer = match (app.consumer_running, app.paused) {
        (false, _) => Span::styled("consumer stopped", theme.bad()),
        (true, true) => Span::styled("consumer PAUSED", theme.warn()),
        (true, false) => Span::styled("consumer running", theme.ok()),
    };
    stages.push(consumer);
    if app.reloading {
        stages.push(Span::styled("  reloading...", theme.warn()));
    }
    if app.merging.is_some() {
        stages.push(Span::styled("  merging...", theme.warn()));
    } else if let Some(at) = app.settled_at.filter(|_| !app.reloading) {
        stages.push(Span::styled(
            format!("  load done {}", at.strftime("%H:%M:%S")),
            theme.ok(),
        ));
    }
    for s in app.stuck.values() {
        errors.push(format!(
            "partition {} blocked at offset {} (not served by the broker; skip it: wmtop dead-letters --skip {}:{})",
            s.partition, s.offset, s.partition, s.offset
        ));
    }
    if app.insecure {
        stages.push(Span::styled(
            "  TLS VERIFICATION OFF (--insecure)",
            theme.bad(),
        ));
    }
    stages.push(Span::raw(format!("  up {uptime}")));
    let second = if errors.is_empty() {
        Line::styled(
            if app.txs.is_empty() {
                "No fetch yet: press r to fetch the series and publish them."
            } else {
                "All stages healthy."
            },
            theme.dim(),
        )
    } else {
        Line::styled(errors.join("  |  "), theme.bad())
    };
    f.render_widget(Paragraph::new(vec![Line::from(stages), second]), area);
}
