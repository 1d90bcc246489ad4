//! wmtop's pipeline as a library with no terminal code: Keycloak auth, the series API
//! client, the Kafka producer and consumer, record flattening, the ClickHouse sink, the
//! Watermelon simulator, and configuration. The TUI and the headless commands in the
//! `wmtop` binary are two front ends on it.

pub mod api;
pub mod auth;
pub mod bench;
pub mod check;
pub mod clickhouse;
pub mod config;
pub mod consume;
pub mod events;
pub mod fields;
pub mod flatten;
pub mod kafka;
pub mod monitor;
pub mod ops;
pub mod produce;
pub mod queries;
pub mod redact;
pub mod redrive;
pub mod retry;
pub mod secret;
pub mod sim;
pub mod tls;
