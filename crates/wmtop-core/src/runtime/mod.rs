//! The pipeline run live for a front end: the monitor's control of its tasks
//! ([`monitor`]) and /health and /metrics ([`ops`]).

pub mod monitor;
pub mod ops;
