//! Configuration: every setting with its default, read from flags over environment
//! (`WMTOP_<NAME>`) over a TOML file (`wmtop.toml`, or `--config`) over built-in defaults
//! that point at the local stack. Secrets come from the environment or the file only,
//! never from flags, and are held as [`Secret`]s. [`Settings::validate`] explains the
//! first thing wrong in a sentence; the file's own errors are told by [`file`], which
//! never prints the value of a secret.

mod file;
mod kafka_options;
pub mod redact;
pub mod secret;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

pub use file::is_secret_key;
pub use kafka_options::{KafkaOptions, MANAGED_KAFKA_KEYS};

use redact::mask_url;
use secret::Secret;

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

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

/// A point in time given as epoch milliseconds or as an RFC 3339 time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochMs(pub i64);

impl FromStr for EpochMs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Ok(ms) = t.parse::<i64>() {
            return Ok(EpochMs(ms));
        }
        t.parse::<jiff::Timestamp>()
            .map(|ts| EpochMs(ts.as_millisecond()))
            .map_err(|_| format!("{t:?} is neither epoch milliseconds nor an RFC 3339 time (2026-01-01T00:00:00Z)"))
    }
}

/// A duration given as "5s", "250ms", "2m" or a bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("{t:?} is not a duration (like 5s, 250ms, 2m)"))?;
        let secs = match unit.trim() {
            "" | "s" => n,
            "ms" => n / 1000.0,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            other => return Err(format!("{t:?}: unknown unit {other:?} (use ms, s, m or h)")),
        };
        Duration::try_from_secs_f64(secs)
            .map(Span)
            .map_err(|e| format!("{t:?}: {e}"))
    }
}

/// How wmtop talks to the Kafka brokers (librdkafka's `security.protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// TLS is in use.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// SASL is in use.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(format!(
                "{s:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
            )),
        }
    }
}

/// A SASL mechanism this build of librdkafka offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OauthBearer,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OauthBearer => "OAUTHBEARER",
        }
    }
}

impl FromStr for SaslMechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().replace('_', "-").as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            "OAUTHBEARER" => Ok(SaslMechanism::OauthBearer),
            "GSSAPI" => Err("GSSAPI (Kerberos) is not built into wmtop; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER".into()),
            _ => Err(format!(
                "{s:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"
            )),
        }
    }
}

macro_rules! de_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw { N(i64), S(String) }
                match Raw::deserialize(d)? {
                    Raw::N(n) => n.to_string().parse(),
                    Raw::S(s) => s.parse(),
                }
                .map_err(serde::de::Error::custom)
            }
        }
    )*};
}
de_from_str!(EpochMs, Span, SecurityProtocol, SaslMechanism);

/// Declares every plain setting once: the flag (with its env var), the file key, the
/// resolved field, and its default (settings under `optional` have none: unset is None).
macro_rules! settings {
    (
        defaults { $( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr, env $env:literal; )* }
        optional { $( $(#[doc = $odoc:literal])* $oname:ident : $oty:ty, env $oenv:literal; )* }
    ) => {
        /// Flags shared by every command; each also reads `WMTOP_<NAME>` from the environment.
        #[derive(Args, Debug, Default, Clone)]
        pub struct CommonArgs {
            /// Config file (TOML). Default: ./wmtop.toml when it exists.
            #[arg(long, env = "WMTOP_CONFIG", global = true, value_name = "PATH")]
            pub config: Option<PathBuf>,
            /// Accept any TLS certificate from Keycloak, the API and ClickHouse (unsafe; says so loudly).
            #[arg(long, env = "WMTOP_INSECURE", global = true)]
            pub insecure: bool,
            /// Use the built-in simulator of Keycloak and the series API (also the default
            /// when no API or Keycloak URL is set anywhere).
            #[arg(long, env = "WMTOP_SIMULATOR", global = true)]
            pub simulator: bool,
            /// A librdkafka property for every Kafka client, as KEY=VALUE (repeatable), as
            /// kcat's -X. Properties holding a password or secret belong in the config
            /// file's [kafka_options] table instead.
            #[arg(short = 'X', long = "kafka-option", global = true, value_name = "KEY=VALUE")]
            pub kafka_option: Vec<String>,
            $(
                $(#[doc = $doc])*
                #[arg(long, env = $env, global = true)]
                pub $name: Option<$ty>,
            )*
            $(
                $(#[doc = $odoc])*
                #[arg(long, env = $oenv, global = true)]
                pub $oname: Option<$oty>,
            )*
        }

        /// The config file's keys; unknown keys are an error.
        #[derive(Deserialize, Debug, Default)]
        #[serde(deny_unknown_fields)]
        struct FileConfig {
            insecure: Option<bool>,
            simulator: Option<bool>,
            password: Option<Secret>,
            client_secret: Option<Secret>,
            clickhouse_password: Option<Secret>,
            kafka_sasl_password: Option<Secret>,
            kafka_options: Option<toml::Table>,
            /// `kafka_options` as checked text, filled by the file reader.
            #[serde(skip)]
            kafka_options_checked: std::collections::BTreeMap<String, String>,
            $( $name: Option<$ty>, )*
            $( $oname: Option<$oty>, )*
        }

        /// Every key the config file accepts, for suggestions.
        const FILE_KEYS: &[&str] = &[
            "insecure", "simulator", "password", "client_secret", "clickhouse_password",
            "kafka_sasl_password", "kafka_options",
            $( stringify!($name), )*
            $( stringify!($oname), )*
        ];

        /// The settings in force, after layering.
        #[derive(Debug, Clone)]
        pub struct Settings {
            /// Accept any TLS certificate from the HTTPS servers (`--insecure`).
            pub insecure: bool,
            /// The simulator was asked for (`--simulator` / `simulator = true`).
            pub simulator: bool,
            /// Keycloak password: `WMTOP_PASSWORD` or `password` in the file.
            pub password: Secret,
            /// Optional Keycloak client secret: `WMTOP_CLIENT_SECRET` or the file.
            pub client_secret: Option<Secret>,
            /// ClickHouse password: `WMTOP_CLICKHOUSE_PASSWORD` or the file.
            pub clickhouse_password: Secret,
            /// SASL password: `WMTOP_KAFKA_SASL_PASSWORD` or the file.
            pub kafka_sasl_password: Option<Secret>,
            /// librdkafka properties given with `-X` and in `[kafka_options]`.
            pub kafka_options: KafkaOptions,
            /// The config file read, if any.
            pub config_file: Option<PathBuf>,
            /// Warnings found while reading (e.g. a readable file holding a secret).
            pub warnings: Vec<String>,
            $( $(#[doc = $doc])* pub $name: $ty, )*
            $( $(#[doc = $odoc])* pub $oname: Option<$oty>, )*
        }

        impl Settings {
            fn layer(
                args: &CommonArgs,
                file: FileConfig,
                env: &dyn Fn(&str) -> Option<String>,
            ) -> Result<Settings, ConfigError> {
                let secret = |var: &str, from_file: Option<Secret>| {
                    env(var).filter(|v| !v.is_empty()).map(Secret::new).or(from_file)
                };
                let kafka_options = KafkaOptions::layer(&args.kafka_option, file.kafka_options_checked)?;
                Ok(Settings {
                    insecure: args.insecure || file.insecure.unwrap_or(false),
                    simulator: args.simulator || file.simulator.unwrap_or(false),
                    password: secret("WMTOP_PASSWORD", file.password).unwrap_or_default(),
                    client_secret: secret("WMTOP_CLIENT_SECRET", file.client_secret),
                    clickhouse_password: secret("WMTOP_CLICKHOUSE_PASSWORD", file.clickhouse_password)
                        .unwrap_or_default(),
                    kafka_sasl_password: secret("WMTOP_KAFKA_SASL_PASSWORD", file.kafka_sasl_password),
                    kafka_options,
                    config_file: None,
                    warnings: Vec::new(),
                    $( $name: args.$name.clone().or(file.$name).unwrap_or_else(|| $default), )*
                    $( $oname: args.$oname.clone().or(file.$oname), )*
                })
            }
        }
    };
}

settings! {
    defaults {
        /// Kafka bootstrap servers.
        kafka_brokers: String = "127.0.0.1:9092".into(), env "WMTOP_KAFKA_BROKERS";
        /// Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
        kafka_security_protocol: SecurityProtocol = SecurityProtocol::Plaintext, env "WMTOP_KAFKA_SECURITY_PROTOCOL";
        /// Topic holding one message per transaction.
        topic: String = "services_series_12days".into(), env "WMTOP_TOPIC";
        /// Create the topic when it is missing (never touches one that exists).
        create_topic: bool = true, env "WMTOP_CREATE_TOPIC";
        /// Consumer group.
        group: String = "wmtop".into(), env "WMTOP_GROUP";
        /// Partitions when wmtop creates the topic.
        partitions: i32 = 3, env "WMTOP_PARTITIONS";
        /// ClickHouse HTTP(S) URL.
        clickhouse_url: String = "http://127.0.0.1:8123".into(), env "WMTOP_CLICKHOUSE_URL";
        /// ClickHouse user.
        clickhouse_user: String = "default".into(), env "WMTOP_CLICKHOUSE_USER";
        /// ClickHouse database (created if missing, where wmtop loads).
        database: String = "watermelon".into(), env "WMTOP_DATABASE";
        /// ClickHouse table (created if missing, where wmtop loads).
        table: String = "transaction_metrics".into(), env "WMTOP_TABLE";
        /// Keycloak realm.
        realm: String = "watermelon".into(), env "WMTOP_REALM";
        /// Keycloak client id.
        client_id: String = "wmtop".into(), env "WMTOP_CLIENT_ID";
        /// Keycloak user.
        username: String = "wmtop".into(), env "WMTOP_USERNAME";
        /// Application whose series are fetched.
        application_id: String = "31854".into(), env "WMTOP_APPLICATION_ID";
        /// Start of the window: epoch ms or RFC 3339.
        start_time: EpochMs = EpochMs(1_767_205_800_000), env "WMTOP_START_TIME";
        /// End of the window: epoch ms or RFC 3339.
        end_time: EpochMs = EpochMs(1_768_242_540_000), env "WMTOP_END_TIME";
        /// Series index.
        index: String = "HOURLY".into(), env "WMTOP_INDEX";
        /// Rows per ClickHouse insert.
        batch_rows: usize = 5000, env "WMTOP_BATCH_ROWS";
        /// Longest time rows wait before they are inserted.
        batch_interval: Span = Span(Duration::from_secs(5)), env "WMTOP_BATCH_INTERVAL";
        /// Timeout of one API or Keycloak request.
        request_timeout: Span = Span(Duration::from_secs(120)), env "WMTOP_REQUEST_TIMEOUT";
        /// Longest a run waits for a server that does not answer or a message that is never served.
        max_wait: Span = Span(Duration::from_secs(120)), env "WMTOP_MAX_WAIT";
        /// Address of the /health and /metrics endpoints ("off" disables them).
        ops_addr: String = "127.0.0.1:9464".into(), env "WMTOP_OPS_ADDR";
        /// Where the last fetch and other state are kept.
        data_dir: PathBuf = default_data_dir(), env "WMTOP_DATA_DIR";
    }
    optional {
        /// Series API base URL (unset with keycloak_url unset: the simulator).
        api_url: String, env "WMTOP_API_URL";
        /// Keycloak base URL.
        keycloak_url: String, env "WMTOP_KEYCLOAK_URL";
        /// PEM file of a private CA for Keycloak and the API.
        ca_file: PathBuf, env "WMTOP_CA_FILE";
        /// PEM file of a private CA for ClickHouse over HTTPS.
        clickhouse_ca_file: PathBuf, env "WMTOP_CLICKHOUSE_CA_FILE";
        /// Kafka SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
        kafka_sasl_mechanism: SaslMechanism, env "WMTOP_KAFKA_SASL_MECHANISM";
        /// Kafka SASL user (the password: WMTOP_KAFKA_SASL_PASSWORD or the config file).
        kafka_sasl_username: String, env "WMTOP_KAFKA_SASL_USERNAME";
        /// PEM file of the CA that signed the brokers' certificates.
        kafka_ca_file: PathBuf, env "WMTOP_KAFKA_CA_FILE";
        /// Client certificate (PEM) for mutual TLS with the brokers.
        kafka_cert_file: PathBuf, env "WMTOP_KAFKA_CERT_FILE";
        /// Client key (PEM) for mutual TLS with the brokers.
        kafka_key_file: PathBuf, env "WMTOP_KAFKA_KEY_FILE";
        /// Replication factor when wmtop creates the topic (default: the broker's own default).
        replication_factor: i16, env "WMTOP_REPLICATION_FACTOR";
    }
}

/// `$XDG_STATE_HOME/wmtop`, else `~/.local/state/wmtop`, else `./.wmtop`.
fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("wmtop");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/wmtop"),
        None => PathBuf::from(".wmtop"),
    }
}

/// Where the series come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The configured Keycloak and API.
    Api {
        api_url: String,
        keycloak_url: String,
    },
    /// The built-in simulator: asked for, or nothing configured.
    Simulator { asked: bool },
}

impl Settings {
    /// Layers flags, environment, file and defaults, then validates.
    pub fn resolve(args: &CommonArgs) -> Result<Settings, ConfigError> {
        Self::resolve_with(args, &|k| std::env::var(k).ok())
    }

    /// As [`Settings::resolve`], with the environment given (for tests). The environment
    /// is read for secrets here; clap reads it for every other setting.
    pub fn resolve_with(
        args: &CommonArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let path = match &args.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from("wmtop.toml")).filter(|p| p.is_file()),
        };
        let mut warnings = Vec::new();
        let file = match &path {
            Some(p) => file::read(p, &mut warnings)?,
            None => FileConfig::default(),
        };
        let mut s = Settings::layer(args, file, env)?;
        s.config_file = path;
        s.warnings = warnings;
        s.validate()?;
        Ok(s)
    }

    /// The settings with nothing given: the built-in defaults.
    pub fn defaults() -> Settings {
        Settings::layer(&CommonArgs::default(), FileConfig::default(), &|_| None)
            .unwrap_or_else(|_| unreachable!("no options, nothing to refuse"))
    }

    /// Where the series come from: the simulator when asked for, or when no API or
    /// Keycloak URL is set anywhere; else both URLs (validation made sure of both).
    pub fn source(&self) -> Source {
        match (&self.api_url, &self.keycloak_url) {
            (Some(a), Some(k)) if !self.simulator => Source::Api {
                api_url: a.clone(),
                keycloak_url: k.clone(),
            },
            _ => Source::Simulator {
                asked: self.simulator,
            },
        }
    }

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
        for (name, span) in [
            ("batch_interval", self.batch_interval),
            ("max_wait", self.max_wait),
            ("request_timeout", self.request_timeout),
        ] {
            if span.0.is_zero() {
                return Err(invalid(name, "must be longer than zero"));
            }
        }
        if self.start_time.0 >= self.end_time.0 {
            return Err(invalid(
                "start_time",
                format!(
                    "{} is not before end_time {}",
                    self.start_time.0, self.end_time.0
                ),
            ));
        }
        self.validate_kafka_security()?;
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

    /// The path of the saved raw API response.
    pub fn last_fetch_path(&self) -> PathBuf {
        self.data_dir.join("last_fetch.json")
    }
}

fn readable(name: &'static str, path: &std::path::Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| invalid(name, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests;
