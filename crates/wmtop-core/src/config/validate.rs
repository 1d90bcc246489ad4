//! Checking the settings in force: each check names the setting and says what is wrong
//! in a sentence; URLs are shown with their credentials masked.

use std::time::Duration;

use super::error::{invalid, ConfigError};
use super::redact::mask_url;
use super::secret::Secret;
use super::settings::Settings;
use super::types::SaslMechanism;

impl Settings {
    /// Explains the first thing wrong, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_urls()?;
        for (name, v) in [
            ("kafka_brokers", &self.kafka_brokers),
            ("topic", &self.topic),
            ("group", &self.group),
            ("realm", &self.realm),
            ("client_id", &self.client_id),
            ("username", &self.username),
            ("application_id", &self.application_id),
        ] {
            if v.trim().is_empty() {
                return Err(invalid(name, "must not be empty"));
            }
        }
        for (name, v) in [("database", &self.database), ("table", &self.table)] {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    name,
                    format!("{v:?} must be letters, digits and _ only"),
                ));
            }
        }
        self.validate_cluster()?;
        if self.partitions < 1 {
            return Err(invalid("partitions", "must be at least 1"));
        }
        if self.replication_factor.is_some_and(|r| r < 1) {
            return Err(invalid(
                "replication_factor",
                "must be at least 1 (leave it unset for the broker's default)",
            ));
        }
        if self.batch_rows == 0 {
            return Err(invalid("batch_rows", "must be at least 1"));
        }
        if self.batch_mb == 0 {
            return Err(invalid("batch_mb", "must be at least 1"));
        }
        for (name, span) in [
            ("batch_interval", self.batch_interval),
            ("max_wait", self.max_wait),
            ("request_timeout", self.request_timeout),
        ] {
            if span.0.is_zero() {
                return Err(invalid(name, "must be longer than zero"));
            }
        }
        if self
            .reload_every
            .is_some_and(|every| every.0 < Duration::from_secs(1))
        {
            return Err(invalid(
                "reload_every",
                "must be at least 1s (leave it unset for no scheduled reloads)",
            ));
        }
        if let Some(range) = self.range {
            if self.window_given {
                return Err(invalid(
                    "range",
                    format!(
                        "range = {range} means start_time = {}, end_time = now, but start_time or end_time is set too; give the range or the two times",
                        range.start()
                    ),
                ));
            }
        }
        let w = self.window();
        if w.start_ms >= w.end_ms {
            let (start, end) = w.rfc3339();
            return Err(invalid(
                "start_time",
                format!(
                    "{} ({start}) is not before end_time {} ({end})",
                    self.start_time, self.end_time
                ),
            ));
        }
        self.validate_kafka_security()?;
        Ok(())
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let name_ok =
            |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if let Some(c) = &self.clickhouse_cluster {
            if !name_ok(c) {
                return Err(invalid(
                    "clickhouse_cluster",
                    format!("{c:?} must be letters, digits and _ only"),
                ));
            }
        }
        match (&self.clickhouse_local_table, &self.clickhouse_cluster) {
            (Some(_), None) => {
                return Err(invalid(
                    "clickhouse_local_table",
                    "is set, but clickhouse_cluster is not: the local table is made on a cluster (set clickhouse_cluster, or unset clickhouse_local_table)",
                ))
            }
            (Some(t), Some(_)) if !name_ok(t) || t == &self.table => {
                return Err(invalid(
                    "clickhouse_local_table",
                    format!("{t:?} must be letters, digits and _ only, and not the table's own name"),
                ))
            }
            _ => {}
        }
        if !self.clickhouse_zookeeper_path.starts_with('/') {
            return Err(invalid(
                "clickhouse_zookeeper_path",
                format!("{:?} must start with /", self.clickhouse_zookeeper_path),
            ));
        }
        Ok(())
    }

    fn validate_urls(&self) -> Result<(), ConfigError> {
        let urls = [
            ("clickhouse_url", Some(&self.clickhouse_url)),
            ("keycloak_url", self.keycloak_url.as_ref()),
            ("api_url", self.api_url.as_ref()),
        ];
        for (name, url) in urls {
            let Some(url) = url else { continue };
            let shown = mask_url(url);
            let parsed = url::Url::parse(url)
                .map_err(|e| invalid(name, format!("{shown:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(
                    name,
                    format!("{shown:?} must start with http:// or https://"),
                ));
            }
        }
        match (&self.api_url, &self.keycloak_url, self.simulator) {
            (Some(_), _, true) | (_, Some(_), true) => {
                return Err(invalid(
                    "simulator",
                    "is on, and so is an API or Keycloak URL: choose one (unset api_url and keycloak_url, or turn the simulator off)",
                ))
            }
            (Some(_), None, _) => {
                return Err(invalid(
                    "keycloak_url",
                    "is not set, but api_url is: set both (or neither, for the built-in simulator)",
                ))
            }
            (None, Some(_), _) => {
                return Err(invalid(
                    "api_url",
                    "is not set, but keycloak_url is: set both (or neither, for the built-in simulator)",
                ))
            }
            _ => {}
        }
        let https = |u: &str| u.trim_start().to_ascii_lowercase().starts_with("https://");
        if self.clickhouse_ca_file.is_some() && !https(&self.clickhouse_url) {
            return Err(invalid(
                "clickhouse_ca_file",
                "is set, but clickhouse_url is not https://",
            ));
        }
        for (name, path) in [
            ("ca_file", &self.ca_file),
            ("clickhouse_ca_file", &self.clickhouse_ca_file),
        ] {
            if let Some(p) = path {
                readable(name, p)?;
            }
        }
        Ok(())
    }

    fn validate_kafka_security(&self) -> Result<(), ConfigError> {
        let protocol = self.kafka_security_protocol;
        if protocol.sasl() {
            let Some(mechanism) = self.kafka_sasl_mechanism else {
                return Err(invalid(
                    "kafka_sasl_mechanism",
                    format!(
                        "is needed with kafka_security_protocol {}: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                        protocol.as_str()
                    ),
                ));
            };
            if mechanism != SaslMechanism::OauthBearer {
                if self
                    .kafka_sasl_username
                    .as_deref()
                    .is_none_or(|u| u.trim().is_empty())
                {
                    return Err(invalid(
                        "kafka_sasl_username",
                        format!("is needed for SASL {}", mechanism.as_str()),
                    ));
                }
                if self
                    .kafka_sasl_password
                    .as_ref()
                    .is_none_or(Secret::is_empty)
                {
                    return Err(invalid(
                        "kafka_sasl_password",
                        format!(
                            "is needed for SASL {}: set WMTOP_KAFKA_SASL_PASSWORD or kafka_sasl_password in the config file",
                            mechanism.as_str()
                        ),
                    ));
                }
            }
        } else {
            for (name, set) in [
                ("kafka_sasl_mechanism", self.kafka_sasl_mechanism.is_some()),
                ("kafka_sasl_username", self.kafka_sasl_username.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        name,
                        format!(
                            "is set, but kafka_security_protocol is {}: use SASL_SSL or SASL_PLAINTEXT",
                            protocol.as_str()
                        ),
                    ));
                }
            }
        }
        let files = [
            ("kafka_ca_file", &self.kafka_ca_file),
            ("kafka_cert_file", &self.kafka_cert_file),
            ("kafka_key_file", &self.kafka_key_file),
        ];
        for (name, path) in files {
            let Some(p) = path else { continue };
            if !protocol.tls() {
                return Err(invalid(
                    name,
                    format!(
                        "is set, but kafka_security_protocol is {}: use SSL or SASL_SSL",
                        protocol.as_str()
                    ),
                ));
            }
            readable(name, p)?;
        }
        if self.kafka_cert_file.is_some() != self.kafka_key_file.is_some() {
            return Err(invalid(
                if self.kafka_cert_file.is_some() {
                    "kafka_key_file"
                } else {
                    "kafka_cert_file"
                },
                "mutual TLS needs both kafka_cert_file and kafka_key_file",
            ));
        }
        Ok(())
    }
}

fn readable(name: &'static str, path: &std::path::Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| invalid(name, format!("cannot read {}: {e}", path.display())))
}
