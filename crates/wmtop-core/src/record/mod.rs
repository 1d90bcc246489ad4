//! One hourly record, the data model every stage shares: the columns of
//! `transaction_metrics`, written once ([`columns`]), a JSON value and its conversion to
//! each column's type ([`value`]), and flattening a Kafka message into one row per record
//! ([`flatten`]).

pub mod columns;
pub mod flatten;
pub mod value;
