//! Terminal input: a thread that reads key, mouse and resize events and forwards them,
//! and the routing of each event: a key through the keymap to an action, or as text
//! into the input being typed (query editor, filter, replay time); with `--mouse`, the
//! wheel scrolls and a click focuses the pane under the pointer.

use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::layout::Rect;
use tokio::sync::mpsc;
use tui_input::backend::crossterm::EventHandler;

use crate::effects::Effect;
use crate::keymap::{self, Action, Mode};
use crate::state::{App, View};
use crate::ui;

/// Reads terminal events on a thread of its own and forwards them; the channel closes
/// when the terminal cannot be read any more (a dropped ssh session).
pub fn spawn() -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(256);
    std::thread::spawn(move || {
        while !tx.is_closed() {
            // Long enough to stay idle, short enough to notice a closed channel soon.
            match event::poll(Duration::from_secs(1)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if tx.blocking_send(ev).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("reading the terminal failed: {e}");
                        break;
                    }
                },
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("polling the terminal failed: {e}");
                    break;
                }
            }
        }
    });
    rx
}

/// Applies one terminal event; `screen` is the terminal's size, for mouse positions.
pub fn on_event(app: &mut App, ev: Event, screen: Rect) -> Vec<Effect> {
    match ev {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            let mode = app.key_mode();
            if let Some(action) = keymap::lookup(mode, &key) {
                return app.on_action(action);
            }
            if mode.is_text_entry() {
                let input = match mode {
                    Mode::Edit => &mut app.query.input,
                    Mode::Filter => {
                        app.txs.selected = 0;
                        &mut app.txs.filter
                    }
                    _ => &mut app.replay.input,
                };
                input.handle_event(&Event::Key(key));
                app.dirty = true;
            }
            Vec::new()
        }
        Event::Mouse(m) if app.overlay.is_none() && app.view == View::Panes => {
            let pane = ui::pane_at(screen, app.focus, m.column, m.row);
            match (m.kind, pane) {
                (MouseEventKind::Down(MouseButton::Left), Some(p)) => {
                    app.focus = p;
                    app.dirty = true;
                    Vec::new()
                }
                (MouseEventKind::ScrollDown, Some(p)) => {
                    app.focus = p;
                    app.on_action(Action::Down)
                }
                (MouseEventKind::ScrollUp, Some(p)) => {
                    app.focus = p;
                    app.on_action(Action::Up)
                }
                _ => Vec::new(),
            }
        }
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollDown => app.on_action(Action::Down),
            MouseEventKind::ScrollUp => app.on_action(Action::Up),
            _ => Vec::new(),
        },
        Event::Resize(..) => {
            app.dirty = true;
            Vec::new()
        }
        _ => Vec::new(),
    }
}
