//! The TUI front end of wmtop: starts the live pipeline ([`wmtop_core::runtime::monitor`]),
//! then runs one loop that selects over key presses, pipeline events and a one-second
//! tick, updates the state ([`state`]), and redraws ([`ui`], pure) only when something
//! changed, at most `fps` times a second. Keys come from one table ([`keymap`]). Logs go
//! to a file; the terminal is restored on every exit path, panics included.

pub mod frames;
pub mod keymap;
pub mod state;
pub mod ui;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{self, Event as TermEvent, KeyEventKind};
use tokio::sync::mpsc;
use wmtop_core::config::Settings;
use wmtop_core::runtime::monitor::{self, MonitorOptions};

use state::App;
use ui::Theme;

/// How the screen is run.
#[derive(Clone, Debug)]
pub struct TuiOptions {
    pub fps: u32,
    pub color: bool,
    pub ascii: bool,
    pub allow_writes: bool,
    /// The simulator's URL when the series come from it (the caller started it and
    /// pointed the settings at it).
    pub simulator: Option<String>,
}

/// Reads terminal events on a thread of its own and forwards them.
fn spawn_input() -> mpsc::Receiver<TermEvent> {
    let (tx, rx) = mpsc::channel(256);
    std::thread::spawn(move || {
        while !tx.is_closed() {
            match event::poll(Duration::from_millis(200)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if tx.blocking_send(ev).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!("reading the terminal failed: {e}");
                        break;
                    }
                },
                Ok(false) => {}
                Err(e) => {
                    tracing::error!("polling the terminal failed: {e}");
                    break;
                }
            }
        }
    });
    rx
}

/// Runs the TUI until the user quits.
pub async fn run(settings: &Settings, opts: TuiOptions) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the monitor needs a terminal; for scripts use the headless commands (wmtop --help)"
        );
    }
    let log_path = settings.data_dir.join("wmtop.log");
    let table = format!("{}.{}", settings.database, settings.table);
    let mut app = App::new(
        table,
        settings.data_dir.clone(),
        log_path,
        opts.allow_writes,
    );
    app.insecure = settings.insecure;
    let theme = Theme {
        color: opts.color,
        ascii: opts.ascii,
    };
    let ops = wmtop_core::runtime::ops::Ops::new(&settings.topic);
    let (ops_stop, ops_rx) = tokio::sync::watch::channel(false);
    wmtop_core::runtime::ops::start(&settings.ops_addr, std::sync::Arc::clone(&ops), ops_rx).await;
    let (monitor, mut events) = monitor::start(
        settings.clone(),
        MonitorOptions {
            allow_writes: opts.allow_writes,
            ops: Some(ops),
            simulator: opts.simulator.clone(),
        },
    );
    let mut terminal = ratatui::init();
    let mut input = spawn_input();
    let frame_gap = Duration::from_secs_f64(1.0 / f64::from(opts.fps.clamp(1, 60)));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_draw = Instant::now() - frame_gap;
    let mut draws: u64 = 0;
    let outcome: anyhow::Result<()> = async {
        loop {
            if app.dirty && last_draw.elapsed() >= frame_gap {
                terminal
                    .draw(|f| ui::draw(&app, theme, f))
                    .context("drawing")?;
                app.dirty = false;
                last_draw = Instant::now();
                draws += 1;
            }
            let next_frame = tokio::time::Instant::from_std(last_draw + frame_gap);
            tokio::select! {
                ev = input.recv() => {
                    let Some(ev) = ev else { break };
                    handle_terminal_event(&mut app, &monitor, ev);
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
                _ = tick.tick() => app.tick(),
                _ = tokio::time::sleep_until(next_frame), if app.dirty => {}
            }
            if app.quit {
                break;
            }
        }
        Ok(())
    }
    .await;
    // Stop cleanly: flush the last batch and commit, showing that we do.
    app.message = Some((
        "stopping: flushing the last batch and committing offsets...".into(),
        Instant::now(),
    ));
    let _ = terminal.draw(|f| ui::draw(&app, theme, f));
    let dropped = monitor.dropped();
    monitor.shutdown(Duration::from_secs(30)).await;
    let _ = ops_stop.send(true);
    ratatui::restore();
    tracing::info!(draws, dropped_events = dropped, uptime = ?app.started.elapsed(), "monitor stopped");
    outcome?;
    eprintln!(
        "wmtop: stopped after {}; log: {}",
        ui::short_duration(app.started.elapsed()),
        app.log_path.display()
    );
    Ok(())
}

fn handle_terminal_event(app: &mut App, monitor: &monitor::Monitor, ev: TermEvent) {
    match ev {
        TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
            let mode = app.key_mode();
            match keymap::lookup(mode, &key) {
                Some(action) => {
                    for cmd in app.on_action(action) {
                        if !monitor.send(cmd) {
                            app.message = Some((
                                "the pipeline is not taking commands".into(),
                                Instant::now(),
                            ));
                        }
                    }
                }
                None => {
                    use tui_input::backend::crossterm::EventHandler;
                    let target = match mode {
                        keymap::Mode::Edit => Some(&mut app.query.input),
                        keymap::Mode::Filter => Some(&mut app.filter),
                        keymap::Mode::ReplayFrom => Some(&mut app.replay_input),
                        _ => None,
                    };
                    if let Some(input) = target {
                        input.handle_event(&TermEvent::Key(key));
                        if mode == keymap::Mode::Filter {
                            app.scroll[2] = 0;
                        }
                        app.dirty = true;
                    }
                }
            }
        }
        TermEvent::Resize(..) => app.dirty = true,
        _ => {}
    }
}
