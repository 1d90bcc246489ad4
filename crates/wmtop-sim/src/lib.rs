//! The Watermelon simulator: an honest HTTP stand-in for the Keycloak token endpoint and the
//! series API of the Watermelon contract (sections 1-3), serving deterministic, mutually
//! consistent data from a seed, with faults that tests and the TUI can inject at run time.
//! The settings are in `config`, the data in `data`, the wire form in `wire`, tokens in
//! `auth`, the HTTP serving in `server` and a simulator run in-process in `handle`; this
//! file names the public items and makes a full answer without a server.

mod auth;
mod config;
mod data;
mod handle;
mod rng;
mod server;
mod wire;

pub use config::{Faults, FaultsParseError, Live, Shape, ShapeParseError, SimConfig};
pub use data::{dataset, live_dataset, LiveView, SimRecord, SimTransaction};
pub use handle::{spawn, SimHandle};
pub use server::{serve, SeriesRequest, SimStats};

/// The answer the simulator serves for its whole range (the body a full fetch returns),
/// made without a server: benchmarks start from the same bytes a fetch would.
pub fn full_answer(cfg: &SimConfig) -> serde_json::Result<Vec<u8>> {
    wire::body(&dataset(cfg), cfg.start_ms, cfg.end_ms(), cfg.shape, None)
}

#[cfg(test)]
mod tests;
