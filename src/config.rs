//! Configuration: every setting with its default, read from flags over environment
//! (`WMTOP_<NAME>`) over a TOML file (`wmtop.toml`, or `--config`) over built-in defaults
//! that point at the local stack and the simulator. Secrets come from the environment or
//! the file only, never from flags, and are held as [`Secret`]s.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::secret::Secret;

/// Why the configuration cannot be used; each says which setting and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
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
de_from_str!(EpochMs, Span);

/// Declares every plain setting once: the flag (with its env var), the file key, the
/// resolved field and its default.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr, env $env:literal; )*) => {
        /// Flags shared by every command; each also reads `WMTOP_<NAME>` from the environment.
        #[derive(Args, Debug, Default, Clone)]
        pub struct CommonArgs {
            /// Config file (TOML). Default: ./wmtop.toml when it exists.
            #[arg(long, env = "WMTOP_CONFIG", global = true, value_name = "PATH")]
            pub config: Option<PathBuf>,
            /// Accept any TLS certificate from Keycloak and the API (unsafe; says so loudly).
            #[arg(long, env = "WMTOP_INSECURE", global = true)]
            pub insecure: bool,
            $(
                $(#[doc = $doc])*
                #[arg(long, env = $env, global = true)]
                pub $name: Option<$ty>,
            )*
        }

        /// The config file's keys; unknown keys are an error.
        #[derive(Deserialize, Debug, Default)]
        #[serde(deny_unknown_fields)]
        struct FileConfig {
            insecure: Option<bool>,
            password: Option<Secret>,
            client_secret: Option<Secret>,
            clickhouse_password: Option<Secret>,
            $( $name: Option<$ty>, )*
        }

        /// The settings in force, after layering.
        #[derive(Debug, Clone)]
        pub struct Settings {
            pub insecure: bool,
            /// Keycloak password: `WMTOP_PASSWORD` or `password` in the file.
            pub password: Secret,
            /// Optional Keycloak client secret: `WMTOP_CLIENT_SECRET` or the file.
            pub client_secret: Option<Secret>,
            /// ClickHouse password: `WMTOP_CLICKHOUSE_PASSWORD` or the file.
            pub clickhouse_password: Secret,
            /// The config file read, if any.
            pub config_file: Option<PathBuf>,
            /// Warnings found while reading (e.g. a readable file holding a secret).
            pub warnings: Vec<String>,
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Settings {
            fn layer(args: &CommonArgs, file: FileConfig, env: &dyn Fn(&str) -> Option<String>) -> Settings {
                let secret = |var: &str, from_file: Option<Secret>| {
                    env(var).filter(|v| !v.is_empty()).map(Secret::new).or(from_file)
                };
                Settings {
                    insecure: args.insecure || file.insecure.unwrap_or(false),
                    password: secret("WMTOP_PASSWORD", file.password).unwrap_or_default(),
                    client_secret: secret("WMTOP_CLIENT_SECRET", file.client_secret),
                    clickhouse_password: secret("WMTOP_CLICKHOUSE_PASSWORD", file.clickhouse_password)
                        .unwrap_or_default(),
                    config_file: None,
                    warnings: Vec::new(),
                    $( $name: args.$name.clone().or(file.$name).unwrap_or_else(|| $default), )*
                }
            }
        }

        /// Every setting's name, env var and default, for the README and `--help`.
        pub fn describe_defaults() -> Vec<(&'static str, &'static str, String)> {
            let d = Settings::layer(&CommonArgs::default(), FileConfig::default(), &|_| None);
            vec![ $( (stringify!($name), $env, format!("{:?}", d.$name)), )* ]
        }
    };
}

settings! {
    /// Kafka bootstrap servers.
    kafka_brokers: String = "127.0.0.1:9092".into(), env "WMTOP_KAFKA_BROKERS";
    /// Topic holding one message per transaction.
    topic: String = "services_series_12days".into(), env "WMTOP_TOPIC";
    /// Consumer group.
    group: String = "wmtop".into(), env "WMTOP_GROUP";
    /// Partitions when the topic is created.
    partitions: i32 = 3, env "WMTOP_PARTITIONS";
    /// ClickHouse HTTP URL.
    clickhouse_url: String = "http://127.0.0.1:8123".into(), env "WMTOP_CLICKHOUSE_URL";
    /// ClickHouse user.
    clickhouse_user: String = "default".into(), env "WMTOP_CLICKHOUSE_USER";
    /// ClickHouse database (created if missing).
    database: String = "watermelon".into(), env "WMTOP_DATABASE";
    /// ClickHouse table (created if missing).
    table: String = "transaction_metrics".into(), env "WMTOP_TABLE";
    /// Keycloak base URL.
    keycloak_url: String = "http://127.0.0.1:8180".into(), env "WMTOP_KEYCLOAK_URL";
    /// Keycloak realm.
    realm: String = "watermelon".into(), env "WMTOP_REALM";
    /// Keycloak client id.
    client_id: String = "wmtop".into(), env "WMTOP_CLIENT_ID";
    /// Keycloak user.
    username: String = "wmtop".into(), env "WMTOP_USERNAME";
    /// Series API base URL.
    api_url: String = "http://127.0.0.1:8180".into(), env "WMTOP_API_URL";
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
    /// Address of the /health and /metrics endpoints ("off" disables them).
    ops_addr: String = "127.0.0.1:9464".into(), env "WMTOP_OPS_ADDR";
    /// Where the last fetch and other state are kept.
    data_dir: PathBuf = default_data_dir(), env "WMTOP_DATA_DIR";
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

impl Settings {
    /// Layers flags, environment, file and defaults, then validates.
    pub fn resolve(args: &CommonArgs) -> Result<Settings, ConfigError> {
        Self::resolve_with(args, &|k| std::env::var(k).ok())
    }

    /// As [`Settings::resolve`], with the environment given (for tests).
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
            Some(p) => read_file(p, &mut warnings)?,
            None => FileConfig::default(),
        };
        let mut s = Settings::layer(args, file, env);
        s.config_file = path;
        s.warnings = warnings;
        s.validate()?;
        Ok(s)
    }

    /// Explains the first thing wrong, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, url) in [
            ("clickhouse_url", &self.clickhouse_url),
            ("keycloak_url", &self.keycloak_url),
            ("api_url", &self.api_url),
        ] {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| invalid(name, format!("{url:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(
                    name,
                    format!("{url:?} must be http:// or https://"),
                ));
            }
        }
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
        if self.batch_rows == 0 {
            return Err(invalid("batch_rows", "must be at least 1"));
        }
        if self.batch_interval.0.is_zero() {
            return Err(invalid("batch_interval", "must be longer than zero"));
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
        Ok(())
    }

    /// The path of the saved raw API response.
    pub fn last_fetch_path(&self) -> PathBuf {
        self.data_dir.join("last_fetch.json")
    }
}

fn read_file(path: &Path, warnings: &mut Vec<String>) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let holds_secret = file.password.is_some()
        || file.client_secret.is_some()
        || file.clickhouse_password.is_some();
    if holds_secret {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    warnings.push(format!(
                        "config file {} holds a secret and can be read by others (mode {:o}); run: chmod 600 {}",
                        path.display(),
                        mode & 0o777,
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "wmtop-config-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wmtop.toml");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        path
    }

    #[test]
    fn flags_win_over_env_over_file_over_defaults() {
        let path = temp_file("topic = \"from_file\"\ngroup = \"file_group\"\ntable = \"file_table\"\npassword = \"pw-file\"\n");
        let args = CommonArgs {
            config: Some(path),
            topic: Some("from_flag".into()),
            ..CommonArgs::default()
        };
        let env = |k: &str| (k == "WMTOP_PASSWORD").then(|| "pw-env".to_string());
        let s = Settings::resolve_with(&args, &env).unwrap();
        assert_eq!(s.topic, "from_flag");
        assert_eq!(s.group, "file_group");
        assert_eq!(s.table, "file_table");
        assert_eq!(s.database, "watermelon");
        assert_eq!(s.password.expose(), "pw-env");
        let s = Settings::resolve_with(&args, &|_| None).unwrap();
        assert_eq!(s.password.expose(), "pw-file");
    }

    #[test]
    fn env_vars_are_read_through_clap() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            common: CommonArgs,
        }
        // Only the flag form is checked here: clap maps WMTOP_<NAME> for each flag.
        let t = T::try_parse_from([
            "t",
            "--kafka-brokers",
            "k:1",
            "--start-time",
            "2026-01-01T00:00:00Z",
        ])
        .unwrap();
        assert_eq!(t.common.kafka_brokers.as_deref(), Some("k:1"));
        assert_eq!(t.common.start_time, Some(EpochMs(1_767_225_600_000)));
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_explained() {
        let path = temp_file("topik = \"x\"\n");
        let args = CommonArgs {
            config: Some(path),
            ..CommonArgs::default()
        };
        let err = Settings::resolve_with(&args, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("topik") && err.contains("wmtop.toml"), "{err}");

        let args = CommonArgs {
            batch_rows: Some(0),
            ..CommonArgs::default()
        };
        let err = Settings::resolve_with(&args, &|_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "setting batch_rows: must be at least 1");
        let args = CommonArgs {
            table: Some("x; DROP".into()),
            ..CommonArgs::default()
        };
        assert!(Settings::resolve_with(&args, &|_| None)
            .unwrap_err()
            .to_string()
            .contains("setting table"));
    }

    #[test]
    fn a_readable_file_with_a_secret_earns_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp_file("password = \"s3cret-value\"\n# readable\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let args = CommonArgs {
            config: Some(path.clone()),
            ..CommonArgs::default()
        };
        let s = Settings::resolve_with(&args, &|_| None).unwrap();
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("chmod 600"));
        assert!(!s.warnings[0].contains("s3cret-value"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Settings::resolve_with(&args, &|_| None)
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn spans_and_times_parse() {
        assert_eq!(
            "250ms".parse::<Span>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!("5".parse::<Span>().unwrap().0, Duration::from_secs(5));
        assert_eq!("2m".parse::<Span>().unwrap().0, Duration::from_secs(120));
        assert!("5 parsecs".parse::<Span>().is_err());
        assert_eq!(
            "1767205800000".parse::<EpochMs>().unwrap(),
            EpochMs(1_767_205_800_000)
        );
        assert!("yesterday".parse::<EpochMs>().is_err());
    }
}
