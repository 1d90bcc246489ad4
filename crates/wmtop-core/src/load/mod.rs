//! Loading: the consumer loop ([`consumer`]) split into gathering a batch ([`batch`]),
//! landing it ([`land`]: insert, then commit), schema drift ([`drift`]) and how a run
//! ends ([`verdict`]), and the facts it reports as it works ([`events`]).

pub mod batch;
pub mod consumer;
mod drift;
pub mod events;
pub mod land;
pub mod verdict;

pub use consumer::{run, ConsumeOptions, ConsumeSummary};
pub use verdict::{Verdict, WaitedFor};
