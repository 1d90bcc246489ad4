//! The pipeline run live for a front end: the monitor's control of its tasks
//! ([`monitor`]), /health and /metrics ([`ops`]), and giving memory back after a load
//! ([`memory`]).

pub mod memory;
pub mod monitor;
pub mod ops;
