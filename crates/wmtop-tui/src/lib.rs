//! The TUI front end of wmtop. [`app`] starts the live pipeline
//! ([`wmtop_core::runtime::monitor`]) and runs one loop over key presses, pipeline
//! events, signals and a one-second tick; [`state`] holds what is shown, one struct per
//! pane, updated by events and key actions ([`keymap`]); [`effects`] does what the state
//! asks of the outside (commands, files, the clipboard); [`ui`] draws, purely.
//! [`terminal`] decides colours and glyphs from what the terminal can show.

pub mod app;
pub mod effects;
pub mod frames;
pub mod input;
pub mod keymap;
pub mod state;
pub mod terminal;
pub mod text;
pub mod ui;

pub use app::{run, Ended, TuiOptions};
