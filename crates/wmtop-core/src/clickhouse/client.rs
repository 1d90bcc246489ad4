//! The connection to ClickHouse: an HTTP(S) client built on the one TLS configuration
//! ([`crate::net::tls`]), the server's version and the user's `readonly` level read at
//! connect, statements and queries as text, one JSONEachRow reader, and errors that say
//! whether retrying can help (a refused login or an unknown table cannot).

use std::time::Duration;

use ::clickhouse::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Deserialize as _;

use super::compat::ServerVersion;
use crate::config::redact::mask_url;
use crate::config::Settings;
use crate::net::tls::{self, ConnectFailure};

/// What kind of failure, which decides whether it is worth retrying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChErrorKind {
    /// The server could not be reached or dropped the connection: retry.
    Unreachable,
    /// TLS failed: the certificate or the trust is wrong.
    Tls,
    /// The user or password was refused.
    Auth,
    /// The user may not do this (read-only, or a grant is missing).
    NotAllowed,
    /// The database or table does not exist.
    Missing,
    /// The server refused the statement (syntax, unknown column, wrong type).
    Refused,
    /// The server is busy or short of something for now: retry.
    Busy,
    /// The answer was not what was asked for.
    Unexpected,
}

/// Why a ClickHouse operation failed.
#[derive(Debug, thiserror::Error)]
#[error("ClickHouse at {url}: {action}: {detail}")]
pub struct ChError {
    /// The URL, credentials masked.
    pub url: String,
    pub action: String,
    pub detail: String,
    pub kind: ChErrorKind,
    /// The server's error code, when it answered with one.
    pub code: Option<u32>,
}

impl crate::net::retry::Transient for ChError {
    fn transient(&self) -> bool {
        !self.permanent()
    }
}

impl ChError {
    /// Retrying cannot help.
    pub fn permanent(&self) -> bool {
        !matches!(
            self.kind,
            ChErrorKind::Unreachable | ChErrorKind::Busy | ChErrorKind::Unexpected
        )
    }

    /// The server's code and message, without the URL and the statement: what a
    /// screen shows first.
    pub fn short(&self) -> String {
        match self.code {
            Some(code) => format!("Code {code}: {}", self.detail),
            None => self.detail.clone(),
        }
    }
}

/// A server exception's code and message, from either form the servers use:
/// `Code: 47, e.displayText() = DB::Exception: …, e.what() = DB::Exception` (old) or
/// `Code: 47. DB::Exception: … (UNKNOWN_IDENTIFIER) (version 25.8.1)` (modern).
pub fn server_exception(text: &str) -> Option<(u32, String)> {
    let at = text.find("Code: ")?;
    let rest = &text[at + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let code: u32 = digits.parse().ok()?;
    let rest = &rest[digits.len()..];
    let message = if let Some(i) = rest.find("e.displayText() = ") {
        let m = &rest[i + 18..];
        m.split(", e.what() = ").next().unwrap_or(m)
    } else {
        rest.trim_start_matches(['.', ',', ' '])
    };
    let message = message.trim();
    let message = message.strip_prefix("DB::Exception: ").unwrap_or(message);
    let message = match message.rfind(" (version ") {
        Some(i) => &message[..i],
        None => message,
    };
    Some((code, message.trim().to_string()))
}

fn kind_of_code(code: u32) -> ChErrorKind {
    match code {
        192 | 193 | 194 | 195 | 516 => ChErrorKind::Auth,
        164 | 497 | 291 => ChErrorKind::NotAllowed,
        81 | 60 => ChErrorKind::Missing,
        159 | 160 | 202 | 203 | 209 | 210 | 225 | 241 | 242 | 252 | 319 | 425 | 999 => {
            ChErrorKind::Busy
        }
        _ => ChErrorKind::Refused,
    }
}

/// Builds a [`ChError`] from the client's error.
pub fn describe(url: &str, action: &str, e: &::clickhouse::error::Error) -> ChError {
    use ::clickhouse::error::Error as E;
    let (kind, detail, code) = match e {
        E::BadResponse(text) => match server_exception(text) {
            Some((code, message)) => (kind_of_code(code), message, Some(code)),
            None => (ChErrorKind::Unexpected, first_line(text), None),
        },
        E::Network(inner) => match tls::classify(inner.as_ref()) {
            Some(f) => (
                if f.permanent() {
                    ChErrorKind::Tls
                } else {
                    ChErrorKind::Unreachable
                },
                f.describe("clickhouse_ca_file"),
                None,
            ),
            None => (ChErrorKind::Unreachable, network_text(inner.as_ref()), None),
        },
        E::TimedOut => (
            ChErrorKind::Unreachable,
            ConnectFailure::TimedOut.describe(""),
            None,
        ),
        other => (ChErrorKind::Unexpected, other.to_string(), None),
    };
    let detail = match code {
        // TABLE_IS_READ_ONLY: on a Replicated table, the replica lost ZooKeeper.
        Some(242) => format!(
            "{detail} (the table is read-only: a Replicated table takes no writes while its replica cannot reach ZooKeeper)"
        ),
        // NO_ZOOKEEPER: the replica's session ended; it reconnects on its own.
        Some(225) => format!(
            "{detail} (the replica lost its ZooKeeper session: a Replicated table is read-only until it has a new one)"
        ),
        _ => detail,
    };
    ChError {
        url: url.to_string(),
        action: action.to_string(),
        detail: crate::config::redact::mask_urls_in(&detail),
        kind,
        code,
    }
}

fn network_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn first_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    let mut cut = line.len().min(300);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line[..cut].to_string()
}

/// A statement's first line, cut to 80 characters, to name what failed.
pub fn action_of(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or_default();
    if line.chars().count() > 80 {
        let cut: String = line.chars().take(80).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// A ClickHouse connection with the server's version and the user's read-only level.
#[derive(Clone)]
pub struct Ch {
    client: Client,
    /// The URL, credentials masked, for messages.
    pub url: String,
    pub database: String,
    pub table: String,
    pub version: ServerVersion,
    pub version_text: String,
    /// The user's `readonly` setting as the server reports it (0: may write).
    pub readonly: u8,
    /// What the front ends read: the settings' application in their window
    /// ([`super::sql::window_of`]).
    pub window: String,
}

/// The client: HTTP or HTTPS with the one TLS configuration, credentials attached.
fn client(settings: &Settings) -> Result<Client, ChError> {
    let tls = tls::client_config(
        settings.clickhouse_ca_file.as_deref(),
        "clickhouse_ca_file",
        settings.insecure,
    )
    .map_err(|e| ChError {
        url: mask_url(&settings.clickhouse_url),
        action: "set up TLS".into(),
        detail: e.to_string(),
        kind: ChErrorKind::Tls,
        code: None,
    })?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let http = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(2))
        .build(https);
    Ok(Client::with_http_client(http)
        .with_url(settings.clickhouse_url.trim_end_matches('/'))
        .with_user(&settings.clickhouse_user)
        .with_password(settings.clickhouse_password.expose())
        // Validation asks for RowBinaryWithNamesAndTypes, which old servers lack.
        .with_validation(false))
}

impl Ch {
    /// Connects and reads the server's version and the user's read-only level. Creates
    /// nothing: a user who may only SELECT can connect.
    pub async fn connect(settings: &Settings) -> Result<Ch, ChError> {
        let url = mask_url(&settings.clickhouse_url);
        let client = client(settings)?;
        let mut ch = Ch {
            client,
            url,
            database: settings.database.clone(),
            table: settings.table.clone(),
            version: ServerVersion { major: 0, minor: 0 },
            version_text: String::new(),
            readonly: 0,
            window: super::sql::window_of(settings),
        };
        let text = ch
            .query_text(
                "SELECT version(), (SELECT value FROM system.settings WHERE name = 'readonly')",
                "TabSeparated",
            )
            .await
            .map_err(|mut e| {
                e.action = format!("connect as user {}", settings.clickhouse_user);
                e
            })?;
        let mut fields = text.trim().split('\t');
        let version_text = fields.next().unwrap_or_default().to_string();
        ch.version = ServerVersion::parse(&version_text).ok_or_else(|| ChError {
            url: ch.url.clone(),
            action: "SELECT version()".into(),
            detail: format!("the answer {text:?} is not a version"),
            kind: ChErrorKind::Unexpected,
            code: None,
        })?;
        ch.version_text = version_text;
        ch.readonly = fields
            .next()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(ch)
    }

    /// The same connection, with these settings sent along with every query.
    pub fn with_settings(&self, settings: &[(&str, &str)]) -> Ch {
        let mut ch = self.clone();
        for (k, v) in settings {
            ch.client = ch.client.with_setting(*k, *v);
        }
        ch
    }

    /// `database.table`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    /// `database.table_dead_letters`.
    pub fn dead_letters_table(&self) -> String {
        format!("{}.{}_dead_letters", self.database, self.table)
    }

    pub(super) fn err(&self, action: &str, e: &::clickhouse::error::Error) -> ChError {
        describe(&self.url, action, e)
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs a statement that returns nothing.
    pub async fn execute(&self, sql: &str) -> Result<(), ChError> {
        self.client
            .query(&escape_binds(sql))
            .execute()
            .await
            .map_err(|e| self.err(&action_of(sql), &e))
    }

    /// Runs a query and returns its output in a ClickHouse format (TabSeparated, CSV,
    /// JSONEachRow, PrettyCompact …), as the server sends it.
    pub async fn query_text(&self, sql: &str, format: &str) -> Result<String, ChError> {
        self.query_text_with(sql, format, &[]).await
    }

    /// As [`Ch::query_text`], with settings sent along (e.g. `query_id`).
    pub async fn query_text_with(
        &self,
        sql: &str,
        format: &str,
        settings: &[(&str, &str)],
    ) -> Result<String, ChError> {
        let mut q = self
            .client
            .query(&escape_binds(sql.trim().trim_end_matches(';')));
        for (k, v) in settings {
            q = q.with_setting(*k, *v);
        }
        let action = action_of(sql);
        let mut cursor = q.fetch_bytes(format).map_err(|e| self.err(&action, &e))?;
        let bytes = cursor.collect().await.map_err(|e| self.err(&action, &e))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Runs a query in JSONEachRow and reads each line into `T`. Numbers that some
    /// servers quote (64-bit integers) are read with [`lenient_u64`] where `T` says so.
    pub async fn json_rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ChError> {
        let text = self.query_text(sql, "JSONEachRow").await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|e| ChError {
                    url: self.url.clone(),
                    action: action_of(sql),
                    detail: format!("unexpected row {}: {e}", first_line(line)),
                    kind: ChErrorKind::Unexpected,
                    code: None,
                })
            })
            .collect()
    }

    /// Settings that keep an ad-hoc query from writing, for this user: `readonly=2`
    /// where the user may write, nothing where the server already holds the user to
    /// read-only (a `readonly=1` user may not change any setting).
    pub fn read_only_settings(&self) -> &'static [(&'static str, &'static str)] {
        if self.readonly == 0 {
            &[("readonly", "2")]
        } else {
            &[]
        }
    }
}

/// Reads a 64-bit integer that may come as a JSON number or as a quoted string.
pub fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum N {
        U(u64),
        S(String),
    }
    match N::deserialize(d)? {
        N::U(n) => Ok(n),
        N::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// As [`lenient_u64`], signed.
pub fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum N {
        I(i64),
        S(String),
    }
    match N::deserialize(d)? {
        N::I(n) => Ok(n),
        N::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// The client binds values to `?`; user SQL must keep its question marks.
pub fn escape_binds(sql: &str) -> String {
    sql.replace('?', "??")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_exceptions_read_in_both_forms() {
        let old = "Code: 47, e.displayText() = DB::Exception: Unknown identifier: x, e.what() = DB::Exception\n";
        assert_eq!(
            server_exception(old),
            Some((47, "Unknown identifier: x".to_string()))
        );
        let new = "Code: 516. DB::Exception: bob: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 25.8.2.29 (official build))\n";
        let (code, msg) = server_exception(new).unwrap();
        assert_eq!(code, 516);
        assert_eq!(
            msg,
            "bob: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)"
        );
        assert_eq!(kind_of_code(516), ChErrorKind::Auth);
        assert_eq!(kind_of_code(164), ChErrorKind::NotAllowed);
        assert_eq!(kind_of_code(252), ChErrorKind::Busy);
        // A replica without its ZooKeeper session (NO_ZOOKEEPER) or read-only: it recovers.
        assert_eq!(kind_of_code(225), ChErrorKind::Busy);
        assert_eq!(kind_of_code(242), ChErrorKind::Busy);
        assert_eq!(server_exception("no code here"), None);
    }

    #[test]
    fn question_marks_survive() {
        assert_eq!(escape_binds("SELECT '?' "), "SELECT '??' ");
    }
}
