//! The network: TLS for the HTTPS clients, with failures in words ([`tls`]), the one HTTP
//! server helper /health, /metrics and the simulator serve with ([`http`]), and the one
//! retry policy every stage waits for a server with ([`retry`]).

pub mod http;
pub mod retry;
pub mod tls;
