//! The Watermelon pipeline as a library, with no terminal code and no simulator: where the
//! series come from ([`source`]: Keycloak and the series API), Kafka ([`kafka`]: one
//! client-configuration builder, producer, lag, the partition reader, replays, the local
//! broker's quirks), loading ([`load`]: columns, flattening, the consumer loop),
//! ClickHouse ([`clickhouse`]: connection, server compatibility, the table, loading
//! without copies, reads), the tools ([`tools`]: reconciliation, dead letters), the live
//! run ([`runtime`]: monitor control, events, /health and /metrics, the retry policy),
//! the network ([`net`]: TLS, the HTTP server helper) and settings ([`config`]). The TUI
//! and the headless commands of the `wmtop` binary are two front ends on it.

pub mod clickhouse;
pub mod config;
pub mod kafka;
pub mod load;
pub mod net;
pub mod runtime;
pub mod source;
pub mod tools;
