//! ClickHouse: the connection and its errors ([`client`]), the differences between
//! server versions ([`compat`]), clusters (Distributed tables, the tables wmtop makes on a
//! cluster, the replicas: [`cluster`]), the metrics table as the server has it and the row
//! plan built from it ([`table`]), loading without leaving copies ([`load`]) and what the
//! front ends read ([`reads`]). Connecting creates nothing; only [`load::Loader`] runs DDL.

pub mod client;
pub mod cluster;
pub mod compat;
pub mod load;
pub mod queries;
pub mod reads;
pub mod sql;
pub mod table;

pub use client::{Ch, ChError, ChErrorKind};
pub use compat::ServerVersion;
pub use load::{DeadLetter, Inserted, Loader, Rows, Scope, Settled, Written};
pub use reads::{DeadLetterEntry, QueryResult, Stored};
