//! The config file: reading and parsing it, its `[profiles.NAME]` tables, checking its
//! `[kafka_options]` table, warning when it holds a secret others can read, and turning
//! its errors into one or two lines that name the file, the line and the key but never
//! show the value of a key that holds a secret (nor any value on a line whose key is
//! unknown: it may be a misspelled secret).

use std::path::Path;

use serde::de::DeserializeOwned;

use super::error::ConfigError;
use super::kafka_options::refuse;
use super::secret::is_secret_key;

/// Reads and parses the file into `T`; an error names the line and key, without a
/// secret's value. `keys` are the keys `T` takes, for suggestions.
pub(super) fn parse<T: DeserializeOwned>(
    path: &Path,
    keys: &[&str],
) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parsed: T = toml::from_str(&text).map_err(|e| explain(path, &text, &e, keys))?;
    Ok((parsed, text))
}

/// The profiles a file holds, each with the keys it sets (names only: values may be
/// secrets). An entry of `[profiles]` that is not a table is an error.
pub(super) fn profile_keys(
    path: &Path,
    tables: &toml::Table,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    tables
        .iter()
        .map(|(name, v)| match v {
            toml::Value::Table(t) => Ok((name.clone(), t.keys().cloned().collect())),
            _ => Err(ConfigError::Parse {
                path: path.to_path_buf(),
                line: None,
                message: format!("profiles.{name} must be a table ([profiles.{name}] with its settings under it)"),
            }),
        })
        .collect()
}

/// The settings of profile `name`, parsed as the file's top level is; an unknown name is
/// an error that lists the known ones. Errors name the profile's line and never show a
/// value of a profile that holds a secret.
pub(super) fn profile<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    tables: &toml::Table,
    name: &str,
    keys: &[&str],
) -> Result<T, ConfigError> {
    let header = format!("profiles.{name}");
    let line = text
        .lines()
        .position(|l| {
            key_of_line(l).as_deref() == Some(header.as_str()) && l.trim_start().starts_with('[')
        })
        .map(|i| i + 1);
    let err = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    let Some(toml::Value::Table(table)) = tables.get(name) else {
        let known: Vec<&str> = tables.keys().map(String::as_str).collect();
        return Err(ConfigError::Parse {
            path: path.to_path_buf(),
            line: None,
            message: if known.is_empty() {
                format!("there is no profile {name:?}: the file holds no [profiles.NAME] tables")
            } else {
                format!(
                    "there is no profile {name:?}; the profiles are: {}",
                    known.join(", ")
                )
            },
        });
    };
    if table.contains_key("profiles") {
        return Err(err(format!(
            "[{header}] holds profiles of its own; profiles do not nest"
        )));
    }
    toml::Value::Table(table.clone())
        .try_into::<T>()
        .map_err(|e| {
            let message = e.message().trim().to_string();
            if let Some(unknown) = unknown_field(&message) {
                err(format!("[{header}]: {}", unknown_key(unknown, keys)))
            } else if table.keys().any(|k| is_secret_key(k)) {
                err(format!(
                    "[{header}]: a value is not valid; it is not shown because the profile holds a secret"
                ))
            } else {
                err(format!("[{header}]: {}", first_line(&message)))
            }
        })
}

/// A warning for a file that holds a secret and can be read by others.
pub(super) fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "config file {} holds a secret and can be read by others (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

/// The `[kafka_options]` table as text values, each checked; an error names the line.
pub(super) fn kafka_options(
    path: &Path,
    text: &str,
    table: Option<&toml::Table>,
) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    let Some(table) = table else {
        return Ok(out);
    };
    let line_of = |key: &str| {
        let mut inside = false;
        text.lines().position(|l| {
            let t = l.trim_start();
            if t.starts_with('[') {
                inside = key_of_line(t).as_deref() == Some("kafka_options");
                return false;
            }
            inside && key_of_line(t).as_deref() == Some(key)
        })
    };
    for (key, value) in table {
        let bad = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            line: line_of(key).map(|i| i + 1),
            message: format!("[kafka_options] {message}"),
        };
        if let Some(why) = refuse(key, false) {
            return Err(bad(why));
        }
        let v = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                let what = if is_secret_key(key) {
                    "not shown: it is a secret".to_string()
                } else {
                    format!("not {}", other.type_str())
                };
                return Err(bad(format!(
                    "{key:?}: the value must be a string, a number or a boolean ({what})"
                )));
            }
        };
        out.insert(key.clone(), v);
    }
    Ok(out)
}

/// The key a line sets (`key = …`), or the table it opens (`[name]`).
fn key_of_line(line: &str) -> Option<String> {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        return Some(rest.split(']').next()?.trim().to_string());
    }
    let (key, _) = t.split_once('=')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then(|| key.to_string())
}

/// The table a line sits in (the last `[name]` above it), if any.
fn table_of_line(text: &str, line_index: usize) -> Option<String> {
    text.lines()
        .take(line_index + 1)
        .filter_map(|l| {
            let t = l.trim_start();
            t.starts_with('[').then(|| key_of_line(t)).flatten()
        })
        .last()
}

/// An unknown key's name, from serde's "unknown field `x`, expected …".
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn suggestion<'k>(key: &str, keys: &[&'k str]) -> Option<&'k str> {
    keys.iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// An unknown key named, with the key meant when one is close, never its value.
fn unknown_key(unknown: &str, keys: &[&str]) -> String {
    let hint = suggestion(unknown, keys)
        .map(|k| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default();
    format!("unknown key {unknown:?}{hint}; its value is not shown")
}

/// One or two lines: the line and key at fault and what is wrong, without secrets.
fn explain(path: &Path, text: &str, e: &toml::de::Error, keys: &[&str]) -> ConfigError {
    let line_index = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count());
    let line_text = line_index.and_then(|i| text.lines().nth(i)).unwrap_or("");
    let key = key_of_line(line_text);
    let table = line_index.and_then(|i| table_of_line(text, i));
    let message = e.message().trim();
    let described = if let Some(unknown) = unknown_field(message) {
        unknown_key(unknown, keys)
    } else {
        let in_options = table.as_deref() == Some("kafka_options");
        match (&key, key.as_deref().is_some_and(is_secret_key)) {
            (Some(k), true) => format!(
                "key {k:?}: the value is not valid (a secret must be a quoted string on one line); it is not shown because it is a secret"
            ),
            (None, _) => "not valid TOML here (is a quote or a bracket missing?); the line is not shown in case it holds a secret".to_string(),
            (Some(k), false) if in_options => format!("[kafka_options] {k:?}: {}", first_line(message)),
            (Some(k), false) => format!("key {k:?}: {}", first_line(message)),
        }
    };
    ConfigError::Parse {
        path: path.to_path_buf(),
        line: line_index.map(|i| i + 1),
        message: described,
    }
}

fn first_line(message: &str) -> String {
    crate::config::redact::mask_urls_in(message.lines().next().unwrap_or(message))
}
