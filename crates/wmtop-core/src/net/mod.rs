//! The network: TLS for the HTTPS clients, with failures in words ([`tls`]), and the one
//! HTTP server helper /health, /metrics and the simulator serve with ([`http`]).

pub mod http;
pub mod tls;
