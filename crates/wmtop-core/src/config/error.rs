//! What can be wrong with the configuration, each naming the setting, or the file and
//! line, and what was wrong.

use std::path::PathBuf;

/// Why the configuration cannot be used; each says which setting and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file error: where, and what (never a secret's value).
    #[error("config file {path}{}: {message}", line.map_or(String::new(), |l| format!(", line {l}")))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

pub(super) fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}
