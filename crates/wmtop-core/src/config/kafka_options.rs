//! librdkafka properties passed through as they are, kcat-style: `-X KEY=VALUE` (or
//! `--kafka-option`) on the command line, and a `[kafka_options]` table in the config
//! file; the command line wins. A property holding a password or secret is refused on
//! the command line (it would sit in shell history and `ps`), and properties that have
//! a setting of their own, or that wmtop must manage to keep its guarantees, are refused
//! with the setting to use instead. Values of secret properties never show in `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use super::error::ConfigError;
use super::secret::is_secret_key;

/// Properties wmtop sets from its own settings or must keep as they are, with what to
/// use instead.
pub const MANAGED_KAFKA_KEYS: &[(&str, &str)] = &[
    ("bootstrap.servers", "--kafka-brokers / kafka_brokers"),
    ("metadata.broker.list", "--kafka-brokers / kafka_brokers"),
    ("group.id", "--group / group"),
    (
        "security.protocol",
        "--kafka-security-protocol / kafka_security_protocol",
    ),
    (
        "sasl.mechanism",
        "--kafka-sasl-mechanism / kafka_sasl_mechanism",
    ),
    (
        "sasl.mechanisms",
        "--kafka-sasl-mechanism / kafka_sasl_mechanism",
    ),
    (
        "sasl.username",
        "--kafka-sasl-username / kafka_sasl_username",
    ),
    (
        "sasl.password",
        "WMTOP_KAFKA_SASL_PASSWORD or kafka_sasl_password in the config file",
    ),
    ("ssl.ca.location", "--kafka-ca-file / kafka_ca_file"),
    (
        "ssl.certificate.location",
        "--kafka-cert-file / kafka_cert_file",
    ),
    ("ssl.key.location", "--kafka-key-file / kafka_key_file"),
    (
        "enable.auto.commit",
        "nothing: wmtop commits only after ClickHouse has the rows",
    ),
    (
        "enable.auto.offset.store",
        "nothing: wmtop stores offsets only after ClickHouse has the rows",
    ),
];

/// The passthrough properties in force.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaOptions(BTreeMap<String, String>);

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_secret_key(k) { "***" } else { v.as_str() };
                (k, shown)
            }))
            .finish()
    }
}

/// Why a property is not taken, if it is not: it has a setting of its own, or it holds
/// a secret and came from the command line.
pub(super) fn refuse(key: &str, from_command_line: bool) -> Option<String> {
    let k = key.trim().to_ascii_lowercase();
    if let Some((_, instead)) = MANAGED_KAFKA_KEYS.iter().find(|(m, _)| *m == k) {
        return Some(format!("{key} has a setting of its own: use {instead}"));
    }
    if from_command_line && is_secret_key(&k) {
        return Some(format!(
            "{key} holds a secret and is not taken from the command line: put it in the config file's [kafka_options] table (chmod 600)"
        ));
    }
    None
}

fn bad(message: String) -> ConfigError {
    ConfigError::Invalid {
        name: "kafka_options",
        message,
    }
}

impl KafkaOptions {
    /// The file's table (already checked by the file reader), then `-X` on top.
    pub(super) fn layer(
        command_line: &[String],
        file: BTreeMap<String, String>,
    ) -> Result<KafkaOptions, ConfigError> {
        let mut out = file;
        for item in command_line {
            let Some((key, value)) = item.split_once('=') else {
                let key = item.trim();
                let shown = if is_secret_key(key) {
                    "(not shown)"
                } else {
                    key
                };
                return Err(bad(format!(
                    "-X {shown}: expected KEY=VALUE, as in -X fetch.wait.max.ms=100"
                )));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(bad("-X: the property name is empty".into()));
            }
            if let Some(why) = refuse(key, true) {
                return Err(bad(format!("-X {why}")));
            }
            out.insert(key.to_string(), value.to_string());
        }
        Ok(KafkaOptions(out))
    }

    /// Every property, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A property's value, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// No property given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
