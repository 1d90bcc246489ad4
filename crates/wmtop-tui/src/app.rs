//! The monitor's loop: starts the pipeline and /metrics, then selects over key presses,
//! pipeline events, SIGHUP/SIGTERM/SIGINT and a one-second tick; updates the state,
//! carries out its effects, and redraws only when something changed, at most `fps`
//! times a second. Every way out (q, Ctrl-C, a signal, the terminal going away)
//! flushes the batch in hand and commits before the process ends, says so in the log,
//! and restores the terminal, panics included.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::layout::Rect;
use tokio::signal::unix::{signal, SignalKind};
use wmtop_core::config::Settings;
use wmtop_core::runtime::monitor::{self, Monitor, MonitorOptions};

use crate::effects::{self, Effect};
use crate::input;
use crate::state::{App, AppConfig, EffectOutcome};
use crate::ui::{self, Theme};

/// How the screen is run.
#[derive(Clone, Debug)]
pub struct TuiOptions {
    pub fps: u32,
    pub theme: Theme,
    pub allow_writes: bool,
    /// Mouse scrolling and click-to-focus.
    pub mouse: bool,
    /// The simulator's URL when the series come from it (the caller started it and
    /// pointed the settings at it).
    pub simulator: Option<String>,
}

/// How the monitor ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The user quit.
    Quit,
    /// A signal (its number) asked it to stop.
    Signal(i32),
    /// The terminal went away.
    TerminalLost,
}

/// Where the TUI keeps its files.
struct Paths {
    history: PathBuf,
    exports: PathBuf,
}

/// Runs the TUI until the user quits or a signal arrives.
pub async fn run(settings: &Settings, opts: TuiOptions) -> anyhow::Result<Ended> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the monitor needs a terminal; for scripts use the headless commands (wmtop --help)"
        );
    }
    let paths = Paths {
        history: settings.data_dir.join("query_history"),
        exports: settings.data_dir.join("exports"),
    };
    let mut app = App::new(app_config(settings, &opts, &paths));
    let theme = opts.theme;
    let ops = wmtop_core::runtime::ops::Ops::new(&settings.topic);
    let (ops_stop, ops_rx) = tokio::sync::watch::channel(false);
    wmtop_core::runtime::ops::start(&settings.ops_addr, std::sync::Arc::clone(&ops), ops_rx).await;
    let (monitor, mut events) = monitor::start(
        settings.clone(),
        MonitorOptions {
            allow_writes: opts.allow_writes,
            ops: Some(ops),
            simulator: opts.simulator.clone(),
            panes: true,
        },
    );
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminal = ratatui::init();
    if opts.mouse {
        let _ = execute!(std::io::stdout(), EnableMouseCapture);
    }
    let mut input = input::spawn();
    let frame_gap = Duration::from_secs_f64(1.0 / f64::from(opts.fps.clamp(1, 60)));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_draw = Instant::now() - frame_gap;
    let mut draws: u64 = 0;
    let outcome: anyhow::Result<Ended> = async {
        loop {
            if app.dirty && last_draw.elapsed() >= frame_gap {
                terminal.draw(|f| ui::draw(&app, theme, f)).context("drawing")?;
                app.dirty = false;
                last_draw = Instant::now();
                draws += 1;
            }
            let next_frame = tokio::time::Instant::from_std(last_draw + frame_gap);
            tokio::select! {
                ev = input.recv() => {
                    let Some(ev) = ev else { return Ok(Ended::TerminalLost) };
                    let size = terminal.size().map(|s| Rect::new(0, 0, s.width, s.height)).unwrap_or_default();
                    let effects = input::on_event(&mut app, ev, size);
                    carry_out(effects, &mut app, &monitor, &paths);
                }
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    app.on_event(ev);
                    // Take what else is queued before drawing: one frame per burst.
                    for _ in 0..512 {
                        match events.try_recv() {
                            Ok(ev) => app.on_event(ev),
                            Err(_) => break,
                        }
                    }
                }
                _ = hangup.recv() => return Ok(Ended::Signal(1)),
                _ = terminate.recv() => return Ok(Ended::Signal(15)),
                _ = interrupt.recv() => return Ok(Ended::Signal(2)),
                _ = tick.tick() => app.tick(),
                _ = tokio::time::sleep_until(next_frame), if app.dirty => {}
            }
            if app.quit {
                break;
            }
        }
        Ok(Ended::Quit)
    }
    .await;
    let why = why_stopped(&outcome);
    tracing::info!("stopping on {why}: flushing the last batch and committing offsets");
    // Say so on screen when there is one; a hung-up terminal just fails to draw.
    app.message = Some((
        "stopping: flushing the last batch and committing offsets...".into(),
        Instant::now(),
    ));
    if outcome.as_ref().is_ok_and(|e| *e == Ended::Quit) {
        let _ = terminal.draw(|f| ui::draw(&app, theme, f));
    }
    let dropped = monitor.dropped();
    monitor.shutdown(Duration::from_secs(30)).await;
    let _ = ops_stop.send(true);
    if opts.mouse {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    tracing::info!(draws, dropped_events = dropped, uptime = ?app.started.elapsed(), "monitor stopped after {why}: flushed and committed");
    goodbye(&app, outcome)
}

/// Says on the terminal how long the monitor ran and where its log is (unless the
/// terminal is gone).
fn goodbye(app: &App, outcome: anyhow::Result<Ended>) -> anyhow::Result<Ended> {
    let ended = outcome?;
    if ended != Ended::TerminalLost && ended != Ended::Signal(1) {
        eprintln!(
            "wmtop: stopped after {}; log: {}",
            crate::text::short_duration(app.started.elapsed()),
            app.log_path.display()
        );
    }
    Ok(ended)
}

/// The state's configuration from the settings.
fn app_config(settings: &Settings, opts: &TuiOptions, paths: &Paths) -> AppConfig {
    AppConfig {
        table: format!("{}.{}", settings.database, settings.table),
        window: wmtop_core::clickhouse::sql::window_of(settings),
        application_id: settings.application_id.clone(),
        log_path: settings.data_dir.join("wmtop.log"),
        allow_writes: opts.allow_writes,
        insecure: settings.insecure,
        profile: settings.profile.clone(),
        history: effects::load_history(&paths.history),
    }
}

/// Why the monitor stopped, for the log.
fn why_stopped(outcome: &anyhow::Result<Ended>) -> String {
    match outcome {
        Ok(Ended::Quit) => "quit".to_string(),
        Ok(Ended::Signal(1)) => "SIGHUP (the terminal hung up)".to_string(),
        Ok(Ended::Signal(n)) => format!("signal {n}"),
        Ok(Ended::TerminalLost) => "the terminal went away".to_string(),
        Err(e) => format!("error: {e:#}"),
    }
}

/// Carries out what the state asked for, telling it how each went.
fn carry_out(effects: Vec<Effect>, app: &mut App, monitor: &Monitor, paths: &Paths) {
    for effect in effects {
        let outcome = match effect {
            Effect::Send(cmd) => (!monitor.send(cmd)).then_some(EffectOutcome::NotSent),
            Effect::SaveHistory(history) => effects::save_history(&paths.history, &history)
                .err()
                .map(|e| {
                    EffectOutcome::Failed(format!(
                        "cannot save the query history to {}: {e}",
                        paths.history.display()
                    ))
                }),
            Effect::Export { format, result } => {
                Some(match effects::export(&paths.exports, format, &result) {
                    Ok(path) => EffectOutcome::Exported {
                        path,
                        rows: result.rows.len(),
                    },
                    Err(e) => EffectOutcome::Failed(format!(
                        "export to {} failed: {e}",
                        paths.exports.display()
                    )),
                })
            }
            Effect::Copy { what, text } => {
                let mut out = std::io::stdout();
                Some(match effects::copy(&mut out, &text) {
                    Ok(()) => EffectOutcome::Copied {
                        what,
                        bytes: text.len(),
                    },
                    Err(e) => EffectOutcome::Failed(format!("copy failed: {e}")),
                })
            }
        };
        if let Some(o) = outcome {
            app.on_effect_done(o);
        }
    }
    let _ = std::io::stdout().flush();
}
