//! Loading: the columns of `transaction_metrics` ([`columns`]), JSON values and their
//! conversions ([`value`]), flattening a message into rows ([`flatten`]), and the consumer
//! loop ([`consumer`]) split into gathering a batch ([`batch`]), landing it ([`land`]:
//! insert, then commit), schema drift ([`drift`]) and how a run ends ([`verdict`]).

pub mod batch;
pub mod columns;
pub mod consumer;
mod drift;
pub mod flatten;
pub mod land;
pub mod value;
pub mod verdict;

pub use consumer::{run, ConsumeOptions, ConsumeSummary};
pub use verdict::{Verdict, WaitedFor};
