//! Loading: the consumer loop ([`consumer`]) split into its start (`startup`), the
//! run's state and steps (`session`), gathering a batch ([`batch`]), landing it
//! ([`land`]: insert, then commit), schema drift (`drift`), how a run ends
//! ([`verdict`]) and what it reports at the end (`summary`), and the facts it reports
//! as it works ([`events`]).

pub mod batch;
pub mod consumer;
mod drift;
pub mod events;
pub mod land;
mod rest;
mod session;
mod startup;
mod summary;
pub mod verdict;

pub use consumer::{run, ConsumeOptions, ConsumeSummary};
pub use verdict::{Verdict, WaitedFor};
