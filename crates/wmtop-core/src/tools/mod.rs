//! The tools a user runs by hand: reconciliation of API, topic and ClickHouse
//! ([`check`]), one transaction looked at closely ([`inspect`]), and dead letters:
//! re-driving them and skipping a message the broker does not serve ([`redrive`]).

pub mod check;
pub mod inspect;
pub mod redrive;
