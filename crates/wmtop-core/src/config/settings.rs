//! The settings: declared once (flag with its `WMTOP_…` variable, file key, default),
//! layered flags over environment over file over defaults, with secrets from the
//! environment or the file only; where the series come from.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::error::ConfigError;
use super::file;
use super::kafka_options::KafkaOptions;
use super::secret::Secret;
use super::types::{Moment, Range, SaslMechanism, SecurityProtocol, Span, Window};

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
            /// The config file's [profiles.NAME] table to use over its shared settings.
            #[arg(long, env = "WMTOP_PROFILE", global = true, value_name = "NAME")]
            pub profile: Option<String>,
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
            /// `[profiles.NAME]` tables: settings over the shared ones, one set per cluster.
            profiles: Option<toml::Table>,
            /// `kafka_options` as checked text, filled by the file reader.
            #[serde(skip)]
            kafka_options_checked: std::collections::BTreeMap<String, String>,
            $( $name: Option<$ty>, )*
            $( $oname: Option<$oty>, )*
        }

        impl FileConfig {
            /// These settings with `over`'s on top (a profile's over the shared ones);
            /// `[kafka_options]` merge key by key.
            fn overlay(self, over: FileConfig) -> FileConfig {
                let kafka_options = match (self.kafka_options, over.kafka_options) {
                    (Some(mut base), Some(top)) => {
                        base.extend(top);
                        Some(base)
                    }
                    (base, top) => top.or(base),
                };
                FileConfig {
                    insecure: over.insecure.or(self.insecure),
                    simulator: over.simulator.or(self.simulator),
                    password: over.password.or(self.password),
                    client_secret: over.client_secret.or(self.client_secret),
                    clickhouse_password: over.clickhouse_password.or(self.clickhouse_password),
                    kafka_sasl_password: over.kafka_sasl_password.or(self.kafka_sasl_password),
                    kafka_options,
                    profiles: None,
                    kafka_options_checked: Default::default(),
                    $( $name: over.$name.or(self.$name), )*
                    $( $oname: over.$oname.or(self.$oname), )*
                }
            }

            /// The file holds a secret (a password, or a secret librdkafka property).
            fn holds_secret(&self) -> bool {
                self.password.is_some()
                    || self.client_secret.is_some()
                    || self.clickhouse_password.is_some()
                    || self.kafka_sasl_password.is_some()
                    || self
                        .kafka_options
                        .as_ref()
                        .is_some_and(|t| t.keys().any(|k| super::secret::is_secret_key(k)))
            }
        }

        /// Every key the config file accepts, for suggestions.
        pub(crate) const FILE_KEYS: &[&str] = &[
            "insecure", "simulator", "password", "client_secret", "clickhouse_password",
            "kafka_sasl_password", "kafka_options", "profiles",
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
            /// The profile in force (`--profile` / `WMTOP_PROFILE`).
            pub profile: Option<String>,
            /// The profiles the config file holds, with the keys each sets.
            pub profiles: Vec<(String, Vec<String>)>,
            /// start_time or end_time was given (a flag, the environment or the file), so
            /// `range` may not be.
            pub window_given: bool,
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
                let window_given = args.start_time.is_some()
                    || args.end_time.is_some()
                    || file.start_time.is_some()
                    || file.end_time.is_some();
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
                    profile: None,
                    profiles: Vec::new(),
                    window_given,
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
        /// ZooKeeper path of the Replicated tables wmtop creates on clickhouse_cluster: {shard} and {replica} are the servers' macros, {database} and {table} are filled in by wmtop.
        clickhouse_zookeeper_path: String = "/clickhouse/tables/{shard}/{database}/{table}".into(), env "WMTOP_CLICKHOUSE_ZOOKEEPER_PATH";
        /// Keycloak realm.
        realm: String = "watermelon".into(), env "WMTOP_REALM";
        /// Keycloak client id.
        client_id: String = "wmtop".into(), env "WMTOP_CLIENT_ID";
        /// Keycloak user.
        username: String = "wmtop".into(), env "WMTOP_USERNAME";
        /// Application whose series are fetched.
        application_id: String = "31854".into(), env "WMTOP_APPLICATION_ID";
        /// Start of the window: epoch ms, RFC 3339, or relative to the clock (now-12d, -36h, today), worked out at each fetch and aligned to the hour.
        start_time: Moment = Moment::At(1_767_205_800_000), env "WMTOP_START_TIME";
        /// End of the window: as start_time (now, today, epoch ms, RFC 3339).
        end_time: Moment = Moment::At(1_768_242_540_000), env "WMTOP_END_TIME";
        /// Series index.
        index: String = "HOURLY".into(), env "WMTOP_INDEX";
        /// Rows per ClickHouse insert (at most; batch_mb may end a batch first).
        batch_rows: usize = 50_000, env "WMTOP_BATCH_ROWS";
        /// Megabytes (MiB) of encoded rows per ClickHouse insert (at most; batch_rows may end a batch first). Two batches are held at once: one inserted while the next is read.
        batch_mb: usize = 32, env "WMTOP_BATCH_MB";
        /// Longest time rows wait before they are inserted.
        batch_interval: Span = Span(Duration::from_secs(5)), env "WMTOP_BATCH_INTERVAL";
        /// Timeout of one API or Keycloak request.
        request_timeout: Span = Span(Duration::from_secs(120)), env "WMTOP_REQUEST_TIMEOUT";
        /// Longest a run waits for a server that does not answer or a message that is never served.
        max_wait: Span = Span(Duration::from_secs(120)), env "WMTOP_MAX_WAIT";
        /// How far back a scheduled reload asks again, before the last successful fetch's end: the hours in which the API may still revise its numbers.
        revise: Span = Span(Duration::from_secs(3 * 3600)), env "WMTOP_REVISE";
        /// Address of the /health and /metrics endpoints ("off" disables them).
        ops_addr: String = "127.0.0.1:9464".into(), env "WMTOP_OPS_ADDR";
        /// Where the last fetch and other state are kept.
        data_dir: PathBuf = default_data_dir(), env "WMTOP_DATA_DIR";
    }
    optional {
        /// The window as a length back from now (12d, 36h): shorthand for start_time = now-12d, end_time = now.
        range: Range, env "WMTOP_RANGE";
        /// Fetch, publish and load on this schedule (15m, 1h); off when unset. After the first fetch, only the hours since the last successful one, plus `revise`, are asked for.
        reload_every: Span, env "WMTOP_RELOAD_EVERY";
        /// Series API base URL (unset with keycloak_url unset: the simulator).
        api_url: String, env "WMTOP_API_URL";
        /// Keycloak base URL.
        keycloak_url: String, env "WMTOP_KEYCLOAK_URL";
        /// PEM file of a private CA for Keycloak and the API.
        ca_file: PathBuf, env "WMTOP_CA_FILE";
        /// PEM file of a private CA for ClickHouse over HTTPS.
        clickhouse_ca_file: PathBuf, env "WMTOP_CLICKHOUSE_CA_FILE";
        /// ClickHouse cluster (as in remote_servers) on which wmtop creates its tables ON CLUSTER: Replicated tables on every replica behind a Distributed table named `table`.
        clickhouse_cluster: String, env "WMTOP_CLICKHOUSE_CLUSTER";
        /// With clickhouse_cluster: the Replicated table on each replica behind the Distributed one (default: <table>_local).
        clickhouse_local_table: String, env "WMTOP_CLICKHOUSE_LOCAL_TABLE";
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
        let mut profiles = Vec::new();
        let file = match &path {
            Some(p) => {
                let (mut f, text): (FileConfig, String) = file::parse(p, FILE_KEYS)?;
                let tables = f.profiles.take().unwrap_or_default();
                profiles = file::profile_keys(p, &tables)?;
                if let Some(name) = &args.profile {
                    let over: FileConfig = file::profile(p, &text, &tables, name, FILE_KEYS)?;
                    f = f.overlay(over);
                }
                f.kafka_options_checked = file::kafka_options(p, &text, f.kafka_options.as_ref())?;
                let profile_secret = profiles
                    .iter()
                    .any(|(_, keys)| keys.iter().any(|k| super::secret::is_secret_key(k)));
                if f.holds_secret() || profile_secret {
                    warnings.extend(file::readable_by_others(p));
                }
                f
            }
            None => {
                if let Some(name) = &args.profile {
                    return Err(ConfigError::Invalid {
                        name: "profile",
                        message: format!(
                            "{name:?} was asked for but no config file is read (give --config, or put wmtop.toml here)"
                        ),
                    });
                }
                FileConfig::default()
            }
        };
        let mut s = Settings::layer(args, file, env)?;
        s.config_file = path;
        s.warnings = warnings;
        s.profile = args.profile.clone();
        s.profiles = profiles;
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

    /// The fetch window when the clock reads `now_ms`: `range` back from the hour, or
    /// start_time and end_time worked out (see [`Moment`]).
    pub fn window_at(&self, now_ms: i64) -> Window {
        match self.range {
            Some(range) => Window {
                start_ms: range.start().resolve(now_ms),
                end_ms: Moment::Now(0).resolve(now_ms),
            },
            None => Window {
                start_ms: self.start_time.resolve(now_ms),
                end_ms: self.end_time.resolve(now_ms),
            },
        }
    }

    /// The fetch window now.
    pub fn window(&self) -> Window {
        self.window_at(jiff::Timestamp::now().as_millisecond())
    }

    /// The window moves with the clock.
    pub fn window_rolls(&self) -> bool {
        self.range.is_some() || self.start_time.is_relative() || self.end_time.is_relative()
    }

    /// The most encoded bytes a batch gathers before it is inserted (`batch_mb` MiB).
    pub fn batch_bytes(&self) -> usize {
        self.batch_mb.saturating_mul(1 << 20)
    }

    /// The path of the saved raw API response.
    pub fn last_fetch_path(&self) -> PathBuf {
        self.data_dir.join("last_fetch.json")
    }
}
