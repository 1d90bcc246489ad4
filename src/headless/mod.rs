//! The headless commands, one file each: each runs one part of the pipeline from
//! `wmtop-core`, prints one JSON summary line on stdout (also when it fails, with the
//! reason) and returns the exit code: 0 done, 1 failed or gave up, 128 + the signal when
//! interrupted. Logs go to stderr.

pub mod check;
pub mod config;
pub mod consume;
pub mod dead_letters;
pub mod follow;
pub mod produce;
pub mod query;
pub mod run;
pub mod schema;
pub mod signals;
pub mod sim;
pub mod source;

pub use signals::Signals;

pub fn print_line(value: serde_json::Value) {
    println!("{value}");
}
