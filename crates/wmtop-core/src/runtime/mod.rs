//! The pipeline run live: the monitor's control of its tasks ([`monitor`]), the facts
//! tasks report ([`events`]), /health and /metrics ([`ops`]), and the one retry policy
//! every stage waits with ([`retry`]).

pub mod events;
pub mod monitor;
pub mod ops;
pub mod retry;
