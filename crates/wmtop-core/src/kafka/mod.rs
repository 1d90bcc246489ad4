//! Kafka: one handle ([`Kafka`]) that knows the settings and the errors retrying cannot
//! fix, and makes every client from the one configuration builder ([`config`]); the topic
//! ([`topic`]), the group as the broker describes it ([`group`]), lag ([`lag`]), the one
//! lag sampler ([`sampler`]), the one partition reader ([`reader`]) and replays and skips
//! ([`replay`]).

pub mod client;
pub mod config;
pub mod context;
pub mod group;
pub mod lag;
pub mod produce;
pub mod reader;
pub mod replay;
pub mod role;
pub mod sampler;
pub mod topic;

pub use client::{GroupConsumer, Kafka, KafkaOpError, Producer, Reader};
pub use config::{client_config, MAX_MESSAGE_BYTES};
pub use context::{Fault, KafkaContext};
pub use lag::PartitionLag;
pub use replay::{ReplayFrom, ReplayPart};
pub use role::Role;
