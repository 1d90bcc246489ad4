//! Configuration: every setting with its default, read from flags over environment
//! (`WMTOP_<NAME>`) over a TOML file (`wmtop.toml`, or `--config`) over built-in defaults
//! that point at the local stack. Secrets come from the environment or the file only,
//! never from flags, and are held as [`Secret`]s. [`Settings::validate`] explains the
//! first thing wrong in a sentence; the file's own errors are told by [`file`], which
//! never prints the value of a secret.

mod error;
mod file;
mod kafka_options;
pub mod redact;
pub mod secret;
mod settings;
mod types;
mod validate;

pub use error::ConfigError;
pub use kafka_options::{KafkaOptions, MANAGED_KAFKA_KEYS};
pub use secret::{is_secret_key, Secret};
pub use settings::{CommonArgs, Settings, Source};
pub use types::{EpochMs, Moment, Range, SaslMechanism, SecurityProtocol, Span, Window};

#[cfg(test)]
mod tests;
