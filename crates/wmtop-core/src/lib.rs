//! The Watermelon pipeline as a library, with no terminal code and no simulator. From
//! the bottom up: settings ([`config`]); the network ([`net`]: TLS, the HTTP server
//! helper, the retry policy); one record's data model ([`record`]: columns, values,
//! flattening); where the series come from ([`source`]: Keycloak and the series API);
//! Kafka ([`kafka`]: one client-configuration builder, producer, the group's members,
//! lag, the partition reader, replays); ClickHouse ([`clickhouse`]: connection,
//! server compatibility, the table, loading without copies, reads); loading ([`load`]: the
//! consumer loop and the events it reports); the tools ([`tools`]: reconciliation, dead
//! letters); and the live run ([`runtime`]: monitor control, /health and /metrics). The
//! TUI and the headless commands of the `wmtop` binary are two front ends on it.

pub mod clickhouse;
pub mod config;
pub mod kafka;
pub mod load;
pub mod net;
pub mod record;
pub mod runtime;
pub mod source;
pub mod tools;
